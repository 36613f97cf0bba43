// Random quant blocks. Each format gets its quant bits straight from the generator and scales
// picked so the dequantized values are centred and have the requested spread:
//   - formats with a signed code (q - zero point) get a random-sign block scale, so the small
//     asymmetry of the code range averages out;
//   - formats with a min (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) set the min to the code range's
//     midpoint times the scale, so every sub-block is centred on 0;
//   - K-quants use random 4/5/6-bit sub-scales under one fp16 super-block scale.
// The scale that gives standard deviation s is s / (rms of the code * rms of the sub-scale).
#include "models/synth_blocks.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

namespace strata::models::synth {

namespace {

using compute::DType;

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

// sqrt(E[x^2]) for x uniform on the integers lo, lo+1, ..., lo+count-1, measured from `centre`.
double uniform_rms(double lo, double count, double centre) {
  const double mean = lo + (count - 1) / 2 - centre;
  return std::sqrt(mean * mean + (count * count - 1) / 12);
}

inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline uint16_t half(float f) { return compute::fp32_to_fp16(f); }
inline float unhalf(uint16_t h) { return compute::fp16_to_fp32(h); }

// Uniform on (-a, a) from 24 random bits.
inline float uniform(uint64_t bits24, float a) {
  return (float(bits24 & 0xffffff) * (2.0f / 16777216.0f) - 1.0f + 1.0f / 16777216.0f) * a;
}

// Legacy-format block scales come from a 512-entry table: 8 bits of jitter in [0.75, 1.25)
// (so blocks are not all alike) and, for the signed formats, a sign bit. Converting to fp16
// once per table instead of once per block keeps generation near memory speed.
struct ScaleTable {
  uint16_t d[512];
  uint16_t m[512];  // the min that centres the block: -centre * d
};

ScaleTable make_scale_table(double target_rms, bool random_sign, float centre) {
  double sq = 0;
  for (int k = 0; k < 256; ++k) {
    const double j = 0.75 + 0.5 * (k + 0.5) / 256;
    sq += j * j;
  }
  const double base = target_rms / std::sqrt(sq / 256);
  ScaleTable t;
  for (int k = 0; k < 512; ++k) {
    const double j = 0.75 + 0.5 * ((k & 255) + 0.5) / 256;
    const double sign = random_sign && (k & 256) ? -1.0 : 1.0;
    t.d[k] = half(float(base * j * sign));
    t.m[k] = half(-centre * unhalf(t.d[k]));
  }
  return t;
}

// Every 16-bit pattern mapped to a uniform value on (-a, a) in a 16-bit float format. Kept per
// thread for the last (format, a) asked for, since consecutive pieces mostly share both.
const uint16_t* uniform_half_table(DType type, float a) {
  struct Cache {
    DType type = DType::F32;
    float a = -1;
    std::vector<uint16_t> table = std::vector<uint16_t>(65536);
  };
  thread_local Cache cache;
  if (cache.type != type || cache.a != a) {
    for (uint32_t k = 0; k < 65536; ++k) {
      const float v = float(((k + 0.5) / 32768.0 - 1.0) * a);
      cache.table[k] = type == DType::BF16 ? compute::fp32_to_bf16(v) : half(v);
    }
    cache.type = type;
    cache.a = a;
  }
  return cache.table.data();
}

struct F32Gen {
  static constexpr int kWords = 1, kBytes = 8;
  float a;
  void make(const uint64_t* w, uint8_t* out) const {
    const float v[2] = {uniform(w[0], a), uniform(w[0] >> 32, a)};
    std::memcpy(out, v, 8);
  }
};

// F32Gen's values, each times its row's gain; needs the block index to know the rows.
struct F32RowsGen {
  static constexpr int kWords = 1, kBytes = 8;
  float a;
  int64_t row_length;
  std::span<const float> gain;
  float gain_of(uint64_t element) const {  // the tensor's last block may run one element past it
    return gain[std::min<uint64_t>(element / uint64_t(row_length), gain.size() - 1)];
  }
  void make(const uint64_t* w, uint8_t* out, uint64_t block) const {
    const float v[2] = {uniform(w[0], a) * gain_of(2 * block), uniform(w[0] >> 32, a) * gain_of(2 * block + 1)};
    std::memcpy(out, v, 8);
  }
};

struct Half4Gen {  // F16 or BF16, four values per random word
  static constexpr int kWords = 1, kBytes = 8;
  const uint16_t* table;
  void make(const uint64_t* w, uint8_t* out) const {
    for (int i = 0; i < 4; ++i) put_u16(out + 2 * i, table[(w[0] >> (16 * i)) & 0xffff]);
  }
};

struct Q4_0Gen {  // d, qs[16]; x = d * (q - 8)
  static constexpr int kWords = 3, kBytes = 18;
  const ScaleTable* t;
  void make(const uint64_t* w, uint8_t* out) const {
    put_u16(out, t->d[w[2] & 511]);
    std::memcpy(out + 2, w, 16);
  }
};

struct Q4_1Gen {  // d, m, qs[16]; x = d * q + m
  static constexpr int kWords = 3, kBytes = 20;
  const ScaleTable* t;
  void make(const uint64_t* w, uint8_t* out) const {
    put_u16(out, t->d[w[2] & 511]);
    put_u16(out + 2, t->m[w[2] & 511]);
    std::memcpy(out + 4, w, 16);
  }
};

struct Q5_0Gen {  // d, qh[4], qs[16]; x = d * (q - 16)
  static constexpr int kWords = 3, kBytes = 22;
  const ScaleTable* t;
  void make(const uint64_t* w, uint8_t* out) const {
    put_u16(out, t->d[(w[2] >> 32) & 511]);
    std::memcpy(out + 2, &w[2], 4);
    std::memcpy(out + 6, w, 16);
  }
};

struct Q5_1Gen {  // d, m, qh[4], qs[16]; x = d * q + m
  static constexpr int kWords = 3, kBytes = 24;
  const ScaleTable* t;
  void make(const uint64_t* w, uint8_t* out) const {
    const size_t k = (w[2] >> 32) & 511;
    put_u16(out, t->d[k]);
    put_u16(out + 2, t->m[k]);
    std::memcpy(out + 4, &w[2], 4);
    std::memcpy(out + 8, w, 16);
  }
};

struct Q8_0Gen {  // d, qs[32] int8; x = d * q
  static constexpr int kWords = 5, kBytes = 34;
  const ScaleTable* t;
  void make(const uint64_t* w, uint8_t* out) const {
    put_u16(out, t->d[w[4] & 511]);
    uint8_t q[32];
    std::memcpy(q, w, 32);
    // -128 never comes out of a real quantizer and some SIMD dot products cannot negate it.
    for (uint8_t& b : q) b = b == 0x80 ? 0x81 : b;
    std::memcpy(out + 2, q, 32);
  }
};

struct Q2_KGen {  // scales[16] (scale | min << 4), qs[64], d, dmin; x = d*sc*q - dmin*m
  static constexpr int kWords = 9, kBytes = 84;
  uint16_t d, dmin;  // dmin = 1.5 d and m = sc centre the 2-bit code
  void make(const uint64_t* w, uint8_t* out) const {
    for (int j = 0; j < 16; ++j) {
      const uint8_t sc = uint8_t(8 + ((w[8] >> (3 * j)) & 7));
      out[j] = uint8_t(sc | (sc << 4));
    }
    std::memcpy(out + 16, w, 64);
    put_u16(out + 80, d);
    put_u16(out + 82, dmin);
  }
};

struct Q3_KGen {  // hmask[32], qs[64], scales[12] (16 x 6 bits, offset 32), d; x = d*(s-32)*q
  static constexpr int kWords = 14, kBytes = 110;
  uint16_t d;
  void make(const uint64_t* w, uint8_t* out) const {
    std::memcpy(out, w, 96);
    uint8_t* sc = out + 96;
    std::memset(sc, 0, 12);
    for (int j = 0; j < 16; ++j) {
      const int mag = 16 + int((w[12] >> (4 * j)) & 15);
      const int s = 32 + (((w[13] >> j) & 1) ? -mag : mag);
      // Low nibbles: scale j in byte j % 8 (upper nibble for j >= 8); top 2 bits: byte 8 + j % 4.
      sc[j % 8] |= uint8_t((s & 15) << (4 * (j / 8)));
      sc[8 + j % 4] |= uint8_t((s >> 4) << (2 * (j / 4)));
    }
    put_u16(out + 108, d);
  }
};

// The 12-byte packing of eight 6-bit scales and eight 6-bit mins used by Q4_K and Q5_K.
inline void pack_k4_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t* out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

inline void k4_scales(uint64_t bits, uint8_t* out) {
  uint8_t sc[8];
  for (int j = 0; j < 8; ++j) sc[j] = uint8_t(32 + ((bits >> (5 * j)) & 31));
  pack_k4_scales(sc, sc, out);  // min = scale: with dmin = centre * d each sub-block is centred
}

struct Q4_KGen {  // d, dmin, scales[12], qs[128]
  static constexpr int kWords = 17, kBytes = 144;
  uint16_t d, dmin;
  void make(const uint64_t* w, uint8_t* out) const {
    put_u16(out, d);
    put_u16(out + 2, dmin);
    k4_scales(w[16], out + 4);
    std::memcpy(out + 16, w, 128);
  }
};

struct Q5_KGen {  // d, dmin, scales[12], qh[32], qs[128]
  static constexpr int kWords = 21, kBytes = 176;
  uint16_t d, dmin;
  void make(const uint64_t* w, uint8_t* out) const {
    put_u16(out, d);
    put_u16(out + 2, dmin);
    k4_scales(w[20], out + 4);
    std::memcpy(out + 16, w, 160);
  }
};

struct Q6_KGen {  // ql[128], qh[64], scales[16] int8, d; x = d * sc * (q - 32)
  static constexpr int kWords = 26, kBytes = 210;
  uint16_t d;
  void make(const uint64_t* w, uint8_t* out) const {
    std::memcpy(out, w, 192);
    for (int j = 0; j < 16; ++j) {
      const uint64_t src = j < 8 ? w[24] >> (5 * j) : w[25] >> (5 * (j - 8));
      const int mag = 16 + int(src & 31);
      const int s = ((w[24] >> (40 + j)) & 1) ? -mag : mag;
      out[192 + j] = uint8_t(int8_t(s));
    }
    put_u16(out + 208, d);
  }
};

template <class Gen>
void run_blocks(const Gen& g, uint64_t key, uint64_t offset, std::span<uint8_t> dst) {
  constexpr uint64_t B = Gen::kBytes;
  uint64_t words[Gen::kWords];
  auto make_block = [&](uint64_t block, uint8_t* out) {
    uint64_t c = key + block * Gen::kWords * kGolden;
    for (int i = 0; i < Gen::kWords; ++i, c += kGolden) words[i] = mix64(c);
    if constexpr (requires { g.make(words, out, block); }) g.make(words, out, block);
    else g.make(words, out);
  };
  uint8_t* out = dst.data();
  size_t left = dst.size();
  uint64_t block = offset / B;
  if (const uint64_t skip = offset % B; skip != 0 && left > 0) {  // starts inside a block
    uint8_t tmp[B];
    make_block(block++, tmp);
    const size_t n = std::min<size_t>(B - skip, left);
    std::memcpy(out, tmp + skip, n);
    out += n;
    left -= n;
  }
  for (; left >= B; left -= B, out += B) make_block(block++, out);
  if (left > 0) {  // ends inside a block
    uint8_t tmp[B];
    make_block(block, tmp);
    std::memcpy(out, tmp, left);
  }
}

}  // namespace

void fill_random(DType type, uint64_t key, float s, uint64_t offset, std::span<uint8_t> dst) {
  const double sd = s;
  auto kscale = [&](double code_rms, double sub_rms) { return half(float(sd / (code_rms * sub_rms))); };
  auto legacy = [&](double code_rms, bool random_sign, float centre) {
    return make_scale_table(sd / code_rms, random_sign, centre);
  };
  const float a = float(sd * std::sqrt(3.0));  // uniform on (-a, a) has std sd
  switch (type) {
    case DType::F32: return run_blocks(F32Gen{a}, key, offset, dst);
    case DType::F16:
    case DType::BF16: return run_blocks(Half4Gen{uniform_half_table(type, a)}, key, offset, dst);
    case DType::Q4_0: {
      const ScaleTable t = legacy(uniform_rms(0, 16, 8), true, 0);
      return run_blocks(Q4_0Gen{&t}, key, offset, dst);
    }
    case DType::Q4_1: {
      const ScaleTable t = legacy(uniform_rms(0, 16, 7.5), false, 7.5f);
      return run_blocks(Q4_1Gen{&t}, key, offset, dst);
    }
    case DType::Q5_0: {
      const ScaleTable t = legacy(uniform_rms(0, 32, 16), true, 0);
      return run_blocks(Q5_0Gen{&t}, key, offset, dst);
    }
    case DType::Q5_1: {
      const ScaleTable t = legacy(uniform_rms(0, 32, 15.5), false, 15.5f);
      return run_blocks(Q5_1Gen{&t}, key, offset, dst);
    }
    case DType::Q8_0: {
      const ScaleTable t = legacy(uniform_rms(-128, 256, 0), true, 0);
      return run_blocks(Q8_0Gen{&t}, key, offset, dst);
    }
    case DType::Q2_K: {
      const uint16_t d = kscale(uniform_rms(0, 4, 1.5), uniform_rms(8, 8, 0));
      return run_blocks(Q2_KGen{d, half(1.5f * unhalf(d))}, key, offset, dst);
    }
    case DType::Q3_K:
      return run_blocks(Q3_KGen{kscale(uniform_rms(-4, 8, 0), uniform_rms(16, 16, 0))}, key, offset, dst);
    case DType::Q4_K: {
      const uint16_t d = kscale(uniform_rms(0, 16, 7.5), uniform_rms(32, 32, 0));
      return run_blocks(Q4_KGen{d, half(7.5f * unhalf(d))}, key, offset, dst);
    }
    case DType::Q5_K: {
      const uint16_t d = kscale(uniform_rms(0, 32, 15.5), uniform_rms(32, 32, 0));
      return run_blocks(Q5_KGen{d, half(15.5f * unhalf(d))}, key, offset, dst);
    }
    case DType::Q6_K:
      return run_blocks(Q6_KGen{kscale(uniform_rms(0, 64, 32), uniform_rms(16, 32, 0))}, key, offset, dst);
    default:
      assert(false && "fill_random: unsupported type");
  }
}

void fill_random_f32_rows(uint64_t key, float s, int64_t row_length, std::span<const float> row_gain, uint64_t offset,
                          std::span<uint8_t> dst) {
  assert(row_length > 0 && (offset + dst.size()) / 4 <= uint64_t(row_length) * row_gain.size());
  run_blocks(F32RowsGen{float(double(s) * std::sqrt(3.0)), row_length, row_gain}, key, offset, dst);
}

void fill_constant_f32(float value, uint64_t offset, std::span<uint8_t> dst) {
  uint8_t pattern[4];
  std::memcpy(pattern, &value, 4);
  for (size_t i = 0; i < dst.size(); ++i) dst[i] = pattern[(offset + i) % 4];
}

}  // namespace strata::models::synth
