// Reference K-quant kernels. Each weight format is first decoded into one common shape - 256
// small integers, 16 integer scales and 16 integer mins (one per 16 elements) plus the two
// float multipliers - so the bit layout of a format lives in exactly one function, shared by
// dequantize and vec_dot. The SIMD files must reproduce these results.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "compute/kernels_kquant.h"
#include "compute/quant.h"

namespace strata::compute {
namespace kquant {
namespace {

// x[i] = d * scale[i/16] * q[i] - dmin * min[i/16]
struct Decoded {
  int8_t q[kBlockElems];
  int32_t scale[16];
  int32_t min[16];
  float d;
  float dmin;
};

void decode(const BlockQ2K& b, Decoded& out) {
  out.d = fp16_to_fp32(b.d);
  out.dmin = fp16_to_fp32(b.dmin);
  for (int g = 0; g < 16; ++g) {
    out.scale[g] = b.scales[g] & 0x0f;
    out.min[g] = b.scales[g] >> 4;
  }
  for (int half = 0; half < 2; ++half)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l)
        out.q[half * 128 + j * 32 + l] = static_cast<int8_t>((b.qs[half * 32 + l] >> (2 * j)) & 3);
}

void decode(const BlockQ3K& b, Decoded& out) {
  out.d = fp16_to_fp32(b.d);
  out.dmin = 0.0f;
  uint32_t words[4];
  unpack_scales_q3k(b.scales, words);
  uint8_t stored[16];
  std::memcpy(stored, words, 16);
  for (int g = 0; g < 16; ++g) {
    out.scale[g] = int32_t{stored[g]} - 32;
    out.min[g] = 0;
  }
  for (int half = 0; half < 2; ++half)
    for (int j = 0; j < 4; ++j) {
      const int bit = half * 4 + j;
      for (int l = 0; l < 32; ++l) {
        const int low = (b.qs[half * 32 + l] >> (2 * j)) & 3;
        const bool high = (b.hmask[l] >> bit) & 1;
        out.q[half * 128 + j * 32 + l] = static_cast<int8_t>(high ? low : low - 4);
      }
    }
}

void decode_k4_scales(const uint8_t packed[12], Decoded& out) {
  uint32_t words[4];
  unpack_scales_mins_k4(packed, words);
  uint8_t sm[16];
  std::memcpy(sm, words, 16);
  for (int g = 0; g < 16; ++g) {  // one 6-bit pair per 32 elements: two 16-groups each
    out.scale[g] = sm[g / 2];
    out.min[g] = sm[8 + g / 2];
  }
}

void decode(const BlockQ4K& b, Decoded& out) {
  out.d = fp16_to_fp32(b.d);
  out.dmin = fp16_to_fp32(b.dmin);
  decode_k4_scales(b.scales, out);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const uint8_t byte = b.qs[c * 32 + l];
      out.q[c * 64 + l] = static_cast<int8_t>(byte & 0x0f);
      out.q[c * 64 + 32 + l] = static_cast<int8_t>(byte >> 4);
    }
}

void decode(const BlockQ5K& b, Decoded& out) {
  out.d = fp16_to_fp32(b.d);
  out.dmin = fp16_to_fp32(b.dmin);
  decode_k4_scales(b.scales, out);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const uint8_t byte = b.qs[c * 32 + l];
      const int s_lo = 2 * c, s_hi = 2 * c + 1;  // 32-element sub-blocks of the two nibbles
      out.q[c * 64 + l] = static_cast<int8_t>((byte & 0x0f) | (((b.qh[l] >> s_lo) & 1) << 4));
      out.q[c * 64 + 32 + l] = static_cast<int8_t>((byte >> 4) | (((b.qh[l] >> s_hi) & 1) << 4));
    }
}

void decode(const BlockQ6K& b, Decoded& out) {
  out.d = fp16_to_fp32(b.d);
  out.dmin = 0.0f;
  for (int g = 0; g < 16; ++g) {
    out.scale[g] = b.scales[g];
    out.min[g] = 0;
  }
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b.ql + half * 64;
    const uint8_t* qh = b.qh + half * 32;
    int8_t* q = out.q + half * 128;
    for (int l = 0; l < 32; ++l) {
      q[l] = static_cast<int8_t>(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
      q[32 + l] = static_cast<int8_t>(((ql[32 + l] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
      q[64 + l] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      q[96 + l] = static_cast<int8_t>(((ql[32 + l] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

template <typename Block>
void dequantize_k(const void* src, float* dst, int64_t n) {
  assert(n % kBlockElems == 0);
  const auto* blocks = static_cast<const Block*>(src);
  Decoded dec;
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    decode(blocks[b], dec);
    float* y = dst + b * kBlockElems;
    for (int g = 0; g < 16; ++g) {
      const float scale = dec.d * static_cast<float>(dec.scale[g]);
      const float offset = dec.dmin * static_cast<float>(dec.min[g]);
      for (int i = g * 16; i < g * 16 + 16; ++i) y[i] = scale * static_cast<float>(dec.q[i]) - offset;
    }
  }
}

// Integer dot per 16-group, scaled once per group; the min term needs only the activation's
// group sums, which Q8_K carries precomputed.
template <typename Block>
float vec_dot_k(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  const auto* wb = static_cast<const Block*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  Decoded dec;
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    decode(wb[b], dec);
    const BlockQ8K& a = xb[b];
    int32_t sum_q = 0, sum_m = 0;
    for (int g = 0; g < 16; ++g) {
      int32_t dot = 0;
      for (int i = g * 16; i < g * 16 + 16; ++i) dot += int32_t{dec.q[i]} * int32_t{a.qs[i]};
      sum_q += dec.scale[g] * dot;
      sum_m += dec.min[g] * int32_t{a.bsums[g]};
    }
    sum += a.d * dec.d * static_cast<float>(sum_q) - a.d * dec.dmin * static_cast<float>(sum_m);
  }
  return sum;
}

void dequantize_q8k(const void* src, float* dst, int64_t n) {
  assert(n % kBlockElems == 0);
  const auto* blocks = static_cast<const BlockQ8K*>(src);
  for (int64_t b = 0; b < n / kBlockElems; ++b)
    for (int i = 0; i < kBlockElems; ++i)
      dst[b * kBlockElems + i] = blocks[b].d * static_cast<float>(blocks[b].qs[i]);
}

void quantize_q8k(const float* src, void* dst, int64_t n) {
  assert(n % kBlockElems == 0);
  auto* blocks = static_cast<BlockQ8K*>(dst);
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* x = src + b * kBlockElems;
    BlockQ8K& out = blocks[b];
    float amax = 0.0f;
    for (int i = 0; i < kBlockElems; ++i) amax = std::max(amax, std::fabs(x[i]));
    if (amax == 0.0f) {
      out = BlockQ8K{};
      continue;
    }
    const float inv_scale = q8k_inverse_scale(amax);
    out.d = 1.0f / q8k_inverse_scale(amax);  // as llama.cpp: d = 1 / iscale
    for (int i = 0; i < kBlockElems; ++i) {
      // nearbyint, not a magic-number add: with FMA enabled the compiler may fuse an add into
      // the multiply, and the result must round exactly as the SIMD mul + cvtps2dq does
      const float r = std::nearbyint(x[i] * inv_scale);
      out.qs[i] = static_cast<int8_t>(std::clamp(static_cast<int>(r), -127, 127));
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = g * 16; i < g * 16 + 16; ++i) sum += out.qs[i];
      out.bsums[g] = static_cast<int16_t>(sum);
    }
  }
}

}  // namespace
}  // namespace kquant

void register_kquant_kernels(KernelTable& t, Isa isa) {
  using namespace kquant;
  switch (isa) {
    case Isa::Scalar:
      t[DType::Q2_K] = {dequantize_k<BlockQ2K>, nullptr, vec_dot_k<BlockQ2K>};
      t[DType::Q3_K] = {dequantize_k<BlockQ3K>, nullptr, vec_dot_k<BlockQ3K>};
      t[DType::Q4_K] = {dequantize_k<BlockQ4K>, nullptr, vec_dot_k<BlockQ4K>};
      t[DType::Q5_K] = {dequantize_k<BlockQ5K>, nullptr, vec_dot_k<BlockQ5K>};
      t[DType::Q6_K] = {dequantize_k<BlockQ6K>, nullptr, vec_dot_k<BlockQ6K>};
      t[DType::Q8_K] = {dequantize_q8k, quantize_q8k, nullptr};
      break;
    case Isa::AVX2: register_avx2(t); break;
    case Isa::AVX512: register_avx512(t); break;
  }
}

}  // namespace strata::compute
