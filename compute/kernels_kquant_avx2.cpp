// AVX2 K-quant kernels: vec_dot of every K-quant weight type against Q8_K, and Q8_K quantize.
//
// Common shape of each vec_dot: weight quants are made unsigned (Q3_K and Q6_K get +4 / +32,
// undone through the activation's 16-element sums), multiplied with the int8 activations by
// maddubs (pairs of products, within int16 for every format), then madd'ed with the scale of
// their 16- or 32-element group into int32. One float multiply-add per super-block, on all 8
// lanes: reducing each block's lanes to one integer first would cancel the offset terms exactly
// but costs ~17% (llvm-mca, znver3); the float rounding left is relative to the offset terms'
// size, far below the quantization error.
#include <immintrin.h>

#include <cassert>
#include <cstdint>
#include <type_traits>

#include "compute/kernels_kquant.h"

namespace strata::compute::kquant {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hsum(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

inline __m128i words_to_vector(const uint32_t w[4]) {
  return _mm_set_epi32(static_cast<int>(w[3]), static_cast<int>(w[2]), static_cast<int>(w[1]),
                       static_cast<int>(w[0]));
}

// vpshufb controls that repeat one int16 of each 128-bit lane across that lane: row k of
// kSameScale picks element k in both lanes, row k of kPairScale picks 2k (low lane) and 2k + 1
// (high lane). In memory, so the loops use them as load operands instead of rebuilding them.
struct ScaleShuffles {
  alignas(32) uint8_t rows[8][32];
};

constexpr ScaleShuffles make_scale_shuffles(bool pairs) {
  ScaleShuffles t{};
  for (int k = 0; k < 8; ++k)
    for (int i = 0; i < 32; ++i) {
      const int lane = i / 16;
      const int element = pairs ? (2 * k + lane) % 8 : k;
      t.rows[k][i] = static_cast<uint8_t>(2 * element + (i % 2));
    }
  return t;
}

constexpr ScaleShuffles kSameScale = make_scale_shuffles(false);
constexpr ScaleShuffles kPairScale = make_scale_shuffles(true);

// v holds 8 int16 scales in both 128-bit lanes.
inline __m256i spread_scales(__m256i v, const ScaleShuffles& table, int row) {
  return _mm256_shuffle_epi8(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(table.rows[row])));
}

// sum over 32 elements of q*a, paired and weighted: q unsigned (< 128), a signed int8, scales
// int16 per product pair. Returns 8 int32 partial sums.
inline __m256i scaled_dot(__m256i q, __m256i a, __m256i scales) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), scales);
}

// Q4_K and Q5_K share everything but the fifth bit.
template <typename Block>
float vec_dot_k4k5(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5K>;
  const auto* wb = static_cast<const Block*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i bit4 = _mm256_set1_epi8(0x10);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const Block& blk = wb[b];
    const BlockQ8K& a = xb[b];

    // d, dmin and the 12 scale bytes are the block's first 16 bytes: one load serves both
    const __m128i head = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&blk));
    const __m128i packed = unpack_scales_mins(head);
    const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(packed));
    const __m128i mins = _mm_cvtepu8_epi16(_mm_srli_si128(packed, 8));
    const __m128 multipliers = _mm_mul_ps(_mm_cvtph_ps(head), _mm_set1_ps(a.d));  // d, dmin

    // min term: each 32-element min meets the sum of two 16-element activation sums
    const __m128i bs_lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums));
    const __m128i bs_hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8));
    const __m128i min_dot = _mm_madd_epi16(mins, _mm_hadd_epi16(bs_lo, bs_hi));
    acc_min = _mm_fmadd_ps(_mm_permute_ps(multipliers, 0x55), _mm_cvtepi32_ps(min_dot), acc_min);

    __m256i high_bits = _mm256_setzero_si256();
    if constexpr (kFifthBit) high_bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh));
    __m256i sum = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + 32 * c));
      __m256i q_lo = _mm256_and_si256(bytes, low4);
      __m256i q_hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
      if constexpr (kFifthBit) {
        // bit 2c of qh byte l belongs to the low nibble, bit 2c+1 to the high one; high_bits
        // is shifted right by 2 per chunk so they are always bits 0 and 1
        q_lo = _mm256_or_si256(q_lo, _mm256_and_si256(_mm256_slli_epi16(high_bits, 4), bit4));
        q_hi = _mm256_or_si256(q_hi, _mm256_and_si256(_mm256_slli_epi16(high_bits, 3), bit4));
        high_bits = _mm256_srli_epi16(high_bits, 2);
      }
      const __m256i a_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + 64 * c));
      const __m256i a_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + 64 * c + 32));
      sum = _mm256_add_epi32(sum, scaled_dot(q_lo, a_lo, spread_scales(scales, kSameScale, 2 * c)));
      sum = _mm256_add_epi32(sum, scaled_dot(q_hi, a_hi, spread_scales(scales, kSameScale, 2 * c + 1)));
    }
    acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(multipliers), _mm256_cvtepi32_ps(sum), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

float vec_dot_q6k(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  const auto* wb = static_cast<const BlockQ6K*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i bits45 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const BlockQ6K& blk = wb[b];
    const BlockQ8K& a = xb[b];
    const __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)));
    // quants are used as q + 32 (unsigned); take 32 * scale * (group sum of a) back off
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums));
    __m256i sum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(scales, bsums), 5));
    for (int half = 0; half < 2; ++half) {
      const __m256i half_scales = half == 0 ? _mm256_permute2x128_si256(scales, scales, 0x00)
                                            : _mm256_permute2x128_si256(scales, scales, 0x11);
      const uint8_t* ql = blk.ql + 64 * half;
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh + 32 * half));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45)),
          _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45)),
      };
      const int8_t* act = a.qs + 128 * half;
      for (int i = 0; i < 4; ++i) {
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act + 32 * i));
        sum = _mm256_add_epi32(sum, scaled_dot(q[i], av, spread_scales(half_scales, kPairScale, i)));
      }
    }
    // integer total first, as in Q3_K: an activation outlier makes the +32 terms and their
    // correction large, and in float lanes their cancellation would lose precision
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a.d * half_to_float(blk.d)), _mm256_cvtepi32_ps(sum), acc);
  }
  return hsum(acc);
}

// Q2_K and Q3_K: 2-bit fields, bits 2j of qs byte l being element 32j + l of each half.
float vec_dot_q3k(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  const auto* wb = static_cast<const BlockQ3K*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  const __m256i low2 = _mm256_set1_epi8(0x03);
  const __m256i bit2 = _mm256_set1_epi8(0x04);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const BlockQ3K& blk = wb[b];
    const BlockQ8K& a = xb[b];
    uint32_t words[4];
    unpack_scales_q3k(blk.scales, words);
    const __m128i stored = words_to_vector(words);
    const __m256i scales = _mm256_cvtepi8_epi16(_mm_sub_epi8(stored, _mm_set1_epi8(32)));
    // quants are used as q + 4 (0..7); take 4 * scale * (group sum of a) back off
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums));
    __m256i sum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(scales, bsums), 2));
    // set high bit -> +4 after the offset; bit 4h+j of hmask byte l, walked down one per step
    __m256i hmask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.hmask));
    for (int half = 0; half < 2; ++half) {
      const __m256i half_scales = half == 0 ? _mm256_permute2x128_si256(scales, scales, 0x00)
                                            : _mm256_permute2x128_si256(scales, scales, 0x11);
      __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + 32 * half));
      const int8_t* act = a.qs + 128 * half;
      for (int j = 0; j < 4; ++j) {
        const __m256i q = _mm256_or_si256(_mm256_and_si256(bits, low2),
                                          _mm256_and_si256(_mm256_slli_epi16(hmask, 2), bit2));
        bits = _mm256_srli_epi16(bits, 2);
        hmask = _mm256_srli_epi16(hmask, 1);
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act + 32 * j));
        sum = _mm256_add_epi32(sum, scaled_dot(q, av, spread_scales(half_scales, kPairScale, j)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a.d * half_to_float(blk.d)), _mm256_cvtepi32_ps(sum), acc);
  }
  return hsum(acc);
}

float vec_dot_q2k(int64_t n, const void* w, const void* x) {
  assert(n % kBlockElems == 0);
  const auto* wb = static_cast<const BlockQ2K*>(w);
  const auto* xb = static_cast<const BlockQ8K*>(x);
  const __m256i low2 = _mm256_set1_epi8(0x03);
  const __m128i low4 = _mm_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const BlockQ2K& blk = wb[b];
    const BlockQ8K& a = xb[b];
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales));
    const __m256i scales = _mm256_cvtepu8_epi16(_mm_and_si128(packed, low4));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums));
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(a.d * half_to_float(blk.dmin)),
                              _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bsums)), acc_min);
    __m256i sum = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i half_scales = half == 0 ? _mm256_permute2x128_si256(scales, scales, 0x00)
                                            : _mm256_permute2x128_si256(scales, scales, 0x11);
      __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + 32 * half));
      const int8_t* act = a.qs + 128 * half;
      for (int j = 0; j < 4; ++j) {
        const __m256i q = _mm256_and_si256(bits, low2);
        bits = _mm256_srli_epi16(bits, 2);
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act + 32 * j));
        sum = _mm256_add_epi32(sum, scaled_dot(q, av, spread_scales(half_scales, kPairScale, j)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a.d * half_to_float(blk.d)), _mm256_cvtepi32_ps(sum), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

// Bit-identical to the scalar quantizer: same max, same multiply, round-to-nearest-even.
void quantize_q8k(const float* src, void* dst, int64_t n) {
  assert(n % kBlockElems == 0);
  auto* blocks = static_cast<BlockQ8K*>(dst);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i limit = _mm256_set1_epi32(127);
  const __m256i neg_limit = _mm256_set1_epi32(-127);
  const __m256i interleave = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* x = src + b * kBlockElems;
    BlockQ8K& out = blocks[b];
    __m256 vmax = _mm256_setzero_ps();
    for (int i = 0; i < kBlockElems; i += 8)
      vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    if (amax == 0.0f) {
      out = BlockQ8K{};
      continue;
    }
    out.d = 1.0f / q8k_inverse_scale(amax);  // as llama.cpp: d = 1 / iscale
    const __m256 inv_scale = _mm256_set1_ps(q8k_inverse_scale(amax));
    for (int chunk = 0; chunk < 4; ++chunk) {  // 64 elements, four 16-element sums
      __m256i v[8];
      for (int k = 0; k < 8; ++k) {
        const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(x + 64 * chunk + 8 * k), inv_scale);
        v[k] = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(scaled), neg_limit), limit);
      }
      for (int h = 0; h < 2; ++h) {
        // packs works per 128-bit lane, leaving 4-element runs interleaved; undo with a permute
        const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(v[4 * h], v[4 * h + 1]),
                                                 _mm256_packs_epi32(v[4 * h + 2], v[4 * h + 3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.qs + 64 * chunk + 32 * h),
                            _mm256_permutevar8x32_epi32(bytes, interleave));
      }
      const __m256i s0 = _mm256_hadd_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
      const __m256i s1 = _mm256_hadd_epi32(_mm256_add_epi32(v[4], v[5]), _mm256_add_epi32(v[6], v[7]));
      const __m256i s = _mm256_hadd_epi32(s0, s1);  // per lane: halves of the four group sums
      const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out.bsums + 4 * chunk), _mm_packs_epi32(sums, sums));
    }
  }
}

}  // namespace

void register_avx2(KernelTable& t) {
  t[DType::Q2_K].vec_dot = vec_dot_q2k;
  t[DType::Q3_K].vec_dot = vec_dot_q3k;
  t[DType::Q4_K].vec_dot = vec_dot_k4k5<BlockQ4K>;
  t[DType::Q5_K].vec_dot = vec_dot_k4k5<BlockQ5K>;
  t[DType::Q6_K].vec_dot = vec_dot_q6k;
  t[DType::Q8_K].quantize = quantize_q8k;
}

}  // namespace strata::compute::kquant
