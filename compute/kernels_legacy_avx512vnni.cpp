// Q4_0_R8 x Q8_0 vec_dot_rows with AVX-512 VNNI (layout in repack.h).
//
// Per group of eight rows and block b: the 128 nibble bytes are two full registers (rows 0-3
// and 4-7, one row per 128-bit lane); the activation block's elements 0-15 and 16-31 are each
// broadcast to every lane; vpdpbusd leaves four partial sums per row in its lane, which integer
// adds fold into one exact sum per row.
//
// The float part reproduces the AVX2 rows kernel on the plain layout bit for bit, so repacking
// changes no output: that kernel keeps eight f32 lanes per row, lane L taking blocks
// b = order[L] + 8m (order 0 2 4 6 1 3 5 7) as fma(float(sum_b - 8 * xsum_b), d_w * d_x, lane),
// and sums the lanes as ((L0 + L4) + (L2 + L6)) + ((L1 + L5) + (L3 + L7)). Here the same eight
// accumulators hold eight rows each. Rows must have a multiple of eight blocks (no tail).
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <vector>

#include "compute/kernels_legacy.h"

namespace strata::compute::legacy {
namespace {

constexpr int kTokens = 2;             // 8 accumulators per token: 2 tokens fill 16 registers
constexpr int kGroupBlockBytes = 144;  // one block of eight rows
constexpr int kPrefetchBytes = 4096;
// The AVX2 kernel's lane for block k of a group of eight.
constexpr int kLaneOf[8] = {0, 4, 1, 5, 2, 6, 3, 7};

struct PreparedX {
  const BlockQ8_0* blocks = nullptr;
  const float* d = nullptr;      // d_x per block
  const int32_t* sum8 = nullptr;  // 8 * sum(q_x) per block
};

// The exact per-row sums of two vpdpbusd results (rows 0-3 in a, rows 4-7 in b), rows in order.
inline __m256i row_sums(__m512i a, __m512i b) {
  a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_BADC));
  a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_CDAB));
  b = _mm512_add_epi32(b, _mm512_shuffle_epi32(b, _MM_PERM_BADC));
  b = _mm512_add_epi32(b, _mm512_shuffle_epi32(b, _MM_PERM_CDAB));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castsi512_si256(_mm512_permutex2var_epi32(a, idx, b));
}

template <int T>
void group8(int64_t nb, const uint8_t* g, const PreparedX* x, float* y, int64_t y_stride) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m256 acc[T][8];
  for (int t = 0; t < T; ++t)
    for (int l = 0; l < 8; ++l) acc[t][l] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, g += kGroupBlockBytes) {
    // 144 bytes a block: three lines ahead by kPrefetchBytes keep the stream in flight.
    _mm_prefetch(reinterpret_cast<const char*>(g + kPrefetchBytes), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(g + kPrefetchBytes + 64), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(g + kPrefetchBytes + 128), _MM_HINT_T0);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    const __m512i v0 = _mm512_loadu_si512(g + 16), v1 = _mm512_loadu_si512(g + 80);
    const __m512i lo0 = _mm512_and_si512(v0, low4), hi0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4);
    const __m512i lo1 = _mm512_and_si512(v1, low4), hi1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4);
    const int lane = kLaneOf[b & 7];
    for (int t = 0; t < T; ++t) {
      const int8_t* xq = x[t].blocks[b].qs;
      const __m512i xlo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq)));
      const __m512i xhi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq + 16)));
      __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo0, xlo);
      s0 = _mm512_dpbusd_epi32(s0, hi0, xhi);
      __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo1, xlo);
      s1 = _mm512_dpbusd_epi32(s1, hi1, xhi);
      const __m256i sums = _mm256_sub_epi32(row_sums(s0, s1), _mm256_set1_epi32(x[t].sum8[b]));
      acc[t][lane] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(dw, _mm256_set1_ps(x[t].d[b])), acc[t][lane]);
    }
  }
  for (int t = 0; t < T; ++t) {
    const __m256 a = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][4]), _mm256_add_ps(acc[t][2], acc[t][6]));
    const __m256 c = _mm256_add_ps(_mm256_add_ps(acc[t][1], acc[t][5]), _mm256_add_ps(acc[t][3], acc[t][7]));
    alignas(32) float out[8];
    _mm256_store_ps(out, _mm256_add_ps(a, c));
    for (int r = 0; r < 8; ++r) y[t * y_stride + r] = out[r];
  }
}

struct Scratch {
  std::vector<float> d;
  std::vector<int32_t> sum8;
};

// nrows must be a multiple of 8 and w the start of a group (matmul splits at row_group = 8);
// w_stride is the plain Q4_0 row size (a group spans 8 of them); n a multiple of 256.
void vec_dot_rows_q4_0_r8(int64_t n, const void* w, size_t w_stride, int64_t nrows, const void* x, size_t x_stride,
                          int64_t ntok, float* y, int64_t y_stride) {
  const int64_t nb = n / kBlockElems;
  assert(nb % 8 == 0 && nrows % 8 == 0);
  thread_local Scratch scratch;
  if (scratch.d.size() < static_cast<size_t>(kTokens * nb)) {
    scratch.d.resize(static_cast<size_t>(kTokens * nb));
    scratch.sum8.resize(static_cast<size_t>(kTokens * nb));
  }
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t t0 = 0; t0 < ntok; t0 += kTokens) {
    const int tn = static_cast<int>(std::min<int64_t>(kTokens, ntok - t0));
    PreparedX px[kTokens];
    for (int t = 0; t < tn; ++t) {
      const auto* xb = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(x) + (t0 + t) * x_stride);
      float* d = scratch.d.data() + t * nb;
      int32_t* sum8 = scratch.sum8.data() + t * nb;
      for (int64_t b = 0; b < nb; ++b) {
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += xb[b].qs[j];
        d[b] = _cvtsh_ss(xb[b].d);
        sum8[b] = sum * 8;
      }
      px[t] = {xb, d, sum8};
    }
    float* yt = y + t0 * y_stride;
    for (int64_t r = 0; r + 8 <= nrows; r += 8) {
      const uint8_t* g = wb + r * w_stride;
      if (tn == 1) group8<1>(nb, g, px, yt + r, y_stride);
      else group8<2>(nb, g, px, yt + r, y_stride);
    }
  }
}

}  // namespace

void register_avx512vnni(KernelTable& t) { t[DType::Q4_0_R8].vec_dot_rows = vec_dot_rows_q4_0_r8; }

}  // namespace strata::compute::legacy
