// SIMD overlays of the float kernels (F32, F16, BF16). Internal to compute/.
#pragma once
#include "compute/quant.h"

namespace strata::compute::floats {

void register_avx2(KernelTable& t);    // kernels_float_avx2.cpp
void register_avx512(KernelTable& t);  // kernels_float_avx512.cpp

}  // namespace strata::compute::floats
