// Placeholder until the float kernel family lands; the family's own files replace this one.
#include "compute/quant.h"
namespace strata::compute {
void register_float_kernels(KernelTable&, Isa) {}
}
