// AVX2 kernels of the 32-wide formats: vec_dot for all weight formats, vec_dot_rows for Q8_0
// weights (the nibble formats have their own in kernels_legacy_rows_avx2.cpp), and the Q8
// activation quantizers.
//
// Weight quants stay unsigned (0..15, 0..31) so that one vpmaddubsw multiplies them with the
// signed activation bytes; the zero point of Q4_0/Q5_0 comes off in 16-bit lanes as
// offset * x (no saturation: |2 * 31 * 128| + |2 * 16 * 128| < 2^15). Eight blocks are reduced
// together (reduce8) so that the int->float conversion, the scale product and the FMA run once
// per eight blocks rather than per block.
#include <algorithm>
#include <vector>

#include "compute/kernels_legacy_avx2.h"

namespace strata::compute::legacy {
namespace {

// One weight row against T activation rows x[t]; out[t] = the dot products. With `dx` set
// (vec_dot_rows), the activation scales come from those f32 arrays instead of the blocks.
template <class F, int T>
void dot_row(int64_t nb, const typename F::Block* bw, const typename F::XBlock* const* x, const float* const* dx,
             float* out) {
  constexpr size_t kStride = sizeof(typename F::Block), kXStride = sizeof(typename F::XBlock);
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(F::kOffset));
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    Quants q[8];
    for (int k = 0; k < 8; ++k) q[k] = F::quants(bw[i + k]);
    const __m256 dw = load_halves8<kStride>(reinterpret_cast<const uint8_t*>(&bw[i].d));
    for (int t = 0; t < T; ++t) {
      __m256i s[8];
      for (int k = 0; k < 8; ++k) {
        const __m256i xq = load_bytes(x[t][i + k].qs);
        if constexpr (F::kOffset != 0)
          s[k] = widen_sum(_mm256_sub_epi16(_mm256_maddubs_epi16(q[k].a, xq), _mm256_maddubs_epi16(offset, xq)));
        else
          s[k] = dot32<F::kSigned>(q[k], xq);
      }
      const __m256 dxt = dx ? _mm256_loadu_ps(dx[t] + i)
                            : load_halves8<kXStride>(reinterpret_cast<const uint8_t*>(&x[t][i].d));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8(s)), _mm256_mul_ps(dw, dxt), acc[t]);
      if constexpr (F::kMin) {
        const __m256 mw = load_halves8<kStride>(reinterpret_cast<const uint8_t*>(&bw[i].m));
        const __m256 sx = load_halves8<kXStride>(reinterpret_cast<const uint8_t*>(&x[t][i].s));
        acc[t] = _mm256_fmadd_ps(mw, sx, acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    out[t] = hsum(acc[t]);
    for (int64_t j = i; j < nb; ++j) out[t] += block_dot<F>(bw[j], x[t][j]);
  }
}

template <class F>
float vec_dot(int64_t n, const void* w, const void* x) {
  const auto* xb = static_cast<const typename F::XBlock*>(x);
  float out;
  dot_row<F, 1>(n / kBlockElems, static_cast<const typename F::Block*>(w), &xb, nullptr, &out);
  return out;
}

// Q8_0 weights: the activation scales are converted once per call; each weight block is
// loaded once for up to kTokens activation rows.
constexpr int kTokens = 4;

template <int T>
void q8_0_rows(int64_t nb, const uint8_t* w, size_t w_stride, int64_t nrows, const BlockQ8_0* const* x,
               const float* const* dx, float* y, int64_t y_stride) {
  for (int64_t r = 0; r < nrows; ++r) {
    float out[T];
    dot_row<FmtQ8_0, T>(nb, reinterpret_cast<const BlockQ8_0*>(w + r * w_stride), x, dx, out);
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = out[t];
  }
}

void vec_dot_rows_q8_0(int64_t n, const void* w, size_t w_stride, int64_t nrows, const void* x, size_t x_stride,
                       int64_t ntok, float* y, int64_t y_stride) {
  const int64_t nb = n / kBlockElems;
  thread_local std::vector<float> scales;
  scales.resize(static_cast<size_t>(kTokens * nb));
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t t0 = 0; t0 < ntok; t0 += kTokens) {
    const int tn = static_cast<int>(std::min<int64_t>(kTokens, ntok - t0));
    const BlockQ8_0* xt[kTokens];
    const float* dx[kTokens];
    for (int t = 0; t < tn; ++t) {
      xt[t] = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(x) + (t0 + t) * x_stride);
      float* d = scales.data() + t * nb;
      for (int64_t i = 0; i < nb; ++i) d[i] = half(xt[t][i].d);
      dx[t] = d;
    }
    float* yt = y + t0 * y_stride;
    switch (tn) {
      case 1: q8_0_rows<1>(nb, wb, w_stride, nrows, xt, dx, yt, y_stride); break;
      case 2: q8_0_rows<2>(nb, wb, w_stride, nrows, xt, dx, yt, y_stride); break;
      case 3: q8_0_rows<3>(nb, wb, w_stride, nrows, xt, dx, yt, y_stride); break;
      default: q8_0_rows<4>(nb, wb, w_stride, nrows, xt, dx, yt, y_stride); break;
    }
  }
}

// One block of Q8 activation quantization, bit-identical to the scalar reference: x * (127 /
// amax) rounded half to even (vroundps with round-to-nearest).
float quantize_block_q8(const float* x, int8_t* q, int* sum) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 v[4];
  for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
  __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                           _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float amax = _mm_cvtss_f32(m4);
  const float d = amax / 127.0f;
  if (amax == 0.0f) {
    std::memset(q, 0, 32);
    *sum = 0;
    return d;
  }
  const __m256 vid = _mm256_set1_ps(127.0f / amax);
  __m256i iq[4];
  for (int k = 0; k < 4; ++k)
    iq[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  *sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(iq[0], iq[1]), _mm256_add_epi32(iq[2], iq[3])));
  // The packs interleave 128-bit lanes; the final dword permutation restores element order.
  const __m256i p16a = _mm256_packs_epi32(iq[0], iq[1]), p16b = _mm256_packs_epi32(iq[2], iq[3]);
  const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
  const __m256i ordered = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), ordered);
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

}  // namespace

void register_avx2(KernelTable& t) {
  t[DType::Q4_0].vec_dot = vec_dot<FmtQ4_0>;
  t[DType::Q4_1].vec_dot = vec_dot<FmtQ4_1>;
  t[DType::Q5_0].vec_dot = vec_dot<FmtQ5_0>;
  t[DType::Q5_1].vec_dot = vec_dot<FmtQ5_1>;
  t[DType::Q8_0].vec_dot = vec_dot<FmtQ8_0>;
  t[DType::Q8_0].vec_dot_rows = vec_dot_rows_q8_0;
  register_avx2_rows(t);
  t[DType::Q8_0].quantize = quantize_q8_0;
  t[DType::Q8_1].quantize = quantize_q8_1;
}

}  // namespace strata::compute::legacy
