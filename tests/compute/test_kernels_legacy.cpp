// Float and 32-wide block kernels: exact decoding of hand-made blocks, quantization error
// bounds, every SIMD kernel against the scalar reference, and vec_dot against a float dot.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "compute/quant.h"
#include "compute/repack.h"

using namespace strata::compute;

namespace {

constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,
                                  DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0};
constexpr DType kActivationTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q8_1};
constexpr Isa kSimdIsas[] = {Isa::AVX2, Isa::AVX512};

uint16_t h(float f) { return fp32_to_fp16(f); }

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

// Byte offsets of the scales and quants inside each block, from the format description.
struct Layout {
  int d = 0;
  int m = -1;   // min (Q4_1, Q5_1) or d * sum (Q8_1)
  int qs = 0;   // first quant byte
  bool signed8 = false;
};
Layout layout(DType t) {
  switch (t) {
    case DType::Q4_0: return {0, -1, 2};
    case DType::Q4_1: return {0, 2, 4};
    case DType::Q5_0: return {0, -1, 6};
    case DType::Q5_1: return {0, 2, 8};
    case DType::Q8_0: return {0, -1, 2, true};
    case DType::Q8_1: return {0, 2, 4, true};
    default: return {};
  }
}

// A row of n elements with random quant bytes and scales in the range real models use.
// Signed 8-bit quants stay in [-127, 127], the range quantize produces: the SIMD kernels may
// negate them.
std::vector<uint8_t> random_row(DType t, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> row(row_bytes(t, n));
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  if (t == DType::F32) {
    for (int64_t i = 0; i < n; ++i) {
      const float f = unit(rng);
      std::memcpy(row.data() + 4 * i, &f, 4);
    }
    return row;
  }
  if (t == DType::F16 || t == DType::BF16) {
    for (int64_t i = 0; i < n; ++i) put16(row, 2 * i, t == DType::F16 ? h(unit(rng)) : fp32_to_bf16(unit(rng)));
    return row;
  }
  std::uniform_int_distribution<int> byte(0, 255), q8(-127, 127);
  const TypeInfo& info = type_info(t);
  const Layout l = layout(t);
  for (size_t b = 0; b < row.size(); b += info.block_bytes) {
    for (int k = 0; k < info.block_bytes; ++k) row[b + k] = static_cast<uint8_t>(byte(rng));
    if (l.signed8)
      for (int k = 0; k < 32; ++k) row[b + l.qs + k] = static_cast<uint8_t>(static_cast<int8_t>(q8(rng)));
    put16(row, b + l.d, h(0.02f * unit(rng)));
    if (l.m >= 0) put16(row, b + l.m, h(0.5f * unit(rng)));
  }
  return row;
}

std::vector<float> dequantized(const KernelTable& k, DType t, const std::vector<uint8_t>& row, int64_t n) {
  std::vector<float> out(n);
  k[t].dequantize(row.data(), out.data(), n);
  return out;
}

std::vector<uint8_t> quantized(const KernelTable& k, DType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(row_bytes(t, static_cast<int64_t>(x.size())));
  k[t].quantize(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

double abs_dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(static_cast<double>(a[i]) * b[i]);
  return s;
}

std::vector<uint8_t> block(std::initializer_list<uint8_t> head, const uint8_t* tail, size_t tail_len) {
  std::vector<uint8_t> b(head);
  b.insert(b.end(), tail, tail + tail_len);
  return b;
}

// Shared quant bytes of the hand-made blocks: low nibble j, high nibble 15 - j.
constexpr uint8_t kNibbles[16] = {0xF0, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87,
                                  0x78, 0x69, 0x5A, 0x4B, 0x3C, 0x2D, 0x1E, 0x0F};
constexpr int8_t kBytes[32] = {-128, -127, -100, -64, -33, -8, -2, -1, 0,  1,   2,  3,   5,  8,  13, 21,
                               34,   55,   89,   127, 126, 7,  -7, 16, -16, 64, -64, 100, 99, -99, 42, -42};

// Hand-made blocks and their element values, worked out by hand from the format description.
struct HandBlock {
  DType type;
  std::vector<uint8_t> bytes;
  std::vector<float> expected;
};

std::vector<HandBlock> hand_blocks() {
  const auto* q8 = reinterpret_cast<const uint8_t*>(kBytes);
  return {
      // d = 0.5
      {DType::Q4_0, block({0x00, 0x38}, kNibbles, 16),
       {-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5,
        3.5, 3, 2.5, 2, 1.5, 1, 0.5, 0, -0.5, -1, -1.5, -2, -2.5, -3, -3.5, -4}},
      // d = 0.25, m = -1
      {DType::Q4_1, block({0x00, 0x34, 0x00, 0xBC}, kNibbles, 16),
       {-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75,
        2.75, 2.5, 2.25, 2, 1.75, 1.5, 1.25, 1, 0.75, 0.5, 0.25, 0, -0.25, -0.5, -0.75, -1}},
      // d = 1, fifth bits set for elements 0-3, 12-15, 16, 31
      {DType::Q5_0, block({0x00, 0x3C, 0x0F, 0xF0, 0x01, 0x80}, kNibbles, 16),
       {0, 1, 2, 3, -12, -11, -10, -9, -8, -7, -6, -5, 12, 13, 14, 15,
        15, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, 0}},
      // d = 2, m = 0.5, fifth bits 0 2 4 6, 16-23, 24, 31
      {DType::Q5_1, block({0x00, 0x40, 0x00, 0x38, 0x55, 0x00, 0xFF, 0x81}, kNibbles, 16),
       {32.5, 2.5, 36.5, 6.5, 40.5, 10.5, 44.5, 14.5, 16.5, 18.5, 20.5, 22.5, 24.5, 26.5, 28.5, 30.5,
        62.5, 60.5, 58.5, 56.5, 54.5, 52.5, 50.5, 48.5, 46.5, 12.5, 10.5, 8.5, 6.5, 4.5, 2.5, 32.5}},
      // d = 0.5
      {DType::Q8_0, block({0x00, 0x38}, q8, 32),
       {-64, -63.5, -50, -32, -16.5, -4, -1, -0.5, 0, 0.5, 1, 1.5, 2.5, 4, 6.5, 10.5,
        17, 27.5, 44.5, 63.5, 63, 3.5, -3.5, 8, -8, 32, -32, 50, 49.5, -49.5, 21, -21}},
      // d = 0.25, s ignored by dequantize
      {DType::Q8_1, block({0x00, 0x34, 0x34, 0x12}, q8, 32),
       {-32, -31.75, -25, -16, -8.25, -2, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1.25, 2, 3.25, 5.25,
        8.5, 13.75, 22.25, 31.75, 31.5, 1.75, -1.75, 4, -4, 16, -16, 25, 24.75, -24.75, 10.5, -10.5}},
      // 1, -2, 65504 (largest), 2^-24 (smallest subnormal), -0, 1/3 rounded, 2^-14, -1.5
      {DType::F16, {0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00, 0x00, 0x80, 0x55, 0x35, 0x00, 0x04, 0x00, 0xBE},
       {1, -2, 65504, 5.9604644775390625e-8f, -0.0f, 0.333251953125f, 6.103515625e-5f, -1.5}},
      // 1, -3, 3.140625, 2^-126 * 1.5 ... as bf16: 0x00C0
      {DType::BF16, {0x80, 0x3F, 0x40, 0xC0, 0x49, 0x40, 0xC0, 0x00},
       {1, -3, 3.140625, 1.763241526e-38f}},
  };
}

std::vector<Isa> usable_isas() {
  std::vector<Isa> out{Isa::Scalar};
  for (Isa isa : kSimdIsas)
    if (detected_isa() >= isa) out.push_back(isa);
    else MESSAGE((std::string("skipped ") + isa_name(isa) + " kernels: this CPU lacks " + isa_name(isa)));
  return out;
}

}  // namespace

TEST_CASE("dequantize decodes hand-made blocks exactly") {
  for (Isa isa : usable_isas()) {
    const KernelTable& k = kernels_for(isa);
    for (const HandBlock& hb : hand_blocks()) {
      CAPTURE(std::string(isa_name(isa)));
      CAPTURE(std::string(type_name(hb.type)));
      const auto n = static_cast<int64_t>(hb.expected.size());
      REQUIRE(hb.bytes.size() == row_bytes(hb.type, n));
      const std::vector<float> got = dequantized(k, hb.type, hb.bytes, n);
      for (int64_t j = 0; j < n; ++j) {
        CAPTURE(j);
        CHECK(got[j] == hb.expected[j]);
        CHECK(std::signbit(got[j]) == std::signbit(hb.expected[j]));
      }
    }
    const float f32[3] = {1.5f, -0.0f, 3e38f};
    std::vector<uint8_t> raw(12);
    std::memcpy(raw.data(), f32, 12);
    const std::vector<float> got = dequantized(k, DType::F32, raw, 3);
    CHECK(std::memcmp(got.data(), f32, 12) == 0);
  }
}

TEST_CASE("vec_dot of hand-made blocks") {
  // Activations: kBytes with -128 clamped to -127 (quantize never produces -128).
  int8_t act[32];
  std::memcpy(act, kBytes, 32);
  act[0] = -127;
  const auto* a = reinterpret_cast<const uint8_t*>(act);
  const std::vector<uint8_t> x8_0 = block({0x00, 0x38}, a, 32);  // d = 0.5
  const uint16_t s = h(30.5f);                                   // 0.25 * sum(act) = 0.25 * 122
  const std::vector<uint8_t> x8_1 = block({0x00, 0x34, static_cast<uint8_t>(s), static_cast<uint8_t>(s >> 8)}, a, 32);
  const std::vector<HandBlock> hb = hand_blocks();
  struct Case {
    size_t block;
    const std::vector<uint8_t>* x;
    float expected;
  };
  const Case cases[] = {{0, &x8_0, 1253.0f}, {1, &x8_1, 343.75f}, {2, &x8_0, -1014.0f},
                        {3, &x8_1, 4025.25f}, {4, &x8_0, 33597.75f}};
  for (Isa isa : usable_isas()) {
    for (const Case& c : cases) {
      CAPTURE(std::string(isa_name(isa)));
      CAPTURE(std::string(type_name(hb[c.block].type)));
      CHECK(kernels_for(isa)[hb[c.block].type].vec_dot(32, hb[c.block].bytes.data(), c.x->data()) == c.expected);
    }
  }
}

TEST_CASE("q8 quantization rounds x * (127 / amax) half to even, as llama.cpp's x86 quantizer") {
  // amax = 127 makes the multiplier exactly 1, so the quants are the rounded inputs.
  std::vector<float> x = {127, 2.5f, -2.5f, 0.5f, -0.5f, 1.49f, -1.51f, 3.5f, -126.5f, 0, -0.0f, 0.49f};
  x.resize(32, 7.25f);
  const int8_t expected[12] = {127, 2, -2, 0, 0, 1, -2, 4, -126, 0, 0, 0};
  for (Isa isa : usable_isas()) {
    CAPTURE(std::string(isa_name(isa)));
    const std::vector<uint8_t> q0 = quantized(kernels_for(isa), DType::Q8_0, x);
    const std::vector<uint8_t> q1 = quantized(kernels_for(isa), DType::Q8_1, x);
    uint16_t d0, d1, s1;
    std::memcpy(&d0, q0.data(), 2);
    std::memcpy(&d1, q1.data(), 2);
    std::memcpy(&s1, q1.data() + 2, 2);
    CHECK(d0 == 0x3C00);
    CHECK(d1 == 0x3C00);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      CAPTURE(j);
      const int want = j < 12 ? expected[j] : 7;
      CHECK(static_cast<int8_t>(q0[2 + j]) == want);
      CHECK(static_cast<int8_t>(q1[4 + j]) == want);
      sum += want;
    }
    CHECK(s1 == h(static_cast<float>(sum)));
    // An all-zero block has d = 0 and zero quants.
    const std::vector<uint8_t> z = quantized(kernels_for(isa), DType::Q8_1, std::vector<float>(32, 0.0f));
    for (uint8_t byte : z) CHECK(byte == 0);
  }
}

TEST_CASE("quantize then dequantize stays within the format's error bound") {
  std::mt19937 rng(7);
  for (Isa isa : usable_isas()) {
    const KernelTable& k = kernels_for(isa);
    for (DType t : kActivationTypes) {
      CAPTURE(std::string(isa_name(isa)));
      CAPTURE(std::string(type_name(t)));
      for (float range : {1e-3f, 1.0f, 300.0f}) {
        std::uniform_real_distribution<float> dist(-range, range);
        std::vector<float> x(32 * 64);
        for (float& v : x) v = dist(rng);
        const std::vector<uint8_t> q = quantized(k, t, x);
        const std::vector<float> back = dequantized(k, t, q, static_cast<int64_t>(x.size()));
        for (size_t b = 0; b < x.size(); b += 32) {
          float amax = 0;
          for (size_t j = b; j < b + 32; ++j) amax = std::max(amax, std::fabs(x[j]));
          // fp16 rounding of d: half an ulp, which is absolute (2^-25) once d is subnormal.
          const float d_err = std::max(amax / 127.0f * 0x1p-11f, 0x1p-25f);
          for (size_t j = b; j < b + 32; ++j) {
            float bound;
            switch (t) {
              case DType::F32: bound = 0; break;
              case DType::F16: bound = std::max(std::fabs(x[j]) * 0x1p-11f, 0x1p-25f); break;
              case DType::BF16: bound = std::fabs(x[j]) * 0x1p-8f; break;
              // Half a step from rounding, plus the rounding of d times |q| <= 127.
              default: bound = (amax / 127.0f * 0.5f + 127.0f * d_err) * 1.0001f; break;
            }
            CAPTURE(x[j]);
            CHECK(std::fabs(back[j] - x[j]) <= bound);
          }
          if (t == DType::Q8_1) {  // s holds d * sum(q): the sum of the block's dequantized values
            uint16_t s;
            std::memcpy(&s, q.data() + b / 32 * 36 + 2, 2);
            double sum = 0;
            for (size_t j = b; j < b + 32; ++j) sum += back[j];
            CHECK(std::fabs(fp16_to_fp32(s) - sum) <= std::fabs(sum) * 0x1p-11 + 0x1p-25 + 32 * 127 * d_err);
          }
        }
      }
    }
  }
}

TEST_CASE("SIMD kernels equal the scalar reference") {
  const KernelTable& ref = kernels_for(Isa::Scalar);
  for (Isa isa : usable_isas()) {
    if (isa == Isa::Scalar) continue;
    const KernelTable& simd = kernels_for(isa);
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> blocks(1, 40);
    for (DType t : kWeightTypes) {
      CAPTURE(std::string(isa_name(isa)));
      CAPTURE(std::string(type_name(t)));
      const DType xt = type_info(t).vec_dot_type;
      int64_t total_blocks = 0;
      while (total_blocks < 4000) {
        const int64_t n = 32 * blocks(rng) + (type_info(t).block_elems == 1 ? blocks(rng) % 31 : 0);
        total_blocks += n / 32;
        const std::vector<uint8_t> w = random_row(t, n, rng), x = random_row(xt, n, rng);
        const float want = ref[t].vec_dot(n, w.data(), x.data());
        const float got = simd[t].vec_dot(n, w.data(), x.data());
        // Summation order differs; bound by the result and by the size of the terms.
        const double terms = abs_dot(dequantized(ref, t, w, n), dequantized(ref, xt, x, n));
        CAPTURE(n);
        CHECK(std::fabs(got - want) <= 1e-5 * std::fabs(want) + 1e-6 * terms);
        const std::vector<float> dw = dequantized(simd, t, w, n), dw_ref = dequantized(ref, t, w, n);
        CHECK(std::memcmp(dw.data(), dw_ref.data(), 4 * n) == 0);
      }
    }
    // Quantization is bit-identical (NaNs aside, which activations never hold).
    for (DType t : kActivationTypes) {
      CAPTURE(std::string(isa_name(isa)));
      CAPTURE(std::string(type_name(t)));
      for (float range : {1e-6f, 0.01f, 1.0f, 1e3f, 1e5f}) {
        std::uniform_real_distribution<float> dist(-range, range);
        std::vector<float> x(32 * 200 + (type_info(t).block_elems == 1 ? 13 : 0));
        for (float& v : x) v = dist(rng);
        for (size_t j = 0; j < x.size(); j += 97) x[j] = std::round(x[j]);  // ties and zeros
        CHECK(quantized(simd, t, x) == quantized(ref, t, x));
      }
    }
  }
}

TEST_CASE("vec_dot with quantized activations approximates the float dot product") {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (Isa isa : usable_isas()) {
    const KernelTable& k = kernels_for(isa);
    for (DType t : kWeightTypes) {
      CAPTURE(std::string(isa_name(isa)));
      CAPTURE(std::string(type_name(t)));
      const DType xt = type_info(t).vec_dot_type;
      for (int rep = 0; rep < 20; ++rep) {
        const int64_t n = 32 * (1 + rep * 7);
        const std::vector<uint8_t> w = random_row(t, n, rng);
        std::vector<float> x(n);
        for (float& v : x) v = normal(rng) * (rep % 3 == 0 ? 100.0f : 1.0f);
        const std::vector<float> wf = dequantized(k, t, w, n);
        double want = 0, bound = 0;
        for (int64_t b = 0; b < n; b += 32) {
          float amax = 0;
          for (int64_t j = b; j < b + 32; ++j) amax = std::max(amax, std::fabs(x[j]));
          // Worst-case activation rounding per element, as in the round-trip test.
          const double step = xt == DType::F32 ? 0 : xt == DType::F16 ? 0x1p-11 : amax / 127.0 * 0.57;
          for (int64_t j = b; j < b + 32; ++j) {
            want += static_cast<double>(wf[j]) * x[j];
            bound += std::fabs(wf[j]) * (xt == DType::F16 ? std::max(std::fabs(x[j]) * step, 0x1p-25) : step);
          }
        }
        bound += 1e-5 * abs_dot(wf, x);  // f32 accumulation
        const float got = k[t].vec_dot(n, w.data(), quantized(k, xt, x).data());
        CAPTURE(n);
        CHECK(std::fabs(got - want) <= bound);
      }
    }
  }
}

TEST_CASE("vec_dot_rows equals vec_dot for every row and token") {
  const KernelTable& ref = kernels_for(Isa::Scalar);
  std::mt19937 rng(5);
  // Up to 20 rows: the AVX-512 VNNI Q4_0 kernel works in groups of eight plus a remainder.
  std::uniform_int_distribution<int> small(1, 9), row_count(1, 20), blocks(1, 21), pad(0, 40);
  for (Isa isa : usable_isas()) {
    const KernelTable& k = kernels_for(isa);
    for (DType t : kWeightTypes) {
      if (!k[t].vec_dot_rows) continue;
      CAPTURE(std::string(isa_name(isa)));
      CAPTURE(std::string(type_name(t)));
      const DType xt = type_info(t).vec_dot_type;
      for (int rep = 0; rep < 30; ++rep) {
        const int64_t n = 32 * blocks(rng), nrows = row_count(rng), ntok = small(rng);
        // Strides with gaps: rows of a larger matrix, outputs into a wider buffer.
        const size_t w_stride = row_bytes(t, n) + 2 * pad(rng), x_stride = row_bytes(xt, n) + 2 * pad(rng);
        const int64_t y_stride = nrows + pad(rng);
        std::vector<uint8_t> w(w_stride * nrows), x(x_stride * ntok);
        for (int64_t r = 0; r < nrows; ++r) {
          const std::vector<uint8_t> row = random_row(t, n, rng);
          std::copy(row.begin(), row.end(), w.begin() + r * w_stride);
        }
        for (int64_t j = 0; j < ntok; ++j) {
          const std::vector<uint8_t> row = random_row(xt, n, rng);
          std::copy(row.begin(), row.end(), x.begin() + j * x_stride);
        }
        std::vector<float> y(y_stride * ntok, -12345.0f);
        k[t].vec_dot_rows(n, w.data(), w_stride, nrows, x.data(), x_stride, ntok, y.data(), y_stride);
        for (int64_t j = 0; j < ntok; ++j) {
          for (int64_t r = 0; r < y_stride; ++r) {
            CAPTURE(n);
            CAPTURE(j);
            CAPTURE(r);
            const float got = y[j * y_stride + r];
            if (r >= nrows) {  // the gap is left alone
              CHECK(got == -12345.0f);
              continue;
            }
            const void* wr = w.data() + r * w_stride;
            const void* xr = x.data() + j * x_stride;
            const float want = ref[t].vec_dot(n, wr, xr);
            const std::vector<uint8_t> wv(static_cast<const uint8_t*>(wr), static_cast<const uint8_t*>(wr) + row_bytes(t, n));
            const std::vector<uint8_t> xv(static_cast<const uint8_t*>(xr), static_cast<const uint8_t*>(xr) + row_bytes(xt, n));
            const double terms = abs_dot(dequantized(ref, t, wv, n), dequantized(ref, xt, xv, n));
            CHECK(std::fabs(got - want) <= 1e-5 * std::fabs(want) + 1e-6 * terms);
          }
        }
      }
    }
  }
}

// y (filled with -12345 before the kernel ran) equals `want` bit for bit in the first nrows of
// each token's row and is untouched past them.
static void check_same_bits(const std::vector<float>& y, const std::vector<float>& want, int64_t n, int64_t nrows,
                     int64_t ntok, int64_t y_stride) {
  for (int64_t j = 0; j < ntok; ++j)
    for (int64_t r = 0; r < y_stride; ++r) {
      CAPTURE(n);
      CAPTURE(j);
      CAPTURE(r);
      const float got = y[j * y_stride + r];
      if (r >= nrows) {
        CHECK(got == -12345.0f);
        continue;
      }
      CHECK(got == want[j * y_stride + r]);
    }
}

TEST_CASE("Q4_0 repacked eight rows at a time (Q4_0_R8) gives the AVX2 kernel's bits") {
  if (detected_isa() < Isa::AVX512 || !kernels_for(Isa::AVX512)[DType::Q4_0_R8].vec_dot_rows) {
    MESSAGE("skipped: this CPU has no AVX512-VNNI, so Q4_0_R8 is never used");
    return;
  }
  const VecDotRowsFn r8 = kernels_for(Isa::AVX512)[DType::Q4_0_R8].vec_dot_rows;
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> groups(1, 5), toks(1, 9), blocks(1, 21), pad(0, 40);
  for (int rep = 0; rep < 40; ++rep) {
    const int64_t n = 256 * groups(rng), nrows = 8 * groups(rng), ntok = toks(rng);
    const size_t w_stride = row_bytes(DType::Q4_0, n);
    const size_t x_stride = row_bytes(DType::Q8_0, n) + 2 * pad(rng);
    const int64_t y_stride = nrows + pad(rng);
    std::vector<uint8_t> w(w_stride * nrows), x(x_stride * ntok);
    for (int64_t r = 0; r < nrows; ++r) {
      const std::vector<uint8_t> row = random_row(DType::Q4_0, n, rng);
      std::copy(row.begin(), row.end(), w.begin() + r * w_stride);
    }
    for (int64_t j = 0; j < ntok; ++j) {
      const std::vector<uint8_t> row = random_row(DType::Q8_0, n, rng);
      std::copy(row.begin(), row.end(), x.begin() + j * x_stride);
    }
    std::vector<uint8_t> packed = w;
    repack_q4_0_r8(packed.data(), nrows, n);
    CHECK(packed != w);
    std::vector<float> y(y_stride * ntok, -12345.0f), plain(y_stride * ntok);
    r8(n, packed.data(), w_stride, nrows, x.data(), x_stride, ntok, y.data(), y_stride);
    kernels_for(Isa::AVX2)[DType::Q4_0].vec_dot_rows(n, w.data(), w_stride, nrows, x.data(), x_stride, ntok,
                                                     plain.data(), y_stride);
    check_same_bits(y, plain, n, nrows, ntok, y_stride);
  }
}

TEST_CASE("Q4_0 on the plain layout with AVX-512 VBMI gives the AVX2 kernel's bits") {
  const VecDotRowsFn avx2 = kernels_for(Isa::AVX2)[DType::Q4_0].vec_dot_rows;
  const VecDotRowsFn wide = kernels_for(Isa::AVX512)[DType::Q4_0].vec_dot_rows;
  if (detected_isa() < Isa::AVX512 || wide == avx2) {
    MESSAGE("skipped: this CPU has no AVX512-VBMI and VNNI, so the AVX2 kernel serves Q4_0");
    return;
  }
  std::mt19937 rng(12);
  // Block counts both multiples of eight (the VBMI path) and not (handed to the AVX2 kernel);
  // rows odd and even, token counts across the 4-token passes.
  std::uniform_int_distribution<int> blocks(1, 40), rows(1, 13), toks(1, 9), pad(0, 40);
  for (int rep = 0; rep < 60; ++rep) {
    const int64_t n = 32 * (rep % 3 == 2 ? blocks(rng) : 8 * (1 + blocks(rng) % 6)), nrows = rows(rng), ntok = toks(rng);
    const size_t w_stride = row_bytes(DType::Q4_0, n) + 18 * (rep % 2);
    const size_t x_stride = row_bytes(DType::Q8_0, n) + 2 * pad(rng);
    const int64_t y_stride = nrows + pad(rng);
    std::vector<uint8_t> w(w_stride * nrows), x(x_stride * ntok);
    for (int64_t r = 0; r < nrows; ++r) {
      const std::vector<uint8_t> row = random_row(DType::Q4_0, n, rng);
      std::copy(row.begin(), row.end(), w.begin() + r * w_stride);
    }
    for (int64_t j = 0; j < ntok; ++j) {
      const std::vector<uint8_t> row = random_row(DType::Q8_0, n, rng);
      std::copy(row.begin(), row.end(), x.begin() + j * x_stride);
    }
    std::vector<float> y(y_stride * ntok, -12345.0f), want(y_stride * ntok);
    wide(n, w.data(), w_stride, nrows, x.data(), x_stride, ntok, y.data(), y_stride);
    avx2(n, w.data(), w_stride, nrows, x.data(), x_stride, ntok, want.data(), y_stride);
    check_same_bits(y, want, n, nrows, ntok, y_stride);
  }
}
