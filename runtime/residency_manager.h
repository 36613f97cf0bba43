// The residency manager: owns the memory budget (the pinned pool and its slot allocator) and all
// of eviction. make_room() frees pool space by evicting the lowest-scored candidates
// (ResidencyPolicy, residency.h) in tiers, each used only when the one before is empty:
//   0. units nobody asked for;
//   1. units wanted later in this step (Ahead), only for a unit needed now;
//   2. units wanted now that nobody is blocked on yet, only for a unit a thread is blocked on
//      (this is what keeps a pool full of requested-but-not-yet-used units from deadlocking the
//      thread that must use them in its own order).
// Pinned, leased, loading and waited-on units are never candidates.
//
// Not thread-safe: the provider calls it under its lock.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "runtime/pinned_pool.h"
#include "runtime/residency.h"
#include "runtime/unit_table.h"

namespace strata::runtime {

class ResidencyManager {
 public:
  static constexpr uint64_t kSlotAlign = 4096;
  static uint64_t round_slot(uint64_t b) { return (b + kSlotAlign - 1) / kSlotAlign * kSlotAlign; }

  // `requeue(id)` is called for a wanted unit that was evicted (its load must be asked again).
  ResidencyManager(UnitTable& units, ResidencyParams params, std::function<void(UnitId)> requeue);

  // Maps the pool (the budget) and sets the layer count of the clock.
  void allocate_pool(uint64_t bytes, int n_layers);
  PinnedPool& pool() { return *pool_; }
  bool has_pool() const { return pool_ != nullptr; }
  uint64_t pool_bytes() const { return pool_ ? pool_->size() : 0; }
  bool pool_locked() const { return pool_ && pool_->locked(); }
  const RangeAllocator& slots() const { return *alloc_; }

  // The forward pass's position (WeightProvider::at_layer).
  void tick(int64_t step, int layer);
  int64_t now() const { return now_; }
  void on_access(UnitRecord& u) { policy_.on_access(u.usage, now_); }

  // A slot of `bytes` for a unit needed at `need` (urgent: a thread is blocked on it), evicting
  // as the tiers allow; nothing when they do not free enough. `bandwidth` (bytes/s, read
  // lazily) prices a reload.
  std::optional<uint64_t> make_room(uint64_t bytes, Need need, bool urgent, const std::function<double()>& bandwidth);

  // The unit's load landed / failed (its slot is given back).
  void loaded(UnitRecord& u);
  void load_failed(UnitRecord& u);

  uint64_t resident_bytes() const { return resident_; }
  uint64_t peak_resident_bytes() const { return peak_; }
  uint64_t evictions() const { return evictions_; }

 private:
  void evict(UnitRecord& u);

  UnitTable& units_;
  ResidencyPolicy policy_;
  std::function<void(UnitId)> requeue_;
  std::unique_ptr<PinnedPool> pool_;
  std::unique_ptr<RangeAllocator> alloc_;
  int64_t now_ = 0;
  int current_layer_ = -1;
  uint64_t resident_ = 0, peak_ = 0, evictions_ = 0;
};

}  // namespace strata::runtime
