// The streaming weight provider: units are read from SSD on demand into the pinned pool (the
// memory budget) through a read backend, kept while the residency policy says they are worth
// their space, and evicted when something more valuable needs the room.
//
// Reads go out in priority order: units a running step waits for (Need::Now), then the next
// layer's dense units (Need::Ahead), then predicted experts (Need::Speculative, only within
// their own in-flight budget, so they never hold up the others for long). Bytes submitted and
// not yet landed are capped by `max_inflight_bytes`. A completion thread reaps the backend and
// wakes whoever waits for that unit, so each job starts the moment its own bytes land.
//
// Each file range is read as its block-aligned superset straight into the unit's slot, and the
// unit's data pointer points into it: the bytes are never copied a second time.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/residency.h"
#include "runtime/weight_provider.h"
#include "storage/read_backend.h"

namespace strata::runtime {

struct StreamingOptions {
  std::string io = "uring";
  uint64_t memory_budget = 0;  // bytes of the pinned pool
  storage::BackendOptions backend;
  uint64_t max_inflight_bytes = 128ull << 20;
  uint64_t speculative_inflight_bytes = 64ull << 20;
  ResidencyParams residency;
  // Largest unit; bigger matrices and experts are split into row blocks. 0: the budget / 8,
  // clamped to 64 KiB .. 256 MiB.
  uint64_t max_unit_bytes = 0;
  // Wraps the backend once it is made (tests put the fault-injecting backend here).
  std::function<std::unique_ptr<storage::ReadBackend>(std::unique_ptr<storage::ReadBackend>)> wrap_backend;
};

std::unique_ptr<WeightProvider> make_streaming_provider(std::vector<std::string> paths, StreamingOptions opts);

// The one factory the tools use: a budget of 0 means "everything resident" (plain reads into
// RAM); otherwise the streaming provider over the chosen backend.
std::unique_ptr<WeightProvider> make_weight_provider(std::vector<std::string> paths, StreamingOptions opts);

}  // namespace strata::runtime
