#include "compute/repack.h"

#include <cassert>
#include <cstring>
#include <vector>

#include "compute/quant.h"

namespace strata::compute {

bool q4_0_r8_available() { return kernels()[DType::Q4_0_R8].vec_dot_rows != nullptr; }

// The VBMI kernel replaces the AVX2 one in the AVX-512 table only where the CPU has it.
bool q4_0_plain_is_fast() {
  return kernels().isa == Isa::AVX512 &&
         kernels()[DType::Q4_0].vec_dot_rows != kernels_for(Isa::AVX2)[DType::Q4_0].vec_dot_rows;
}

void repack_q4_0_r8(void* data, int64_t rows, int64_t cols) {
  assert(q4_0_r8_fits(rows, cols));
  const int64_t nb = cols / 32;
  const size_t row_stride = static_cast<size_t>(nb) * 18;
  std::vector<uint8_t> group(8 * row_stride);
  auto* base = static_cast<uint8_t*>(data);
  for (int64_t g = 0; g < rows; g += 8) {
    uint8_t* dst = base + static_cast<size_t>(g) * row_stride;
    std::memcpy(group.data(), dst, group.size());
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = dst + static_cast<size_t>(b) * 144;
      for (int r = 0; r < 8; ++r) {
        const uint8_t* blk = group.data() + r * row_stride + static_cast<size_t>(b) * 18;
        std::memcpy(out + 2 * r, blk, 2);             // d
        std::memcpy(out + 16 + 16 * r, blk + 2, 16);  // nibbles
      }
    }
  }
}

}  // namespace strata::compute
