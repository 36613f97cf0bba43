// Placeholder until the legacy kernel family lands; the family's own files replace this one.
#include "compute/quant.h"
namespace strata::compute {
void register_legacy_kernels(KernelTable&, Isa) {}
}
