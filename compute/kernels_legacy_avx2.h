// AVX2 building blocks of the 32-wide format kernels, for the *_avx2.cpp / *_avx512.cpp files
// only. Everything has internal linkage: a TU compiled with AVX-512 flags must not hand its
// copy of an inline function to a TU that runs on AVX2-only machines.
#pragma once
#include <immintrin.h>

#include <cstring>

#include "compute/kernels_legacy.h"

namespace strata::compute::legacy {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline float half(uint16_t h) { return _cvtsh_ss(h); }

inline uint64_t load_u16_as_u64(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Eight fp16 values at p + order[k] * Stride (k = 0..7) as floats, lane k. Built with scalar
// loads and shifts, which run on the integer ports while the vector ports are busy.
template <size_t Stride, int O0, int O1, int O2, int O3, int O4, int O5, int O6, int O7>
inline __m256 load_halves8(const uint8_t* p) {
  const uint64_t lo = load_u16_as_u64(p + O0 * Stride) | load_u16_as_u64(p + O1 * Stride) << 16 |
                      load_u16_as_u64(p + O2 * Stride) << 32 | load_u16_as_u64(p + O3 * Stride) << 48;
  const uint64_t hi = load_u16_as_u64(p + O4 * Stride) | load_u16_as_u64(p + O5 * Stride) << 16 |
                      load_u16_as_u64(p + O6 * Stride) << 32 | load_u16_as_u64(p + O7 * Stride) << 48;
  const __m128i h = _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(lo)), static_cast<long long>(hi), 1);
  return _mm256_cvtph_ps(h);
}

template <size_t Stride>
inline __m256 load_halves8(const uint8_t* p) {
  return load_halves8<Stride, 0, 1, 2, 3, 4, 5, 6, 7>(p);
}

inline __m256i load_bytes(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The 32 nibbles of qs[16] in element order: low nibbles in bytes 0..15, high in 16..31.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  const __m256i shifted = _mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0));
  return _mm256_and_si256(shifted, _mm256_set1_epi8(0x0F));
}

// Byte j of the result is 0x10 where bit (byte j of `spread`'s source bits) is set: `spread`
// holds in each byte the qh byte carrying that element's bit, `bit` the bit's mask.
inline __m256i fifth_bits_from(__m256i spread) {
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// 0x10 in byte j where bit j of qh (little-endian u32) is set, else 0.
inline __m256i unpack_fifth_bits(const uint8_t* qh) {
  return fifth_bits_from(_mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(load_u32(qh))),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                       2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)));
}

// Lane k (k < 4) of the result is the sum of the four low lanes of s_k, lane k + 4 that of its
// four high lanes.
inline __m256i reduce4(__m256i s0, __m256i s1, __m256i s2, __m256i s3) {
  const __m256i u01 = _mm256_add_epi32(_mm256_unpacklo_epi32(s0, s1), _mm256_unpackhi_epi32(s0, s1));
  const __m256i u23 = _mm256_add_epi32(_mm256_unpacklo_epi32(s2, s3), _mm256_unpackhi_epi32(s2, s3));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(u01, u23), _mm256_unpackhi_epi64(u01, u23));
}

// Lane k = the sum of all eight lanes of s[k].
inline __m256i reduce8(const __m256i s[8]) {
  const __m256i r0 = reduce4(s[0], s[1], s[2], s[3]), r1 = reduce4(s[4], s[5], s[6], s[7]);
  return _mm256_add_epi32(_mm256_permute2x128_si256(r0, r1, 0x20), _mm256_permute2x128_si256(r0, r1, 0x31));
}

inline __m256i widen_sum(__m256i i16) { return _mm256_madd_epi16(i16, _mm256_set1_epi16(1)); }

// Sum of the 32 signed bytes of an activation block.
inline int block_sum(const int8_t* qs) {
  return hsum_i32(widen_sum(_mm256_maddubs_epi16(_mm256_set1_epi8(1), load_bytes(qs))));
}


// Weight formats. quants(): one block decoded for vpmaddubsw, `a` unsigned bytes in element
// order; for Q8_0 a = |w| and `sign` = w, whose sign moves onto the activations.
// decode_pair() (nibble formats): blocks A and B as lo = [A 0..15 | B 0..15] and
// hi = [A 16..31 | B 16..31], the layout of the pair kernels (kernels_legacy_rows_avx2.cpp).
struct Quants {
  __m256i a;
  __m256i sign;
};

inline void split_nibbles(const uint8_t* qs_a, const uint8_t* qs_b, __m256i& lo, __m256i& hi) {
  const __m256i v = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs_a))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs_b)), 1);
  const __m256i mask = _mm256_set1_epi8(0x0F);
  lo = _mm256_and_si256(v, mask);
  hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
}

// Adds the fifth bits of blocks A and B to split_nibbles' output.
inline void add_fifth_bits_pair(const uint8_t* qh_a, const uint8_t* qh_b, __m256i& lo, __m256i& hi) {
  const uint64_t both = static_cast<uint64_t>(load_u32(qh_a)) | static_cast<uint64_t>(load_u32(qh_b)) << 32;
  const __m256i v = _mm256_set1_epi64x(static_cast<int64_t>(both));
  const __m256i lo_src = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5);
  const __m256i hi_src = _mm256_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,  //
                                          6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7);
  lo = _mm256_or_si256(lo, fifth_bits_from(_mm256_shuffle_epi8(v, lo_src)));
  hi = _mm256_or_si256(hi, fifth_bits_from(_mm256_shuffle_epi8(v, hi_src)));
}

// kOffset: the zero point (sum_j (q_j - kOffset) x_j), 1 << kOffsetShift; kMin: x = q*d + m.
struct FmtQ4_0 {
  using Block = BlockQ4_0;
  using XBlock = BlockQ8_0;
  static constexpr int kOffset = 8, kOffsetShift = 3;
  static constexpr bool kMin = false, kSigned = false;
  static Quants quants(const Block& b) { return {unpack_nibbles(b.qs), _mm256_setzero_si256()}; }
  static void decode_pair(const Block& a, const Block& b, __m256i& lo, __m256i& hi) { split_nibbles(a.qs, b.qs, lo, hi); }
};
struct FmtQ4_1 {
  using Block = BlockQ4_1;
  using XBlock = BlockQ8_1;
  static constexpr int kOffset = 0, kOffsetShift = 0;
  static constexpr bool kMin = true, kSigned = false;
  static Quants quants(const Block& b) { return {unpack_nibbles(b.qs), _mm256_setzero_si256()}; }
  static void decode_pair(const Block& a, const Block& b, __m256i& lo, __m256i& hi) { split_nibbles(a.qs, b.qs, lo, hi); }
};
struct FmtQ5_0 {
  using Block = BlockQ5_0;
  using XBlock = BlockQ8_0;
  static constexpr int kOffset = 16, kOffsetShift = 4;
  static constexpr bool kMin = false, kSigned = false;
  static Quants quants(const Block& b) {
    return {_mm256_or_si256(unpack_nibbles(b.qs), unpack_fifth_bits(b.qh)), _mm256_setzero_si256()};
  }
  static void decode_pair(const Block& a, const Block& b, __m256i& lo, __m256i& hi) {
    split_nibbles(a.qs, b.qs, lo, hi);
    add_fifth_bits_pair(a.qh, b.qh, lo, hi);
  }
};
struct FmtQ5_1 {
  using Block = BlockQ5_1;
  using XBlock = BlockQ8_1;
  static constexpr int kOffset = 0, kOffsetShift = 0;
  static constexpr bool kMin = true, kSigned = false;
  static Quants quants(const Block& b) {
    return {_mm256_or_si256(unpack_nibbles(b.qs), unpack_fifth_bits(b.qh)), _mm256_setzero_si256()};
  }
  static void decode_pair(const Block& a, const Block& b, __m256i& lo, __m256i& hi) {
    split_nibbles(a.qs, b.qs, lo, hi);
    add_fifth_bits_pair(a.qh, b.qh, lo, hi);
  }
};
struct FmtQ8_0 {
  using Block = BlockQ8_0;
  using XBlock = BlockQ8_0;
  static constexpr int kOffset = 0, kOffsetShift = 0;
  static constexpr bool kMin = false, kSigned = true;
  static Quants quants(const Block& b) {
    const __m256i w = load_bytes(b.qs);
    return {_mm256_sign_epi8(w, w), w};
  }
};

// sum_j w_j * x_j as eight i32 partial sums. The signed variant negates activation bytes, so it
// needs x != -128; quantize_q8 produces [-127, 127].
template <bool Signed>
inline __m256i dot32(const Quants& q, __m256i x) {
  const __m256i xs = Signed ? _mm256_sign_epi8(x, q.sign) : x;
  return widen_sum(_mm256_maddubs_epi16(q.a, xs));
}

// One block's contribution, for the blocks left over after the groups of eight.
template <class F>
inline float block_dot(const typename F::Block& w, const typename F::XBlock& x) {
  int s = hsum_i32(dot32<F::kSigned>(F::quants(w), load_bytes(x.qs)));
  if constexpr (F::kOffset != 0) s -= F::kOffset * block_sum(x.qs);
  float r = half(w.d) * half(x.d) * static_cast<float>(s);
  if constexpr (F::kMin) r += half(w.m) * half(x.s);
  return r;
}

}  // namespace
}  // namespace strata::compute::legacy
