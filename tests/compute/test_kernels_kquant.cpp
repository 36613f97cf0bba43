// K-quant kernels: hand-built blocks with values worked out from the format description,
// SIMD against scalar, vec_dot against dequantize, and the real model's K-quant tensors
// against the same tensors stored as F32.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "compute/quant.h"
#include "models/gguf/gguf.h"
#include "storage/file.h"
#include "tests/shared_data.h"

using namespace strata;
using compute::DType;

namespace {

// doctest prints a const char* as a pointer
std::string name_of(DType t) { return compute::type_name(t); }
std::string name_of(compute::Isa isa) { return compute::isa_name(isa); }

constexpr uint16_t kHalfOne = 0x3c00, kHalfHalf = 0x3800, kHalfQuarter = 0x3400;

void put_u16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

std::vector<float> dequantize(DType t, const std::vector<uint8_t>& bytes, int64_t n,
                              compute::Isa isa = compute::Isa::Scalar) {
  std::vector<float> out(n);
  compute::kernels_for(isa)[t].dequantize(bytes.data(), out.data(), n);
  return out;
}

std::vector<uint8_t> quantize_q8k(const std::vector<float>& x, compute::Isa isa = compute::Isa::Scalar) {
  std::vector<uint8_t> out(compute::row_bytes(DType::Q8_K, static_cast<int64_t>(x.size())));
  compute::kernels_for(isa)[DType::Q8_K].quantize(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<compute::Isa> simd_isas() {
  std::vector<compute::Isa> isas;
  for (compute::Isa isa : {compute::Isa::AVX2, compute::Isa::AVX512}) {
    if (compute::detected_isa() >= isa)
      isas.push_back(isa);
    else
      MESSAGE("skipped " << name_of(isa) << ": this CPU does not support it");
  }
  return isas;
}

// Random blocks: random bytes everywhere, then sane fp16 multipliers where the format has them
// (random bytes there would give inf/NaN/huge values that no quantizer writes).
std::vector<uint8_t> random_blocks(DType t, int64_t nblocks, std::mt19937& rng) {
  const auto& info = compute::type_info(t);
  std::vector<uint8_t> b(static_cast<size_t>(nblocks * info.block_bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mult(0.001f, 0.02f);
  for (auto& v : b) v = static_cast<uint8_t>(byte(rng));
  for (int64_t i = 0; i < nblocks; ++i) {
    const size_t base = static_cast<size_t>(i * info.block_bytes);
    auto half = [&] { return compute::fp32_to_fp16(mult(rng)); };
    switch (t) {
      case DType::Q2_K: put_u16(b, base + 80, half()); put_u16(b, base + 82, half()); break;
      case DType::Q3_K: put_u16(b, base + 108, half()); break;
      case DType::Q4_K:
      case DType::Q5_K: put_u16(b, base, half()); put_u16(b, base + 2, half()); break;
      case DType::Q6_K: put_u16(b, base + 208, half()); break;
      default: FAIL("not a K-quant weight type");
    }
  }
  return b;
}

// Each element's offset part (the value its block gives a zero quant: -dmin*min, or the scale
// times the format's negative offset in Q3_K/Q6_K), found by dequantizing with the quant bits
// cleared. Kernels compute the quant part and the offset part apart, so their rounding is
// relative to |w| + |offset| rather than to |w| alone.
std::vector<float> offset_parts(DType t, std::vector<uint8_t> blocks, int64_t n) {
  std::pair<int, int> quant_bytes;  // [begin, end) of the quant fields inside a block
  switch (t) {
    case DType::Q2_K: quant_bytes = {16, 80}; break;
    case DType::Q3_K: quant_bytes = {0, 96}; break;
    case DType::Q4_K: quant_bytes = {16, 144}; break;
    case DType::Q5_K: quant_bytes = {16, 176}; break;
    case DType::Q6_K: quant_bytes = {0, 192}; break;
    default: FAIL("not a K-quant weight type");
  }
  const int block_bytes = compute::type_info(t).block_bytes;
  for (size_t base = 0; base < blocks.size(); base += block_bytes)
    std::fill(blocks.begin() + base + quant_bytes.first, blocks.begin() + base + quant_bytes.second, 0);
  return dequantize(t, blocks, n);
}

std::vector<float> random_floats(int64_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

constexpr DType kWeightTypes[] = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

}  // namespace

TEST_CASE("type table: K-quant block sizes and kernels present") {
  const auto& k = compute::kernels_for(compute::Isa::Scalar);
  for (DType t : kWeightTypes) {
    CAPTURE(name_of(t));
    CHECK(compute::type_info(t).block_elems == 256);
    CHECK(compute::type_info(t).vec_dot_type == DType::Q8_K);
    CHECK(bool(k[t].dequantize));
    CHECK(bool(k[t].vec_dot));
  }
  CHECK(bool(k[DType::Q8_K].quantize));
  CHECK(bool(k[DType::Q8_K].dequantize));
}

// Each hand block sets a few fields; the expected values follow from the format text alone.
TEST_CASE("Q2_K hand-built block") {
  std::vector<uint8_t> b(84, 0);
  put_u16(b, 80, kHalfHalf);  // d = 0.5
  put_u16(b, 82, kHalfOne);   // dmin = 1
  b[1] = 0x10;                // group 1 (elements 16..31): scale 0, min 1
  b[5] = 0x73;                // group 5 (elements 80..95): scale 3, min 7
  b[14] = 0x2f;               // group 14 (elements 224..239): scale 15, min 2
  b[16 + 20] = 0x20;          // qs byte 20, bits 4-5 = 2: element 2*32 + 20 = 84
  b[16 + 32 + 5] = 0xc0;      // qs byte 32+5, bits 6-7 = 3: element 128 + 3*32 + 5 = 229
  const auto y = dequantize(DType::Q2_K, b, 256);
  CHECK(y[84] == doctest::Approx(0.5 * 3 * 2 - 1.0 * 7));    // -4
  CHECK(y[85] == doctest::Approx(-7.0));                     // q = 0 in the same group
  CHECK(y[229] == doctest::Approx(0.5 * 15 * 3 - 1.0 * 2));  // 20.5
  CHECK(y[230] == doctest::Approx(-2.0));
  CHECK(y[20] == doctest::Approx(-1.0));
  CHECK(y[0] == 0.0f);
}

TEST_CASE("Q3_K hand-built block") {
  std::vector<uint8_t> b(110, 0);
  uint8_t* hmask = b.data();
  uint8_t* qs = b.data() + 32;
  uint8_t* sc = b.data() + 96;
  put_u16(b, 108, kHalfQuarter);  // d = 0.25
  // scale 6 = +13, stored 45 = 0b10'1101: low nibble of byte 6, top bits in bits 2-3 of byte 10
  sc[6] = 0x0d;
  sc[10] = 0x08;
  // scale 9 = -27, stored 5: high nibble of byte 1, top bits (bits 4-5 of byte 9) zero
  sc[1] = 0x50;
  // group 6 = half 0, run j=3 (bits 6-7), bytes l < 16 -> element 96 + l
  qs[7] = 0x40;      // element 103: low2 = 1
  hmask[7] = 0x08;   // bit 3 set: q = 1
  qs[8] = 0x80;      // element 104: low2 = 2, high bit clear: q = -2
  // group 9 = half 1, run j=0 (bits 0-1, hmask bit 4), bytes l >= 16 -> element 128 + l
  qs[32 + 20] = 0x03;  // element 148: low2 = 3, high bit clear: q = -1
  hmask[21] = 0x10;    // element 149: low2 = 0, high bit set: q = 0
  const auto y = dequantize(DType::Q3_K, b, 256);
  CHECK(y[103] == doctest::Approx(0.25 * 13 * 1));
  CHECK(y[104] == doctest::Approx(0.25 * 13 * -2));
  CHECK(y[148] == doctest::Approx(0.25 * -27 * -1));
  CHECK(y[149] == 0.0f);
  CHECK(y[150] == doctest::Approx(0.25 * -27 * -4));
  // untouched scales are stored 0 = -32, untouched quants are -4
  CHECK(y[0] == doctest::Approx(0.25 * -32 * -4));
  CHECK(y[255] == doctest::Approx(0.25 * -32 * -4));
}

TEST_CASE("Q4_K hand-built block") {
  std::vector<uint8_t> b(144, 0);
  put_u16(b, 0, kHalfHalf);     // d = 0.5
  put_u16(b, 2, kHalfQuarter);  // dmin = 0.25
  uint8_t* sc = b.data() + 4;
  uint8_t* qs = b.data() + 16;
  sc[1] = 10;  // sub-block 1 scale
  sc[5] = 3;   // sub-block 1 min
  // sub-block 6: scale 37 = 0b10'0101, min 50 = 0b11'0010; low 4 bits in byte 10's nibbles,
  // top 2 bits in the top bits of bytes 2 (scale) and 6 (min)
  sc[10] = 0x25;
  sc[2] = 0x80;
  sc[6] = 0xc0;
  qs[8] = 0xf0;        // high nibble of byte 8 -> element 32 + 8 (sub-block 1): q = 15
  qs[96 + 8] = 0x0b;   // low nibble of byte 96+8 -> element 192 + 8 (sub-block 6): q = 11
  const auto y = dequantize(DType::Q4_K, b, 256);
  CHECK(y[40] == doctest::Approx(0.5 * 10 * 15 - 0.25 * 3));
  CHECK(y[41] == doctest::Approx(-0.25 * 3));
  CHECK(y[200] == doctest::Approx(0.5 * 37 * 11 - 0.25 * 50));
  CHECK(y[201] == doctest::Approx(-0.25 * 50));
  CHECK(y[8] == 0.0f);   // sub-block 0: scale 0, min 0
  CHECK(y[72] == 0.0f);  // sub-block 2: low 6 bits of byte 2 are 0
}

TEST_CASE("Q5_K hand-built block") {
  std::vector<uint8_t> b(176, 0);
  put_u16(b, 0, kHalfOne);   // d = 1
  put_u16(b, 2, kHalfHalf);  // dmin = 0.5
  uint8_t* sc = b.data() + 4;
  uint8_t* qh = b.data() + 16;
  uint8_t* qs = b.data() + 48;
  sc[3] = 0x42;   // sub-block 3: scale 2; top bits 01 -> top of sub-block 7's scale
  sc[7] = 4;      // sub-block 3: min 4
  sc[11] = 0x13;  // sub-block 7: scale low 3 (+16 from byte 3) = 19, min 1
  qs[32 + 4] = 0x70;  // element 96 + 4 (sub-block 3, high nibble): 7
  qh[4] = 0x08;       // ... with fifth bit (bit 3): 23
  qs[32 + 5] = 0x90;  // element 101: 9, fifth bit clear
  qs[96 + 31] = 0xf0;  // element 224 + 31 (sub-block 7): 15
  qh[31] = 0x80;       // ... fifth bit (bit 7): 31
  const auto y = dequantize(DType::Q5_K, b, 256);
  CHECK(y[100] == doctest::Approx(1.0 * 2 * 23 - 0.5 * 4));
  CHECK(y[101] == doctest::Approx(1.0 * 2 * 9 - 0.5 * 4));
  CHECK(y[255] == doctest::Approx(1.0 * 19 * 31 - 0.5 * 1));
  CHECK(y[224] == doctest::Approx(-0.5));
  CHECK(y[4] == 0.0f);  // low nibble of qs[4]: sub-block 0, scale 0, min 0
}

TEST_CASE("Q6_K hand-built block") {
  std::vector<uint8_t> b(210, 0);
  uint8_t* ql = b.data();
  uint8_t* qh = b.data() + 128;
  auto* sc = reinterpret_cast<int8_t*>(b.data() + 192);
  put_u16(b, 208, kHalfHalf);  // d = 0.5
  sc[3] = -5;                  // elements 48..63
  sc[12] = 7;                  // elements 192..207
  // element 50 = 32 + 18: low nibble of ql[32+18], qh[18] bits 2-3
  ql[50] = 0x09;
  qh[18] = 0x08;  // bits 2-3 = 2 -> q = 9 + 32 - 32 = 9
  // element 200 = 128 + 64 + 8: high nibble of ql[64+8], qh[32+8] bits 4-5
  ql[72] = 0x30;
  qh[40] = 0x30;  // q = 3 + 48 - 32 = 19
  const auto y = dequantize(DType::Q6_K, b, 256);
  CHECK(y[50] == doctest::Approx(0.5 * -5 * 9));
  CHECK(y[51] == doctest::Approx(0.5 * -5 * -32));
  CHECK(y[200] == doctest::Approx(0.5 * 7 * 19));
  CHECK(y[201] == doctest::Approx(0.5 * 7 * -32));
  CHECK(y[136] == 0.0f);  // scale 8 is 0
}

TEST_CASE("Q8_K quantize follows the format") {
  std::mt19937 rng(7);
  std::vector<float> x = random_floats(512, rng, 3.0f);
  for (int i = 256; i < 512; ++i) x[i] = std::clamp(x[i], -9.0f, 9.0f);
  x[300] = -9.5f;  // the second block's largest magnitude, negative
  const auto q = quantize_q8k(x);
  for (int blk = 0; blk < 2; ++blk) {
    const uint8_t* base = q.data() + blk * 292;
    float d;
    std::memcpy(&d, base, 4);
    float amax = 0;
    for (int i = 0; i < 256; ++i) amax = std::max(amax, std::fabs(x[blk * 256 + i]));
    CHECK(d == doctest::Approx(amax / 127.0f));
    const auto* qs = reinterpret_cast<const int8_t*>(base + 4);
    int16_t bsums[16];
    std::memcpy(bsums, base + 260, 32);
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) {
        const int k = g * 16 + i;
        CHECK(std::abs(qs[k] - x[blk * 256 + k] / d) <= 0.5001f);
        CHECK(qs[k] >= -127);
        sum += qs[k];
      }
      CHECK(bsums[g] == sum);
    }
  }
  CHECK(static_cast<int8_t>(q[292 + 4 + 44]) == -127);  // x[300] is the block's extreme
  const auto back = dequantize(DType::Q8_K, q, 512);
  for (int i = 0; i < 512; ++i) {
    float d;
    std::memcpy(&d, q.data() + (i / 256) * 292, 4);
    CHECK(std::fabs(back[i] - x[i]) <= d * 0.5001f);
  }

  std::vector<float> zeros(256, 0.0f);
  const auto qz = quantize_q8k(zeros);
  CHECK(std::all_of(qz.begin(), qz.end(), [](uint8_t v) { return v == 0; }));
}

TEST_CASE("Q8_K quantize: every SIMD version is byte-identical to scalar") {
  std::mt19937 rng(11);
  const int64_t n = 256 * 64;
  std::vector<float> x = random_floats(n, rng, 2.0f);
  // block 1: exact ties (amax 127 makes the multiplier 1), which must round to even everywhere
  for (int i = 0; i < 256; ++i) x[256 + i] = static_cast<float>(i % 16) - 7.5f;
  x[256 + 255] = 127.0f;
  std::fill(x.begin() + 512, x.begin() + 768, 0.0f);               // block 2: all zero
  for (int i = 768; i < 1024; ++i) x[i] = (i % 2 ? 1e-30f : -1e-30f);  // block 3: tiny
  for (int i = 1024; i < 1280; ++i) x[i] *= 1e6f;                  // block 4: huge
  const auto ref = quantize_q8k(x);
  const auto* tie_block = reinterpret_cast<const int8_t*>(ref.data() + 292 + 4);  // block 1's qs
  CHECK(tie_block[2] == -6);  // -5.5 -> -6 (even)
  CHECK(tie_block[3] == -4);  // -4.5 -> -4 (even)
  for (compute::Isa isa : simd_isas()) {
    CAPTURE(name_of(isa));
    const auto got = quantize_q8k(x, isa);
    REQUIRE(got.size() == ref.size());
    int mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i) mismatches += got[i] != ref[i];
    CHECK(mismatches == 0);
  }
}

TEST_CASE("vec_dot: every SIMD version matches scalar on random blocks") {
  std::mt19937 rng(1234);
  const int64_t blocks_per_row = 8, rows = 500;  // 4000 random blocks per type
  const int64_t n = blocks_per_row * 256;
  for (DType t : kWeightTypes) {
    CAPTURE(name_of(t));
    const auto w = random_blocks(t, blocks_per_row * rows, rng);
    const auto wf = dequantize(t, w, n * rows);
    const auto wo = offset_parts(t, w, n * rows);
    const size_t wrow = compute::row_bytes(t, n);
    const auto scalar_dot = compute::kernels_for(compute::Isa::Scalar)[t].vec_dot;
    for (compute::Isa isa : simd_isas()) {
      CAPTURE(name_of(isa));
      const auto simd_dot = compute::kernels_for(isa)[t].vec_dot;
      REQUIRE(bool(simd_dot != scalar_dot));  // the SIMD kernel is registered
      double worst = 0;
      for (int64_t r = 0; r < rows; ++r) {
        // activations of varying size, a third of the rows with one outlier
        auto x = random_floats(n, rng, r % 2 ? 0.01f : 5.0f);
        if (r % 3 == 0) x[static_cast<size_t>(r % n)] = 1000.0f;
        const auto xq = quantize_q8k(x);
        const auto xf = dequantize(DType::Q8_K, xq, n);
        double magnitude = 0;
        for (int64_t i = 0; i < n; ++i)
          magnitude += (std::fabs(double(wf[r * n + i])) + std::fabs(double(wo[r * n + i]))) * std::fabs(xf[i]);
        const float a = scalar_dot(n, w.data() + r * wrow, xq.data());
        const float b = simd_dot(n, w.data() + r * wrow, xq.data());
        worst = std::max(worst, std::fabs(double(a) - b) / magnitude);
      }
      MESSAGE(name_of(t) << " " << name_of(isa) << ": worst |simd - scalar| / sum (|w| + |offset|)|x| = " << worst);
      CHECK(worst < 1e-5);
    }
  }
}

TEST_CASE("vec_dot_rows gives exactly the same ISA's vec_dot for every row and token") {
  std::mt19937 rng(77);
  std::uniform_int_distribution<int> rows_d(1, 9), tok_d(1, 9), blocks_d(1, 6), pad(0, 40);
  for (compute::Isa isa : simd_isas()) {
    const auto& k = compute::kernels_for(isa);
    for (DType t : kWeightTypes) {
      if (!k[t].vec_dot_rows) continue;
      CAPTURE(name_of(isa));
      CAPTURE(name_of(t));
      for (int rep = 0; rep < 20; ++rep) {
        const int64_t n = 256 * blocks_d(rng), nrows = rows_d(rng), ntok = tok_d(rng);
        const size_t w_stride = compute::row_bytes(t, n) + 2 * pad(rng);
        const size_t x_stride = compute::row_bytes(DType::Q8_K, n) + 4 * pad(rng);
        const int64_t y_stride = nrows + pad(rng);
        std::vector<uint8_t> w(w_stride * nrows), x(x_stride * ntok);
        for (int64_t r = 0; r < nrows; ++r) {
          const auto row = random_blocks(t, n / 256, rng);
          std::copy(row.begin(), row.end(), w.begin() + static_cast<std::ptrdiff_t>(r * w_stride));
        }
        for (int64_t j = 0; j < ntok; ++j) {
          const auto row = quantize_q8k(random_floats(n, rng, 2.0f));
          std::copy(row.begin(), row.end(), x.begin() + static_cast<std::ptrdiff_t>(j * x_stride));
        }
        std::vector<float> y(static_cast<size_t>(y_stride * ntok), -12345.0f);
        k[t].vec_dot_rows(n, w.data(), w_stride, nrows, x.data(), x_stride, ntok, y.data(), y_stride);
        for (int64_t j = 0; j < ntok; ++j)
          for (int64_t r = 0; r < y_stride; ++r) {
            const float got = y[static_cast<size_t>(j * y_stride + r)];
            if (r >= nrows) {
              CHECK(got == -12345.0f);  // the gap is left alone
              continue;
            }
            CHECK(got == k[t].vec_dot(n, w.data() + r * w_stride, x.data() + j * x_stride));
          }
      }
    }
  }
}

TEST_CASE("vec_dot against Q8_K activations approximates dot(dequantize(w), x)") {
  std::mt19937 rng(99);
  const int64_t n = 256 * 4;
  for (DType t : kWeightTypes) {
    CAPTURE(name_of(t));
    for (int trial = 0; trial < 20; ++trial) {
      const auto w = random_blocks(t, n / 256, rng);
      const auto wf = dequantize(t, w, n);
      const auto x = random_floats(n, rng);
      double ref = 0, magnitude = 0;
      for (int64_t i = 0; i < n; ++i) {
        ref += double(wf[i]) * x[i];
        magnitude += std::fabs(double(wf[i]) * x[i]);
      }
      for (compute::Isa isa : {compute::Isa::Scalar, compute::Isa::AVX2, compute::Isa::AVX512}) {
        if (isa > compute::detected_isa()) continue;
        const auto xq = quantize_q8k(x, isa);
        const float got = compute::kernels_for(isa)[t].vec_dot(n, w.data(), xq.data());
        CAPTURE(name_of(isa));
        // Q8_K's rounding is at most half a step of amax/127 per element
        CHECK(std::fabs(got - ref) <= 0.01 * magnitude);
      }
    }
  }
}

namespace {

std::vector<uint8_t> read_tensor(const gguf::GGUFFile& file, const gguf::TensorInfo& t) {
  const auto f = storage::File::open_read(file.paths().at(t.file_index));
  std::vector<uint8_t> bytes(t.nbytes);
  f.read_exact(bytes.data(), bytes.size(), t.offset);
  return bytes;
}

std::vector<float> read_f32_tensor(const gguf::GGUFFile& file, const std::string& name) {
  const auto& t = file.require_tensor(name, "the K-quant comparison");
  REQUIRE(t.type == DType::F32);
  const auto bytes = read_tensor(file, t);
  std::vector<float> out(static_cast<size_t>(t.n_elements));
  REQUIRE(bytes.size() == out.size() * 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace

// llama-quantize made these files from the F32 one, so every K-quant tensor must dequantize to
// (nearly) the F32 tensor of the same name. A wrong bit or nibble order scrambles elements and
// gives a relative error near sqrt(2).
TEST_CASE("real model: K-quant tensors dequantize to the F32 model's tensors") {
  STRATA_REQUIRE_SHARED(shared);
  const auto models = shared / "models";
  const auto f32 = gguf::GGUFFile::open((models / "stories260K-w256-f32.gguf").string());
  // measured worst relative RMS error per type (see the MESSAGE lines), bounds with margin
  const std::map<DType, double> bound = {
      {DType::Q2_K, 0.45}, {DType::Q3_K, 0.30}, {DType::Q4_K, 0.10}, {DType::Q5_K, 0.05}, {DType::Q6_K, 0.025}};
  std::map<DType, double> worst;
  std::map<DType, int> count;
  for (const char* name : {"stories260K-w256-q2_k.gguf", "stories260K-w256-q4_k_m.gguf",
                           "stories260K-w256-q5_k_m.gguf", "stories260K-w256-q6_k.gguf"}) {
    const auto q = gguf::GGUFFile::open((models / name).string());
    for (const auto& t : q.tensors()) {
      if (!bound.count(t.type)) continue;
      const std::string file_name = name;
      CAPTURE(file_name);
      CAPTURE(t.name);
      const auto ref = read_f32_tensor(f32, t.name);
      REQUIRE(static_cast<int64_t>(ref.size()) == t.n_elements);
      REQUIRE(t.nbytes == compute::row_bytes(t.type, t.n_elements));
      const auto got = dequantize(t.type, read_tensor(q, t), t.n_elements);
      double err = 0, norm = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        err += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
        norm += double(ref[i]) * ref[i];
      }
      REQUIRE(norm > 0);
      const double rel = std::sqrt(err / norm);
      CHECK(rel < bound.at(t.type));
      worst[t.type] = std::max(worst[t.type], rel);
      ++count[t.type];
    }
  }
  for (const auto& [type, b] : bound) {
    MESSAGE(name_of(type) << ": " << count[type] << " tensors, worst relative RMS error " << worst[type]);
    CHECK(count[type] > 0);
  }
}

// The same tensors through vec_dot (every ISA): a weight matrix times an activation vector
// against the F32 matrix times the same vector.
TEST_CASE("real model: K-quant matrix-vector products match the F32 model") {
  STRATA_REQUIRE_SHARED(shared);
  const auto models = shared / "models";
  const auto f32 = gguf::GGUFFile::open((models / "stories260K-w256-f32.gguf").string());
  const std::pair<const char*, const char*> cases[] = {
      {"stories260K-w256-q2_k.gguf", "blk.0.ffn_gate.weight"},   // Q2_K
      {"stories260K-w256-q2_k.gguf", "blk.1.ffn_down.weight"},   // Q3_K
      {"stories260K-w256-q4_k_m.gguf", "blk.0.ffn_gate.weight"}, // Q4_K
      {"stories260K-w256-q5_k_m.gguf", "blk.0.ffn_gate.weight"}, // Q5_K
      {"stories260K-w256-q6_k.gguf", "blk.0.ffn_gate.weight"},   // Q6_K
  };
  std::mt19937 rng(5);
  for (const auto& [file, tensor] : cases) {
    const std::string file_name = file, tensor_name = tensor;
    CAPTURE(file_name);
    CAPTURE(tensor_name);
    const auto q = gguf::GGUFFile::open((models / file).string());
    const auto& t = q.require_tensor(tensor, "the K-quant matvec comparison");
    const auto bytes = read_tensor(q, t);
    const auto ref = read_f32_tensor(f32, tensor);
    const int64_t cols = t.shape[0], rows = t.rows();
    const auto x = random_floats(cols, rng);
    std::vector<double> y_ref(rows);
    double y_norm = 0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) y_ref[r] += double(ref[r * cols + c]) * x[c];
      y_norm += y_ref[r] * y_ref[r];
    }
    for (compute::Isa isa : {compute::Isa::Scalar, compute::Isa::AVX2, compute::Isa::AVX512}) {
      if (isa > compute::detected_isa()) continue;
      CAPTURE(name_of(isa));
      const auto& k = compute::kernels_for(isa);
      REQUIRE(bool(k[t.type].vec_dot));
      const auto xq = quantize_q8k(x, isa);
      double err = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const float y = k[t.type].vec_dot(cols, bytes.data() + r * compute::row_bytes(t.type, cols), xq.data());
        err += (y - y_ref[r]) * (y - y_ref[r]);
      }
      const double rel = std::sqrt(err / y_norm);
      MESSAGE(file_name << " " << tensor_name << " (" << name_of(t.type) << ", " << name_of(isa)
                   << "): relative RMS error of W*x " << rel);
      CHECK(rel < (t.type == DType::Q2_K || t.type == DType::Q3_K ? 0.4 : 0.1));
    }
  }
}
