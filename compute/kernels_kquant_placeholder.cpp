// Placeholder until the kquant kernel family lands; the family's own files replace this one.
#include "compute/quant.h"
namespace strata::compute {
void register_kquant_kernels(KernelTable&, Isa) {}
}
