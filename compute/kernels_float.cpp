// Scalar reference kernels of the float types. F16 and BF16 weights are dotted with activations
// of the same type (rounded once per token), accumulating in f32.
#include <cstring>

#include "compute/kernels_float.h"

namespace strata::compute {

namespace floats {
namespace {

void copy_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }
void quantize_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }

float vec_dot_f32(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const float*>(w);
  const auto* b = static_cast<const float*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

template <float (*ToF32)(uint16_t)>
void dequantize_half(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = ToF32(h[i]);
}

template <uint16_t (*FromF32)(float)>
void quantize_half(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = FromF32(src[i]);
}

template <float (*ToF32)(uint16_t)>
float vec_dot_half(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += ToF32(a[i]) * ToF32(b[i]);
  return sum;
}

void set(KernelTable& t, DType type, DequantizeFn dq, QuantizeFn q, VecDotFn dot) {
  t[type].dequantize = dq;
  t[type].quantize = q;
  t[type].vec_dot = dot;
}

void register_scalar(KernelTable& t) {
  set(t, DType::F32, copy_f32, quantize_f32, vec_dot_f32);
  set(t, DType::F16, dequantize_half<fp16_to_fp32>, quantize_half<fp32_to_fp16>, vec_dot_half<fp16_to_fp32>);
  set(t, DType::BF16, dequantize_half<bf16_to_fp32>, quantize_half<fp32_to_bf16>, vec_dot_half<bf16_to_fp32>);
}

}  // namespace
}  // namespace floats

void register_float_kernels(KernelTable& t, Isa isa) {
  switch (isa) {
    case Isa::Scalar: floats::register_scalar(t); break;
    case Isa::AVX2: floats::register_avx2(t); break;
    case Isa::AVX512: floats::register_avx512(t); break;
  }
}

}  // namespace strata::compute
