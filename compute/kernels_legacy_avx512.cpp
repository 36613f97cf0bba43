// AVX-512 overlays of the 32-wide formats. The Q4_0_R8 kernel needs VNNI (vpdpbusd), which not
// every AVX-512 CPU has: it lives in its own file, compiled with -mavx512vnni, and is registered
// only after checking the CPU; so is the plain-layout Q4_0 kernel, which also needs VBMI.
#include "compute/kernels_legacy.h"

namespace strata::compute::legacy {

void register_avx512(KernelTable& t) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512vnni")) register_avx512vnni(t);
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi")) register_avx512vbmi(t);
}

}  // namespace strata::compute::legacy
