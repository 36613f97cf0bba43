// AVX-512 (F/BW/VL/DQ) K-quant kernels: the AVX2 scheme (kernels_kquant_avx2.cpp) on 64-byte
// vectors. Each vector pairs two 32-element runs whose activations are adjacent where the
// format allows it (Q2_K, Q3_K, Q6_K: 64 consecutive elements), otherwise gathered from two
// 32-byte loads (Q4_K, Q5_K: the low nibbles of 64 bytes are elements 0-31 and 64-95).
// Per-run scales are picked by vpermw; per-run bit positions by variable 16-bit shifts.

#include "compute/avx512_intrinsics.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <type_traits>

#include "compute/kernels_kquant.h"

namespace strata::compute::kquant {
namespace {

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

// 32 int16 lanes: `lo` in the low 16, `hi` in the high 16.
inline __m512i halves16(int lo, int hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<short>(lo))),
                            _mm256_set1_epi16(static_cast<short>(hi)), 1);
}

// vpermw indices picking scale first + k for the k-th 16-element run (8 int16 lanes each).
inline __m512i quarter_index(int first) {
  const __m512i runs = _mm512_set_epi32(0x00030003, 0x00030003, 0x00030003, 0x00030003,  //
                                        0x00020002, 0x00020002, 0x00020002, 0x00020002,  //
                                        0x00010001, 0x00010001, 0x00010001, 0x00010001,  //
                                        0, 0, 0, 0);
  return _mm512_add_epi16(runs, _mm512_set1_epi16(static_cast<short>(first)));
}

inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline __m512i scaled_dot(__m512i q, __m512i a, __m512i scales) {
  return _mm512_madd_epi16(_mm512_maddubs_epi16(q, a), scales);
}

template <typename Block>
float vec_dot_k4k5(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5K>;
  const auto* wb = static_cast<const Block*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i bit4 = _mm512_set1_epi8(0x10);
  __m512 acc = _mm512_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const Block& blk = wb[b];
    const BlockQ8K& a = xb[b];
    const __m128i head = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&blk));  // d, dmin, scales
    const __m128i packed = unpack_scales_mins(head);
    const __m512i scales = _mm512_castsi128_si512(_mm_cvtepu8_epi16(packed));
    const __m128i mins = _mm_cvtepu8_epi16(_mm_srli_si128(packed, 8));
    const __m128 multipliers = _mm_mul_ps(_mm_cvtph_ps(head), _mm_set1_ps(a.d));  // d, dmin
    const __m128i bs_lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums));
    const __m128i bs_hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8));
    const __m128i min_dot = _mm_madd_epi16(mins, _mm_hadd_epi16(bs_lo, bs_hi));
    acc_min = _mm_fmadd_ps(_mm_permute_ps(multipliers, 0x55), _mm_cvtepi32_ps(min_dot), acc_min);

    // halves of high_bits: qh for sub-blocks 4p.. and qh >> 2 for sub-blocks 4p+2..
    __m512i high_bits = _mm512_setzero_si512();
    if constexpr (kFifthBit) {
      const __m256i qh = load256(blk.qh);
      high_bits = join(qh, _mm256_srli_epi16(qh, 2));
    }
    __m512i sum = _mm512_setzero_si512();
    for (int p = 0; p < 2; ++p) {  // 128 elements: sub-blocks 4p..4p+3
      const __m512i bytes = _mm512_loadu_si512(blk.qs + 64 * p);
      __m512i q_lo = _mm512_and_si512(bytes, low4);                         // sub-blocks 4p, 4p+2
      __m512i q_hi = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low4);  // sub-blocks 4p+1, 4p+3
      if constexpr (kFifthBit) {
        q_lo = _mm512_or_si512(q_lo, _mm512_and_si512(_mm512_slli_epi16(high_bits, 4), bit4));
        q_hi = _mm512_or_si512(q_hi, _mm512_and_si512(_mm512_slli_epi16(high_bits, 3), bit4));
        high_bits = _mm512_srli_epi16(high_bits, 4);
      }
      const int8_t* act = a.qs + 128 * p;
      const __m512i a_lo = join(load256(act), load256(act + 64));
      const __m512i a_hi = join(load256(act + 32), load256(act + 96));
      const int s = 4 * p;
      sum = _mm512_add_epi32(sum, scaled_dot(q_lo, a_lo, _mm512_permutexvar_epi16(halves16(s, s + 2), scales)));
      sum = _mm512_add_epi32(sum, scaled_dot(q_hi, a_hi, _mm512_permutexvar_epi16(halves16(s + 1, s + 3), scales)));
    }
    acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(multipliers), _mm512_cvtepi32_ps(sum), acc);
  }
  __m128 m = _mm_add_ps(acc_min, _mm_movehl_ps(acc_min, acc_min));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(m);
}

// vec_dot_k4k5 for up to T activation rows at once: each weight block is decoded once (quants,
// scales, mins) and used for every token, with each token's arithmetic in exactly the order
// vec_dot_k4k5 uses, so the results are the same bits. Prompt processing (and expert jobs over
// several tokens) spend most of their time here.
template <typename Block, int T>
void dot_row_k4k5(int64_t nb, const Block* wb, const BlockQ8K* const* xs, float* out) {
  constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5K>;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i bit4 = _mm512_set1_epi8(0x10);
  __m512 acc[T];
  __m128 acc_min[T];
  for (int t = 0; t < T; ++t) {
    acc[t] = _mm512_setzero_ps();
    acc_min[t] = _mm_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const Block& blk = wb[b];
    const __m128i head = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&blk));
    const __m128i packed = unpack_scales_mins(head);
    const __m512i scales = _mm512_castsi128_si512(_mm_cvtepu8_epi16(packed));
    const __m128i mins = _mm_cvtepu8_epi16(_mm_srli_si128(packed, 8));
    const __m128 dw = _mm_cvtph_ps(head);
    __m512i high_bits = _mm512_setzero_si512();
    if constexpr (kFifthBit) {
      const __m256i qh = load256(blk.qh);
      high_bits = join(qh, _mm256_srli_epi16(qh, 2));
    }
    __m512i q_lo[2], q_hi[2], sc_lo[2], sc_hi[2];
    for (int p = 0; p < 2; ++p) {
      const __m512i bytes = _mm512_loadu_si512(blk.qs + 64 * p);
      q_lo[p] = _mm512_and_si512(bytes, low4);
      q_hi[p] = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low4);
      if constexpr (kFifthBit) {
        q_lo[p] = _mm512_or_si512(q_lo[p], _mm512_and_si512(_mm512_slli_epi16(high_bits, 4), bit4));
        q_hi[p] = _mm512_or_si512(q_hi[p], _mm512_and_si512(_mm512_slli_epi16(high_bits, 3), bit4));
        high_bits = _mm512_srli_epi16(high_bits, 4);
      }
      const int s = 4 * p;
      sc_lo[p] = _mm512_permutexvar_epi16(halves16(s, s + 2), scales);
      sc_hi[p] = _mm512_permutexvar_epi16(halves16(s + 1, s + 3), scales);
    }
    for (int t = 0; t < T; ++t) {
      const BlockQ8K& a = xs[t][b];
      const __m128 multipliers = _mm_mul_ps(dw, _mm_set1_ps(a.d));
      const __m128i bs_lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums));
      const __m128i bs_hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8));
      const __m128i min_dot = _mm_madd_epi16(mins, _mm_hadd_epi16(bs_lo, bs_hi));
      acc_min[t] = _mm_fmadd_ps(_mm_permute_ps(multipliers, 0x55), _mm_cvtepi32_ps(min_dot), acc_min[t]);
      __m512i sum = _mm512_setzero_si512();
      for (int p = 0; p < 2; ++p) {
        const int8_t* act = a.qs + 128 * p;
        const __m512i a_lo = join(load256(act), load256(act + 64));
        const __m512i a_hi = join(load256(act + 32), load256(act + 96));
        sum = _mm512_add_epi32(sum, scaled_dot(q_lo[p], a_lo, sc_lo[p]));
        sum = _mm512_add_epi32(sum, scaled_dot(q_hi[p], a_hi, sc_hi[p]));
      }
      acc[t] = _mm512_fmadd_ps(_mm512_broadcastss_ps(multipliers), _mm512_cvtepi32_ps(sum), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    __m128 m = _mm_add_ps(acc_min[t], _mm_movehl_ps(acc_min[t], acc_min[t]));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    out[t] = _mm512_reduce_add_ps(acc[t]) - _mm_cvtss_f32(m);
  }
}

// Quants used with a +2^log2_offset offset (unsigned for maddubs) overcount by offset * scale *
// (group sum of a); this is the negated total as an int32 start value for the block's sum.
inline __m512i offset_correction(__m256i scales, const BlockQ8K& a, int log2_offset) {
  const __m256i prod = _mm256_madd_epi16(scales, load256(a.bsums));
  const __m256i neg = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sll_epi32(prod, _mm_cvtsi32_si128(log2_offset)));
  return _mm512_inserti64x4(_mm512_setzero_si512(), neg, 0);
}

float vec_dot_q6k(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  const auto* wb = static_cast<const BlockQ6K*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  const __m512i shift_a = halves16(4, 2);  // elements 0-31 take qh bits 0-1, 32-63 bits 2-3
  const __m512i shift_b = halves16(0, 2);  // elements 64-95 take bits 4-5, 96-127 bits 6-7
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const BlockQ6K& blk = wb[b];
    const BlockQ8K& a = xb[b];
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)));
    const __m512i scales = _mm512_castsi256_si512(scales16);
    __m512i sum = offset_correction(scales16, a, 5);
    for (int half = 0; half < 2; ++half) {
      const __m512i ql = _mm512_loadu_si512(blk.ql + 64 * half);
      const __m512i qh = _mm512_broadcast_i64x4(load256(blk.qh + 32 * half));
      const __m512i q_a = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                          _mm512_and_si512(_mm512_sllv_epi16(qh, shift_a), bits45));
      const __m512i q_b = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                          _mm512_and_si512(_mm512_srlv_epi16(qh, shift_b), bits45));
      const int8_t* act = a.qs + 128 * half;
      sum = _mm512_add_epi32(sum, scaled_dot(q_a, _mm512_loadu_si512(act),
                                             _mm512_permutexvar_epi16(quarter_index(8 * half), scales)));
      sum = _mm512_add_epi32(sum, scaled_dot(q_b, _mm512_loadu_si512(act + 64),
                                             _mm512_permutexvar_epi16(quarter_index(8 * half + 4), scales)));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a.d * half_to_float(blk.d)), _mm512_cvtepi32_ps(sum), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// vec_dot_q6k for up to T activation rows, each weight block decoded once; per token the same
// operations in the same order as vec_dot_q6k, so the same bits.
template <int T>
void dot_row_q6k(int64_t nb, const BlockQ6K* wb, const BlockQ8K* const* xs, float* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  const __m512i shift_a = halves16(4, 2);
  const __m512i shift_b = halves16(0, 2);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ6K& blk = wb[b];
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)));
    const __m512i scales = _mm512_castsi256_si512(scales16);
    __m512i q_a[2], q_b[2], sc_a[2], sc_b[2];
    for (int half = 0; half < 2; ++half) {
      const __m512i ql = _mm512_loadu_si512(blk.ql + 64 * half);
      const __m512i qh = _mm512_broadcast_i64x4(load256(blk.qh + 32 * half));
      q_a[half] = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_and_si512(_mm512_sllv_epi16(qh, shift_a), bits45));
      q_b[half] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                  _mm512_and_si512(_mm512_srlv_epi16(qh, shift_b), bits45));
      sc_a[half] = _mm512_permutexvar_epi16(quarter_index(8 * half), scales);
      sc_b[half] = _mm512_permutexvar_epi16(quarter_index(8 * half + 4), scales);
    }
    const float dw = half_to_float(blk.d);
    for (int t = 0; t < T; ++t) {
      const BlockQ8K& a = xs[t][b];
      __m512i sum = offset_correction(scales16, a, 5);
      for (int half = 0; half < 2; ++half) {
        const int8_t* act = a.qs + 128 * half;
        sum = _mm512_add_epi32(sum, scaled_dot(q_a[half], _mm512_loadu_si512(act), sc_a[half]));
        sum = _mm512_add_epi32(sum, scaled_dot(q_b[half], _mm512_loadu_si512(act + 64), sc_b[half]));
      }
      acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(a.d * dw), _mm512_cvtepi32_ps(sum), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = _mm512_reduce_add_ps(acc[t]);
}

// The vec_dot_rows driver of the K-quant row kernels: tokens four at a time, each weight row
// once per group of tokens.
struct RowsK4K5 {
  template <typename Block, int T>
  static void row(int64_t nb, const Block* wb, const BlockQ8K* const* xs, float* out) { dot_row_k4k5<Block, T>(nb, wb, xs, out); }
};
struct RowsQ6K {
  template <typename Block, int T>
  static void row(int64_t nb, const Block* wb, const BlockQ8K* const* xs, float* out) { dot_row_q6k<T>(nb, wb, xs, out); }
};

template <typename Block, typename Kernel>
void vec_dot_rows_k(int64_t n, const void* w, size_t w_stride, int64_t nrows, const void* x, size_t x_stride,
                    int64_t ntok, float* y, int64_t y_stride) {
  const int64_t nb = n / kBlockElems;
  const auto* wbytes = static_cast<const uint8_t*>(w);
  const auto* xbytes = static_cast<const uint8_t*>(x);
  for (int64_t t0 = 0; t0 < ntok; t0 += 4) {
    const int tn = static_cast<int>(std::min<int64_t>(4, ntok - t0));
    const BlockQ8K* xs[4];
    for (int t = 0; t < tn; ++t) xs[t] = reinterpret_cast<const BlockQ8K*>(xbytes + (t0 + t) * x_stride);
    for (int64_t r = 0; r < nrows; ++r) {
      const auto* wb = reinterpret_cast<const Block*>(wbytes + r * w_stride);
      float out[4];
      switch (tn) {
        case 1: Kernel::template row<Block, 1>(nb, wb, xs, out); break;
        case 2: Kernel::template row<Block, 2>(nb, wb, xs, out); break;
        case 3: Kernel::template row<Block, 3>(nb, wb, xs, out); break;
        default: Kernel::template row<Block, 4>(nb, wb, xs, out); break;
      }
      for (int t = 0; t < tn; ++t) y[(t0 + t) * y_stride + r] = out[t];
    }
  }
}

// Q2_K/Q3_K: within a 128-element half, element 32j + l is bits 2j.. of qs byte l, so a vector
// of two runs (j, j+1) is the 32 qs bytes twice, shifted right by 2j and 2j+2.
float vec_dot_q3k(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  const auto* wb = static_cast<const BlockQ3K*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  const __m512i low2 = _mm512_set1_epi8(0x03);
  const __m512i bit2 = _mm512_set1_epi8(0x04);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const BlockQ3K& blk = wb[b];
    const BlockQ8K& a = xb[b];
    uint32_t words[4];
    unpack_scales_q3k(blk.scales, words);
    const __m128i stored = _mm_set_epi32(static_cast<int>(words[3]), static_cast<int>(words[2]),
                                         static_cast<int>(words[1]), static_cast<int>(words[0]));
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(stored, _mm_set1_epi8(32)));
    const __m512i scales = _mm512_castsi256_si512(scales16);
    __m512i sum = offset_correction(scales16, a, 2);  // quants used as q + 4
    const __m512i hmask = _mm512_broadcast_i64x4(load256(blk.hmask));
    for (int half = 0; half < 2; ++half) {
      const __m512i bits = _mm512_broadcast_i64x4(load256(blk.qs + 32 * half));
      const int8_t* act = a.qs + 128 * half;
      for (int pair = 0; pair < 2; ++pair) {
        const int j = 2 * pair;
        const int hbit = 4 * half + j;  // hmask bit of run j; run j+1 uses the next one
        const __m512i low = _mm512_and_si512(_mm512_srlv_epi16(bits, halves16(2 * j, 2 * j + 2)), low2);
        const __m512i high = _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(hmask, halves16(hbit, hbit + 1)), 2), bit2);
        sum = _mm512_add_epi32(sum, scaled_dot(_mm512_or_si512(low, high), _mm512_loadu_si512(act + 32 * j),
                                               _mm512_permutexvar_epi16(quarter_index(8 * half + 2 * j), scales)));
      }
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a.d * half_to_float(blk.d)), _mm512_cvtepi32_ps(sum), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

float vec_dot_q2k(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  const auto* wb = static_cast<const BlockQ2K*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  const __m512i low2 = _mm512_set1_epi8(0x03);
  const __m128i low4 = _mm_set1_epi8(0x0f);
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const BlockQ2K& blk = wb[b];
    const BlockQ8K& a = xb[b];
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales));
    const __m512i scales = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(packed, low4)));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(a.d * half_to_float(blk.dmin)),
                              _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, load256(a.bsums))), acc_min);
    __m512i sum = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half) {
      const __m512i bits = _mm512_broadcast_i64x4(load256(blk.qs + 32 * half));
      const int8_t* act = a.qs + 128 * half;
      for (int pair = 0; pair < 2; ++pair) {
        const int j = 2 * pair;
        const __m512i q = _mm512_and_si512(_mm512_srlv_epi16(bits, halves16(2 * j, 2 * j + 2)), low2);
        sum = _mm512_add_epi32(sum, scaled_dot(q, _mm512_loadu_si512(act + 32 * j),
                                               _mm512_permutexvar_epi16(quarter_index(8 * half + 2 * j), scales)));
      }
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a.d * half_to_float(blk.d)), _mm512_cvtepi32_ps(sum), acc);
  }
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(acc_min), _mm256_extractf128_ps(acc_min, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(m);
}

// Bit-identical to the scalar quantizer: same max, same multiply, round-to-nearest-even.
void quantize_q8k(const float* src, void* dst, int64_t n) {
  assert(n % kBlockElems == 0);
  auto* blocks = static_cast<BlockQ8K*>(dst);
  const __m512i limit = _mm512_set1_epi32(127);
  const __m512i neg_limit = _mm512_set1_epi32(-127);
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* x = src + b * kBlockElems;
    BlockQ8K& out = blocks[b];
    __m512 vmax = _mm512_setzero_ps();
    for (int i = 0; i < kBlockElems; i += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    const float amax = _mm512_reduce_max_ps(vmax);
    if (amax == 0.0f) {
      out = BlockQ8K{};
      continue;
    }
    out.d = 1.0f / q8k_inverse_scale(amax);  // as llama.cpp: d = 1 / iscale
    const __m512 inv_scale = _mm512_set1_ps(q8k_inverse_scale(amax));
    for (int g = 0; g < 16; ++g) {  // one 16-element group per vector: its sum is one bsum
      const __m512i v = _mm512_min_epi32(
          _mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), inv_scale)), neg_limit), limit);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out.qs + 16 * g), _mm512_cvtsepi32_epi8(v));
      out.bsums[g] = static_cast<int16_t>(_mm512_reduce_add_epi32(v));
    }
  }
}

}  // namespace

void register_avx512(KernelTable& t) {
  t[DType::Q2_K].vec_dot = vec_dot_q2k;
  t[DType::Q3_K].vec_dot = vec_dot_q3k;
  t[DType::Q4_K].vec_dot = vec_dot_k4k5<BlockQ4K>;
  t[DType::Q5_K].vec_dot = vec_dot_k4k5<BlockQ5K>;
  t[DType::Q4_K].vec_dot_rows = vec_dot_rows_k<BlockQ4K, RowsK4K5>;
  t[DType::Q5_K].vec_dot_rows = vec_dot_rows_k<BlockQ5K, RowsK4K5>;
  t[DType::Q6_K].vec_dot = vec_dot_q6k;
  t[DType::Q6_K].vec_dot_rows = vec_dot_rows_k<BlockQ6K, RowsQ6K>;
  t[DType::Q8_K].quantize = quantize_q8k;
}

}  // namespace strata::compute::kquant
