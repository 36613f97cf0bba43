// <immintrin.h> for the AVX-512 kernels. Some of GCC 12's AVX-512 intrinsics start from a
// deliberately undefined vector (_mm512_undefined_*), and once inlined its -Wmaybe-uninitialized
// reports that at the header's own lines: a false positive inside the compiler's header. The
// pragmas cover the header's text only (GCC matches diagnostics to source locations), so our
// code keeps the warnings. Include this before anything else that includes <immintrin.h>.
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
