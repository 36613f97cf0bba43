// AVX-512 float dot products (conversions stay on the AVX2 overlay: they are not hot).
#include "compute/avx512_intrinsics.h"

#include "compute/kernels_float.h"

namespace strata::compute::floats {
namespace {

__m512 load_f32(const float* p) { return _mm512_loadu_ps(p); }
__m512 load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
__m512 load_bf16(const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

template <typename T, __m512 (*Load)(const T*), float (*ToF32)(T)>
float dot(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const T*>(w);
  const auto* b = static_cast<const T*>(x);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(Load(a + i), Load(b + i), acc0);
    acc1 = _mm512_fmadd_ps(Load(a + i + 16), Load(b + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(Load(a + i + 32), Load(b + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(Load(a + i + 48), Load(b + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(Load(a + i), Load(b + i), acc0);
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += ToF32(a[i]) * ToF32(b[i]);
  return sum;
}

float f32_identity(float f) { return f; }

float vec_dot_f32(int64_t n, const void* w, const void* x) { return dot<float, load_f32, f32_identity>(n, w, x); }
float vec_dot_f16(int64_t n, const void* w, const void* x) { return dot<uint16_t, load_f16, fp16_to_fp32>(n, w, x); }
float vec_dot_bf16(int64_t n, const void* w, const void* x) { return dot<uint16_t, load_bf16, bf16_to_fp32>(n, w, x); }

}  // namespace

void register_avx512(KernelTable& t) {
  t[DType::F32].vec_dot = vec_dot_f32;
  t[DType::F16].vec_dot = vec_dot_f16;
  t[DType::BF16].vec_dot = vec_dot_bf16;
}

}  // namespace strata::compute::floats
