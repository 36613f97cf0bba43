#include "compute/kernels_legacy.h"
namespace strata::compute::legacy {
void register_avx512(KernelTable&) {}
}
