// The tier above RAM: accelerator memory (VRAM). An interface only: no backend is built yet (a
// CUDA backend comes with its own issue), and nothing pretends to have one. The residency
// manager will promote units here from the pinned pool (RAM) when a device exists: the pool is
// where a unit's bytes land from SSD, and a device tier copies them on from there.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/weight_provider.h"

namespace strata::runtime {

class DeviceTier {
 public:
  virtual ~DeviceTier() = default;
  virtual std::string name() const = 0;
  virtual uint64_t capacity_bytes() const = 0;
  virtual uint64_t used_bytes() const = 0;
  // Copies a unit's bytes (in the pinned pool, so DMA-able) to the device; false when full.
  virtual bool upload(UnitId id, const std::byte* host, uint64_t bytes) = 0;
  virtual bool resident(UnitId id) const = 0;
  virtual void evict(UnitId id) = 0;
};

// The device tier for `kind` ("cuda", ...), or nullptr with `why_not` saying why: in this build
// there is no device backend, so it is always nullptr.
std::unique_ptr<DeviceTier> make_device_tier(const std::string& kind, std::string& why_not);

}  // namespace strata::runtime
