// K-quant block layouts (ggml's super-blocks of 256 elements) shared by the scalar and SIMD
// kernel files. Internal to compute/: the rest of strata sees these types only as bytes.
//
// Element order inside a super-block, which every kernel must agree on:
// - Q2_K / Q3_K: each 128-element half h owns 32 bytes of qs; byte l holds four 2-bit quants,
//   bits 2j..2j+1 being element h*128 + j*32 + l. Q3_K's hmask byte l, bit 4h+j, is the
//   same element's high bit (set: q = low2, clear: q = low2 - 4). One scale per 16 elements.
// - Q4_K / Q5_K: each 64-element chunk c owns 32 bytes of qs; byte l's low nibble is element
//   64c + l, its high nibble element 64c + 32 + l. Q5_K's qh byte l, bit s, is the fifth bit
//   of element 32s + l. One scale and one min per 32 elements.
// - Q6_K: each 128-element half owns 64 bytes of ql and 32 of qh. For l < 32: element l is
//   ql[l] low nibble with qh[l] bits 0-1 on top, element 32+l is ql[32+l] low with bits 2-3,
//   element 64+l is ql[l] high with bits 4-5, element 96+l is ql[32+l] high with bits 6-7.
//   q - 32, one int8 scale per 16 elements.
#pragma once
#include <cstdint>
#include <cstring>

#include "compute/quant.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace strata::compute::kquant {

inline constexpr int kBlockElems = 256;

struct BlockQ2K {
  uint8_t scales[16];  // low nibble: scale, high nibble: min, one per 16 elements
  uint8_t qs[64];
  uint16_t d;
  uint16_t dmin;
};

struct BlockQ3K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];  // 16 six-bit scales, stored + 32
  uint16_t d;
};

struct BlockQ4K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];  // 8 six-bit scales and 8 six-bit mins
  uint8_t qs[128];
};

struct BlockQ5K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};

struct BlockQ6K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};

struct BlockQ8K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];  // sum of each run of 16 quants: turns min/offset terms into 16 products
};

static_assert(sizeof(BlockQ2K) == 84);
static_assert(sizeof(BlockQ3K) == 110);
static_assert(sizeof(BlockQ4K) == 144);
static_assert(sizeof(BlockQ5K) == 176);
static_assert(sizeof(BlockQ6K) == 210);
static_assert(sizeof(BlockQ8K) == 292);

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Q4_K/Q5_K: the 12 packed bytes hold scales 0-3 and mins 0-3 in the low 6 bits of bytes 0-3
// and 4-7; scales/mins 4-7 take their low 4 bits from the nibbles of bytes 8-11 and their top 2
// bits from the spare top bits of bytes 0-3 / 4-7. Output, as 16 bytes in 4 little-endian
// words: the 8 scales then the 8 mins. (Words, so SIMD callers can keep them in registers.)
inline void unpack_scales_mins_k4(const uint8_t packed[12], uint32_t out[4]) {
  constexpr uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, low2 = 0x03030303u;
  const uint32_t a0 = load_u32(packed), a1 = load_u32(packed + 4), a2 = load_u32(packed + 8);
  out[0] = a0 & low6;
  out[1] = (a2 & low4) | (((a0 >> 6) & low2) << 4);
  out[2] = a1 & low6;
  out[3] = ((a2 >> 4) & low4) | (((a1 >> 6) & low2) << 4);
}

// Q3_K: scale i's low 4 bits are the low (i < 8) or high (i >= 8) nibble of byte i % 8; its top
// 2 bits are bits 2*(i/4).. of byte 8 + i%4. Output: the 16 stored scales (value + 32) as bytes
// in 4 little-endian words.
inline void unpack_scales_q3k(const uint8_t packed[12], uint32_t out[4]) {
  constexpr uint32_t low4 = 0x0f0f0f0fu, low2 = 0x03030303u;
  const uint32_t a0 = load_u32(packed), a1 = load_u32(packed + 4), a2 = load_u32(packed + 8);
  out[0] = (a0 & low4) | ((a2 & low2) << 4);
  out[1] = (a1 & low4) | (((a2 >> 2) & low2) << 4);
  out[2] = ((a0 >> 4) & low4) | (((a2 >> 4) & low2) << 4);
  out[3] = ((a1 >> 4) & low4) | (((a2 >> 6) & low2) << 4);
}

#if defined(__AVX2__)  // compiled into the SIMD kernel files only
// unpack_scales_mins_k4 on vectors. `head` is a Q4_K/Q5_K block's first 16 bytes, dwords
// [d|dmin, A, B, C] with A, B, C the packed scale bytes 0-3, 4-7, 8-11. Result bytes: 8 scales
// (A & 63, C low nibbles + A's top bits) then 8 mins (B & 63, C high nibbles + B's top bits).
inline __m128i unpack_scales_mins(__m128i head) {
  const __m128i low = _mm_srlv_epi32(_mm_shuffle_epi32(head, _MM_SHUFFLE(3, 2, 3, 1)), _mm_setr_epi32(0, 0, 0, 4));
  const __m128i top = _mm_srli_epi32(_mm_shuffle_epi32(head, _MM_SHUFFLE(2, 2, 1, 1)), 2);
  return _mm_or_si128(_mm_and_si128(low, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)),
                      _mm_and_si128(top, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030)));
}

#endif

// Q8_K quantization multiplies by this (rather than dividing by d) in every ISA, so the SIMD
// quantizers round exactly as the scalar one does.
inline float q8k_inverse_scale(float amax) { return 127.0f / amax; }

// Per-ISA registration, defined in the *_avx2.cpp / *_avx512.cpp files.
void register_avx2(KernelTable& t);
void register_avx512(KernelTable& t);

}  // namespace strata::compute::kquant
