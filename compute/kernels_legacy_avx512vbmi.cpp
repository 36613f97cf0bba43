// Q4_0 x Q8_0 vec_dot_rows on the plain (file) layout with AVX-512 VBMI + VNNI.
//
// Why it exists: a streamed expert is read, used for a token or two and evicted. Repacking it
// to Q4_0_R8 first (repack.h) costs a read and a write of every byte, several times the
// multiply itself, so units that do not stay get multiplied where they landed. This kernel
// makes that nearly as fast as the R8 kernel: eight consecutive blocks of one row are 144
// contiguous bytes; two vpermt2b gather their 128 nibble bytes into two registers (one block
// per 128-bit lane) and one vpermt2w their eight scales, so a step is four vpdpbusd, as in R8.
//
// Output is bit for bit that of the AVX2 rows kernel (kernels_legacy_rows_avx2.cpp), so which
// kernel runs never changes a token: the block sums are exact integers, and each block's
// fma(float(sum - 8 * xsum), d_w * d_x, lane) goes to the lane that kernel uses, summed in its
// order at the end. Rows whose block count is not a multiple of eight go to that kernel.
#include "compute/avx512_intrinsics.h"  // first: it wraps <immintrin.h>

#include <algorithm>
#include <cassert>
#include <vector>

#include "compute/kernels_legacy.h"

namespace strata::compute::legacy {
namespace {

constexpr int kTokens = 4;
constexpr int kPrefetchBytes = 2048;

VecDotRowsFn g_fallback = nullptr;  // the AVX2 rows kernel, for rows with a partial group

// Activations re-laid per group of four blocks as [lo 0..3 | hi 0..3] (64 bytes each), lo being
// elements 0-15 of each block and hi 16-31, to meet the weight registers lane for lane.
struct PreparedX {
  const int8_t* qs = nullptr;     // 32 bytes per block, in the layout above
  const float* d = nullptr;       // d_x per block
  const int32_t* sum8 = nullptr;  // 8 * sum(q_x) per block: the Q4_0 zero point, exactly
};

struct Scratch {
  std::vector<int8_t> qs;
  std::vector<float> d;
  std::vector<int32_t> sum8;
};

PreparedX prepare(const BlockQ8_0* x, int64_t nb, int8_t* qs, float* d, int32_t* sum8) {
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t g = b / 4, k = b % 4;
    std::copy_n(x[b].qs, 16, qs + g * 128 + k * 16);
    std::copy_n(x[b].qs + 16, 16, qs + g * 128 + 64 + k * 16);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += x[b].qs[j];
    sum8[b] = sum * 8;
    d[b] = _cvtsh_ss(x[b].d);
  }
  return {qs, d, sum8};
}

// Byte indices gathering blocks 0-3 (window: bytes 0-127 of the group) and blocks 4-7 (window:
// bytes 16-143) into one block per 128-bit lane, and the word indices of the eight scales.
struct Indices {
  __m512i lo, hi, scales;
  Indices() {
    alignas(64) uint8_t a[64], b[64];
    alignas(64) uint16_t s[32] = {};
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < 16; ++j) {
        a[k * 16 + j] = static_cast<uint8_t>(18 * k + 2 + j);
        b[k * 16 + j] = static_cast<uint8_t>(18 * (k + 4) + 2 + j - 16);
      }
    for (int k = 0; k < 8; ++k) s[k] = static_cast<uint16_t>(9 * k);
    lo = _mm512_load_si512(a);
    hi = _mm512_load_si512(b);
    scales = _mm512_load_si512(s);
  }
};

// Per-block sums of two vpdpbusd results (blocks 0-3 in a, 4-7 in b), blocks in order.
inline __m256i block_sums(__m512i a, __m512i b) {
  a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_BADC));
  a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_CDAB));
  b = _mm512_add_epi32(b, _mm512_shuffle_epi32(b, _MM_PERM_BADC));
  b = _mm512_add_epi32(b, _mm512_shuffle_epi32(b, _MM_PERM_CDAB));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castsi512_si256(_mm512_permutex2var_epi32(a, idx, b));
}

// The AVX2 kernel's final sum: its lane L holds our blocks {0,2,4,6,1,3,5,7}[L] of each group.
inline float lane_sum(__m256 natural) {
  const __m256 v = _mm256_permutevar8x32_ps(natural, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int T>
void dot_row(int64_t nb, const uint8_t* w, const PreparedX* x, const Indices& ix, float* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; i += 8, w += 144) {
    _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetchBytes), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetchBytes + 64), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetchBytes + 128), _MM_HINT_T0);
    const __m512i a = _mm512_loadu_si512(w), b = _mm512_loadu_si512(w + 64);
    const __m512i c = _mm512_loadu_si512(w + 16), e = _mm512_loadu_si512(w + 80);
    const __m512i v0 = _mm512_permutex2var_epi8(a, ix.lo, b);
    const __m512i v1 = _mm512_permutex2var_epi8(c, ix.hi, e);
    const __m256 dw = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(a, ix.scales, b)));
    const __m512i lo0 = _mm512_and_si512(v0, low4), hi0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4);
    const __m512i lo1 = _mm512_and_si512(v1, low4), hi1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4);
    for (int t = 0; t < T; ++t) {
      const int8_t* xq = x[t].qs + i * 32;
      __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo0, _mm512_loadu_si512(xq));
      s0 = _mm512_dpbusd_epi32(s0, hi0, _mm512_loadu_si512(xq + 64));
      __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo1, _mm512_loadu_si512(xq + 128));
      s1 = _mm512_dpbusd_epi32(s1, hi1, _mm512_loadu_si512(xq + 192));
      const __m256i sums = _mm256_sub_epi32(block_sums(s0, s1), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].sum8 + i)));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(dw, _mm256_loadu_ps(x[t].d + i)), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = lane_sum(acc[t]);
}

template <int T>
void rows(int64_t nb, const uint8_t* w, size_t w_stride, int64_t nrows, const PreparedX* x, const Indices& ix,
          float* y, int64_t y_stride) {
  for (int64_t r = 0; r < nrows; ++r) {
    float out[T];
    dot_row<T>(nb, w + r * w_stride, x, ix, out);
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = out[t];
  }
}

void vec_dot_rows_q4_0(int64_t n, const void* w, size_t w_stride, int64_t nrows, const void* x, size_t x_stride,
                       int64_t ntok, float* y, int64_t y_stride) {
  const int64_t nb = n / kBlockElems;
  if (nb % 8 != 0) return g_fallback(n, w, w_stride, nrows, x, x_stride, ntok, y, y_stride);
  static const Indices ix;
  thread_local Scratch scratch;
  if (scratch.d.size() < static_cast<size_t>(kTokens * nb)) {
    scratch.qs.resize(static_cast<size_t>(kTokens * nb * 32));
    scratch.d.resize(static_cast<size_t>(kTokens * nb));
    scratch.sum8.resize(static_cast<size_t>(kTokens * nb));
  }
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t t0 = 0; t0 < ntok; t0 += kTokens) {
    const int tn = static_cast<int>(std::min<int64_t>(kTokens, ntok - t0));
    PreparedX px[kTokens];
    for (int t = 0; t < tn; ++t) {
      const auto* xb = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(x) + (t0 + t) * x_stride);
      const size_t at = static_cast<size_t>(t * nb);
      px[t] = prepare(xb, nb, scratch.qs.data() + at * 32, scratch.d.data() + at, scratch.sum8.data() + at);
    }
    float* yt = y + t0 * y_stride;
    switch (tn) {
      case 1: rows<1>(nb, wb, w_stride, nrows, px, ix, yt, y_stride); break;
      case 2: rows<2>(nb, wb, w_stride, nrows, px, ix, yt, y_stride); break;
      case 3: rows<3>(nb, wb, w_stride, nrows, px, ix, yt, y_stride); break;
      default: rows<4>(nb, wb, w_stride, nrows, px, ix, yt, y_stride); break;
    }
  }
}

}  // namespace

void register_avx512vbmi(KernelTable& t) {
  g_fallback = t[DType::Q4_0].vec_dot_rows;
  if (g_fallback) t[DType::Q4_0].vec_dot_rows = vec_dot_rows_q4_0;
}

}  // namespace strata::compute::legacy
