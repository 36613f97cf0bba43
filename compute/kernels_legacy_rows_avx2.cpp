// vec_dot_rows of the nibble formats (Q4_0 Q4_1 Q5_0 Q5_1): the matmul hot path.
//
// A 1-token Q4_0 matvec must keep up with memory on one core: at ~17 GB/s an 18-byte block
// arrives every ~3 cycles. So the activation side is prepared once per call to leave the least
// work per weight block:
//  - the activation quants are re-laid per pair of blocks (A, B) as 64 bytes
//    [A 0..15 | B 0..15 | A 16..31 | B 16..31], matching split_nibbles' lo / hi registers, so
//    that two blocks cost two vpmaddubsw, one add and one vpmaddwd;
//  - scales (f32) and block sums (for the zero point) are stored per group of eight blocks in
//    the order reduce4 leaves the pairs' sums in: blocks 0 2 4 6 1 3 5 7.
// The zero point then comes off as offset * sum(x) on the i32 block sums, exactly.
#include <algorithm>
#include <vector>

#include "compute/kernels_legacy_avx2.h"

namespace strata::compute::legacy {
namespace {

constexpr int kTokens = 4;             // activation rows sharing one pass over a weight row
constexpr int kPrefetchBytes = 2048;   // how far ahead in the weight stream to prefetch

// Block k of a group of eight lands in lane kLaneOf[k] after reduce4 of the four pairs.
constexpr int kLaneOf[8] = {0, 4, 1, 5, 2, 6, 3, 7};

template <class XBlock>
struct PreparedX {
  const int8_t* qs = nullptr;    // pair layout, 32 bytes per block of the full groups
  const float* d = nullptr;      // per block, reduce4 order
  const int32_t* sum = nullptr;  // per block, reduce4 order (formats with a zero point)
  const float* s = nullptr;      // Q8_1's s, reduce4 order (formats with a min)
  const XBlock* raw = nullptr;   // the tail blocks past the last full group
};

struct Scratch {
  std::vector<int8_t> qs;
  std::vector<float> d, s;
  std::vector<int32_t> sum;
  void reserve(size_t blocks) {
    if (d.size() >= blocks) return;
    qs.resize(blocks * kBlockElems);
    d.resize(blocks);
    s.resize(blocks);
    sum.resize(blocks);
  }
};

template <class F>
PreparedX<typename F::XBlock> prepare(const typename F::XBlock* x, int64_t nb, int8_t* qs, float* d, int32_t* sum,
                                      float* s) {
  const int64_t full = nb / 8 * 8;
  for (int64_t i = 0; i < full; i += 2) {
    const __m256i a = load_bytes(x[i].qs), b = load_bytes(x[i + 1].qs);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + i * 32), _mm256_permute2x128_si256(a, b, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + i * 32 + 32), _mm256_permute2x128_si256(a, b, 0x31));
  }
  for (int64_t g = 0; g < full; g += 8) {
    for (int k = 0; k < 8; ++k) {
      const int64_t i = g + kLaneOf[k];
      d[i] = half(x[g + k].d);
      if constexpr (F::kOffset != 0) sum[i] = block_sum(x[g + k].qs);
      if constexpr (F::kMin) s[i] = half(x[g + k].s);
    }
  }
  return {qs, d, sum, s, x};
}

// One weight row against T prepared activation rows; out[t] = the dot products.
template <class F, int T>
void dot_row(int64_t nb, const typename F::Block* bw, const PreparedX<typename F::XBlock>* x, float* out) {
  constexpr size_t kStride = sizeof(typename F::Block);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    const char* ahead = reinterpret_cast<const char*>(bw + i) + kPrefetchBytes;
    for (size_t o = 0; o < 8 * kStride; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0);
    __m256i lo[4], hi[4];
    for (int k = 0; k < 4; ++k) F::decode_pair(bw[i + 2 * k], bw[i + 2 * k + 1], lo[k], hi[k]);
    const auto* d = reinterpret_cast<const uint8_t*>(&bw[i].d);
    const __m256 dw = load_halves8<kStride, 0, 2, 4, 6, 1, 3, 5, 7>(d);
    __m256 mw;
    if constexpr (F::kMin) mw = load_halves8<kStride, 0, 2, 4, 6, 1, 3, 5, 7>(d + 2);
    for (int t = 0; t < T; ++t) {
      const int8_t* xq = x[t].qs + i * 32;
      __m256i s[4];
      for (int k = 0; k < 4; ++k) {
        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo[k], load_bytes(xq + 64 * k)),
                                           _mm256_maddubs_epi16(hi[k], load_bytes(xq + 64 * k + 32)));
        s[k] = widen_sum(p);
      }
      __m256i sums = reduce4(s[0], s[1], s[2], s[3]);
      if constexpr (F::kOffset != 0) {
        const __m256i xsum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].sum + i));
        sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(xsum, F::kOffsetShift));
      }
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(dw, _mm256_loadu_ps(x[t].d + i)), acc[t]);
      if constexpr (F::kMin) acc[t] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(x[t].s + i), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    out[t] = hsum(acc[t]);
    for (int64_t j = i; j < nb; ++j) out[t] += block_dot<F>(bw[j], x[t].raw[j]);
  }
}

template <class F, int T>
void rows(int64_t nb, const uint8_t* w, size_t w_stride, int64_t nrows, const PreparedX<typename F::XBlock>* x,
          float* y, int64_t y_stride) {
  for (int64_t r = 0; r < nrows; ++r) {
    float out[T];
    dot_row<F, T>(nb, reinterpret_cast<const typename F::Block*>(w + r * w_stride), x, out);
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = out[t];
  }
}

template <class F>
void vec_dot_rows(int64_t n, const void* w, size_t w_stride, int64_t nrows, const void* x, size_t x_stride,
                  int64_t ntok, float* y, int64_t y_stride) {
  using XBlock = typename F::XBlock;
  const int64_t nb = n / kBlockElems;
  thread_local Scratch scratch;  // reused: the matmul driver calls once per row range and thread
  scratch.reserve(static_cast<size_t>(kTokens * nb));
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t t0 = 0; t0 < ntok; t0 += kTokens) {
    const int tn = static_cast<int>(std::min<int64_t>(kTokens, ntok - t0));
    PreparedX<XBlock> px[kTokens];
    for (int t = 0; t < tn; ++t) {
      const auto* xt = reinterpret_cast<const XBlock*>(static_cast<const uint8_t*>(x) + (t0 + t) * x_stride);
      const size_t at = static_cast<size_t>(t * nb);
      px[t] = prepare<F>(xt, nb, scratch.qs.data() + at * kBlockElems, scratch.d.data() + at, scratch.sum.data() + at,
                         scratch.s.data() + at);
    }
    float* yt = y + t0 * y_stride;
    switch (tn) {
      case 1: rows<F, 1>(nb, wb, w_stride, nrows, px, yt, y_stride); break;
      case 2: rows<F, 2>(nb, wb, w_stride, nrows, px, yt, y_stride); break;
      case 3: rows<F, 3>(nb, wb, w_stride, nrows, px, yt, y_stride); break;
      default: rows<F, 4>(nb, wb, w_stride, nrows, px, yt, y_stride); break;
    }
  }
}

}  // namespace

void register_avx2_rows(KernelTable& t) {
  t[DType::Q4_0].vec_dot_rows = vec_dot_rows<FmtQ4_0>;
  t[DType::Q4_1].vec_dot_rows = vec_dot_rows<FmtQ4_1>;
  t[DType::Q5_0].vec_dot_rows = vec_dot_rows<FmtQ5_0>;
  t[DType::Q5_1].vec_dot_rows = vec_dot_rows<FmtQ5_1>;
}

}  // namespace strata::compute::legacy
