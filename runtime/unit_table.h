// The streaming provider's unit state table: for every registered unit, where its bytes are on
// disk (block-aligned reads), where they sit in the pool when loaded, and its state in the
// load/lease cycle. The residency manager (eviction) and the provider (requests, leases) both
// work on these records; the read scheduler (storage/) knows a unit only as a job id.
//
//   Absent --request--> Queued --admitted: slot allocated--> Loading --reads landed--> Resident
//     ^                                                         |                        |
//     +----------------------- read failed --------------------+------- evicted --------+
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/residency.h"
#include "runtime/weight_provider.h"
#include "storage/read_scheduler.h"

namespace strata::runtime {

enum class UnitState : uint8_t { Absent, Queued, Loading, Resident };

struct UnitRecord {
  UnitDesc desc;
  std::vector<storage::JobRead> reads;  // each range's block-aligned superset
  std::vector<uint64_t> needed;   // bytes of read i that must exist (up to the range's end)
  std::vector<size_t> range_off;  // range i's offset inside the slot
  uint64_t slot_bytes = 0;
  uint64_t read_bytes = 0;        // what one load reads
  bool pinned = false;
  UnitState state = UnitState::Absent;
  Need need = Need::Speculative;  // priority of its queue entry / load
  bool wanted = false;       // requested Now/Ahead and not yet acquired: protected from eviction
  bool counted = false;      // hit or miss already counted for the pending request
  bool speculative = false;  // loaded by a speculative prefetch and not yet acquired
  bool failed = false;
  std::string error;
  uint64_t off = 0;          // slot offset in the pool
  uint32_t leases = 0;
  uint32_t waiters = 0;      // threads blocked in acquire/acquire_any on it
  std::function<void(std::byte*)> transform;  // applied after each load, by the first lease
  bool transformed = false;
  bool transforming = false;
  UnitUsage usage;
  // Steps (at_layer(-1) ticks) of its last load and last lease: a unit leased in the step that
  // loaded it was not in memory when that step began (ProviderStats::step_new_bytes).
  int64_t load_step = -1, used_step = -1;
};

class UnitTable {
 public:
  UnitId add(UnitDesc desc) {
    UnitRecord u;
    u.desc = std::move(desc);
    units_.push_back(std::move(u));
    return static_cast<UnitId>(units_.size() - 1);
  }

  // Lays out every unit's reads for a backend with this alignment (`file_ids` maps the
  // provider's file index to the backend's id): each range becomes its aligned superset, read
  // straight into the slot, so the bytes are never copied a second time.
  void layout(const std::vector<uint32_t>& file_ids, uint64_t align);

  UnitRecord& operator[](UnitId id) { return units_[id]; }
  const UnitRecord& operator[](UnitId id) const { return units_[id]; }
  UnitRecord& at(UnitId id) { return units_.at(id); }
  const UnitRecord& at(UnitId id) const { return units_.at(id); }
  UnitId id_of(const UnitRecord& u) const { return static_cast<UnitId>(&u - units_.data()); }
  size_t size() const { return units_.size(); }
  auto begin() { return units_.begin(); }
  auto end() { return units_.end(); }
  auto begin() const { return units_.begin(); }
  auto end() const { return units_.end(); }

 private:
  std::vector<UnitRecord> units_;
};

}  // namespace strata::runtime
