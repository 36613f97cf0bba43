// Block layouts of the 32-wide ("legacy") formats, shared by the scalar and SIMD kernel files.
// Internal to compute/: the rest of strata reaches these kernels through the KernelTable.
#pragma once
#include <cstdint>

#include "compute/quant.h"

namespace strata::compute::legacy {

inline constexpr int kBlockElems = 32;

// Scales are IEEE half, little-endian, as stored in GGUF.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];  // element j in the low nibble of qs[j], element j + 16 in the high nibble
};
struct BlockQ4_1 {
  uint16_t d, m;
  uint8_t qs[16];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];   // 5th bit of element j is bit j of qh read as a little-endian u32
  uint8_t qs[16];
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;  // d * sum(qs), so that min * sum(x) of the Q*_1 formats needs no pass over qs
  int8_t qs[32];
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);

// SIMD overlays, defined in kernels_legacy_avx2.cpp / kernels_legacy_avx512.cpp.
void register_avx2(KernelTable& t);
void register_avx2_rows(KernelTable& t);  // vec_dot_rows of the nibble formats
void register_avx512(KernelTable& t);
void register_avx512vnni(KernelTable& t);  // only where the CPU has AVX512-VNNI: Q4_0_R8
void register_avx512vbmi(KernelTable& t);  // ... and VBMI: Q4_0 rows on the plain layout

}  // namespace strata::compute::legacy
