// AVX2 + F16C float kernels. Four independent accumulators hide the FMA latency; the tails
// (n not a multiple of 32) run the scalar expression.
#include <immintrin.h>

#include "compute/kernels_float.h"

namespace strata::compute::floats {
namespace {

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__m256 load_f32(const float* p) { return _mm256_loadu_ps(p); }
__m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
__m256 load_bf16(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

template <typename T, __m256 (*Load)(const T*), float (*ToF32)(T)>
float dot(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const T*>(w);
  const auto* b = static_cast<const T*>(x);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(Load(a + i), Load(b + i), acc0);
    acc1 = _mm256_fmadd_ps(Load(a + i + 8), Load(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(Load(a + i + 16), Load(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(Load(a + i + 24), Load(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(Load(a + i), Load(b + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += ToF32(a[i]) * ToF32(b[i]);
  return sum;
}

float f32_identity(float f) { return f; }

float vec_dot_f32(int64_t n, const void* w, const void* x) { return dot<float, load_f32, f32_identity>(n, w, x); }
float vec_dot_f16(int64_t n, const void* w, const void* x) { return dot<uint16_t, load_f16, fp16_to_fp32>(n, w, x); }
float vec_dot_bf16(int64_t n, const void* w, const void* x) { return dot<uint16_t, load_bf16, bf16_to_fp32>(n, w, x); }

void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16(h + i));
  for (; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}

void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16(h + i));
  for (; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
}

// Hardware round-to-nearest-even; equals fp32_to_fp16 bit for bit except in NaN payloads.
void quantize_f16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}

// Same integer rounding as fp32_to_bf16 (round to nearest even, NaNs kept quiet).
void quantize_bf16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  const __m256i lsb = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), quiet = _mm256_set1_epi32(64);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 f = _mm256_loadu_ps(src + i);
    const __m256i x = _mm256_castps_si256(f);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(x, 16), lsb);
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(bias, odd)), 16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(x, 16), quiet);
    const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
    const __m256i r = _mm256_blendv_epi8(rounded, nan, is_nan);
    // packus works per 128-bit lane: gather the two low quadwords into the low half.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
}

}  // namespace

void register_avx2(KernelTable& t) {
  t[DType::F32].vec_dot = vec_dot_f32;
  t[DType::F16].vec_dot = vec_dot_f16;
  t[DType::F16].dequantize = dequantize_f16;
  t[DType::F16].quantize = quantize_f16;
  t[DType::BF16].vec_dot = vec_dot_bf16;
  t[DType::BF16].dequantize = dequantize_bf16;
  t[DType::BF16].quantize = quantize_bf16;
}

}  // namespace strata::compute::floats
