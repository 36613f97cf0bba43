// Scalar reference kernels of the 32-wide formats (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1): the
// definition every SIMD version is tested against, and the fallback on CPUs without AVX2.
#include <cassert>
#include <cmath>
#include <cstdlib>

#include "compute/kernels_legacy.h"

namespace strata::compute {

namespace legacy {
namespace {

// 5th bits of the 32 elements of a Q5 block, bit j for element j.
uint32_t high_bits(const uint8_t qh[4]) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
         static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

// The 32 unsigned quants of a block in element order.
void unpack_q4(const uint8_t qs[16], int q[32]) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0xF;
    q[j + 16] = qs[j] >> 4;
  }
}

void unpack_q5(const uint8_t qs[16], const uint8_t qh[4], int q[32]) {
  unpack_q4(qs, q);
  const uint32_t h = high_bits(qh);
  for (int j = 0; j < 32; ++j) q[j] |= static_cast<int>((h >> j) & 1u) << 4;
}

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kBlockElems; ++i, dst += kBlockElems) {
    const float d = fp16_to_fp32(b[i].d);
    int q[32];
    unpack_q4(b[i].qs, q);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(q[j] - 8) * d;
  }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kBlockElems; ++i, dst += kBlockElems) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    int q[32];
    unpack_q4(b[i].qs, q);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(q[j]) * d + m;
  }
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / kBlockElems; ++i, dst += kBlockElems) {
    const float d = fp16_to_fp32(b[i].d);
    int q[32];
    unpack_q5(b[i].qs, b[i].qh, q);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(q[j] - 16) * d;
  }
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / kBlockElems; ++i, dst += kBlockElems) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    int q[32];
    unpack_q5(b[i].qs, b[i].qh, q);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(q[j]) * d + m;
  }
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kBlockElems; ++i, dst += kBlockElems) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void dequantize_q8_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / kBlockElems; ++i, dst += kBlockElems) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

// Symmetric 8-bit quantization of one block; returns d in f32 (before its fp16 rounding, which
// is what Q8_1's s is computed from) and the sum of the quants. The quants are x * (127 / amax)
// rounded half to even: the multiply (not a division by d) and the rounding are what llama.cpp's
// x86 quantizer does, so a value that lands near a half step rounds the same way in both.
float quantize_block_q8(const float* x, int8_t q[32], int* sum) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = amax == 0.0f ? 0.0f : 127.0f / amax;
  int s = 0;
  for (int j = 0; j < 32; ++j) {
    // nearbyint rounds half to even in the default mode; |x * id| <= 127 (+1 ulp) fits int8.
    const int v = static_cast<int>(std::nearbyint(x[j] * id));
    q[j] = static_cast<int8_t>(v);
    s += v;
  }
  *sum = s;
  return d;
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kBlockElems; ++i) {
    int sum;
    b[i].d = fp32_to_fp16(quantize_block_q8(src + i * kBlockElems, b[i].qs, &sum));
  }
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kBlockElems; ++i) {
    int sum;
    const float d = quantize_block_q8(src + i * kBlockElems, b[i].qs, &sum);
    b[i].d = fp32_to_fp16(d);
    b[i].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

int dot_block(const int q[32], int offset, const int8_t x[32]) {
  int s = 0;
  for (int j = 0; j < 32; ++j) s += (q[j] - offset) * x[j];
  return s;
}

float vec_dot_q4_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ4_0*>(w);
  const auto* bx = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kBlockElems; ++i) {
    int q[32];
    unpack_q4(bw[i].qs, q);
    sum += fp16_to_fp32(bw[i].d) * fp16_to_fp32(bx[i].d) * static_cast<float>(dot_block(q, 8, bx[i].qs));
  }
  return sum;
}

float vec_dot_q4_1(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ4_1*>(w);
  const auto* bx = static_cast<const BlockQ8_1*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kBlockElems; ++i) {
    int q[32];
    unpack_q4(bw[i].qs, q);
    sum += fp16_to_fp32(bw[i].d) * fp16_to_fp32(bx[i].d) * static_cast<float>(dot_block(q, 0, bx[i].qs)) +
           fp16_to_fp32(bw[i].m) * fp16_to_fp32(bx[i].s);
  }
  return sum;
}

float vec_dot_q5_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ5_0*>(w);
  const auto* bx = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kBlockElems; ++i) {
    int q[32];
    unpack_q5(bw[i].qs, bw[i].qh, q);
    sum += fp16_to_fp32(bw[i].d) * fp16_to_fp32(bx[i].d) * static_cast<float>(dot_block(q, 16, bx[i].qs));
  }
  return sum;
}

float vec_dot_q5_1(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ5_1*>(w);
  const auto* bx = static_cast<const BlockQ8_1*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kBlockElems; ++i) {
    int q[32];
    unpack_q5(bw[i].qs, bw[i].qh, q);
    sum += fp16_to_fp32(bw[i].d) * fp16_to_fp32(bx[i].d) * static_cast<float>(dot_block(q, 0, bx[i].qs)) +
           fp16_to_fp32(bw[i].m) * fp16_to_fp32(bx[i].s);
  }
  return sum;
}

float vec_dot_q8_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ8_0*>(w);
  const auto* bx = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kBlockElems; ++i) {
    int s = 0;
    for (int j = 0; j < 32; ++j) s += bw[i].qs[j] * bx[i].qs[j];
    sum += fp16_to_fp32(bw[i].d) * fp16_to_fp32(bx[i].d) * static_cast<float>(s);
  }
  return sum;
}

void set(KernelTable& t, DType type, DequantizeFn dq, QuantizeFn q, VecDotFn dot) {
  t[type].dequantize = dq;
  t[type].quantize = q;
  t[type].vec_dot = dot;
}

void register_scalar(KernelTable& t) {
  set(t, DType::Q4_0, dequantize_q4_0, nullptr, vec_dot_q4_0);
  set(t, DType::Q4_1, dequantize_q4_1, nullptr, vec_dot_q4_1);
  set(t, DType::Q5_0, dequantize_q5_0, nullptr, vec_dot_q5_0);
  set(t, DType::Q5_1, dequantize_q5_1, nullptr, vec_dot_q5_1);
  set(t, DType::Q8_0, dequantize_q8_0, quantize_q8_0, vec_dot_q8_0);
  set(t, DType::Q8_1, dequantize_q8_1, quantize_q8_1, nullptr);
}

}  // namespace
}  // namespace legacy

void register_legacy_kernels(KernelTable& t, Isa isa) {
  switch (isa) {
    case Isa::Scalar: legacy::register_scalar(t); break;
    case Isa::AVX2: legacy::register_avx2(t); break;
    case Isa::AVX512: legacy::register_avx512(t); break;
  }
}

}  // namespace strata::compute
