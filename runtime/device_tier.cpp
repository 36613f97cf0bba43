#include "runtime/device_tier.h"

namespace strata::runtime {

std::unique_ptr<DeviceTier> make_device_tier(const std::string& kind, std::string& why_not) {
  why_not = "no '" + kind + "' device backend is built into this strata (CPU only for now)";
  return nullptr;
}

}  // namespace strata::runtime
