// In-memory repacking of Q4_0 weights for the AVX-512 VNNI kernel. In Q4_0_R8 each group of
// eight rows is stored block by block: for block b, the eight rows' fp16 scales (16 bytes) and
// then their 16 nibble bytes each (128 bytes). Same size as Q4_0 (8 x 18 bytes per block), so a
// unit is repacked in place; a group of 8 rows starts where its first row did.
//
// The kernel gives the same bits as the AVX2 kernel on the plain layout: repacking changes speed,
// never output.
//
// Why: a plain Q4_0 row offers 18-byte blocks that a 512-bit register cannot use whole; with
// eight rows side by side, one block step is two full-width loads and four vpdpbusd, and the
// eight rows share each broadcast activation block. Measured alone (one thread, matrix in L2):
// 21 GB/s against 7.5 GB/s for the AVX2 kernel on the plain layout.
#pragma once
#include <cstddef>
#include <cstdint>

namespace strata::compute {

// Whether the active kernel table can multiply Q4_0_R8 (AVX-512 VNNI present and not lowered by
// STRATA_ISA).
bool q4_0_r8_available();

// Whether the active Q4_0 kernel multiplies the plain layout at close to Q4_0_R8's speed (AVX-512
// VBMI; kernels_legacy_avx512vbmi.cpp). Then repacking pays only for weights used many times
// per load: it costs a read and a write of every byte, the multiply one read.
bool q4_0_plain_is_fast();

// Rewrites `rows` rows of Q4_0 (each `cols` elements, rows contiguous) as Q4_0_R8, in place.
// rows must be a multiple of 8 and cols of 256 (see q4_0_r8_fits).
inline bool q4_0_r8_fits(int64_t rows, int64_t cols) { return rows % 8 == 0 && cols % 256 == 0; }
void repack_q4_0_r8(void* data, int64_t rows, int64_t cols);

}  // namespace strata::compute
