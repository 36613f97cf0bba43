// How the model layer obtains weight bytes. The model registers "units" (a dense tensor, or one
// expert's slice of a 3-D expert tensor) by file range; later it acquires a unit's bytes for the
// duration of a job. A resident provider reads everything at load; the streaming runtime reads
// units on demand from SSD into the pinned pool. The model never knows which one it has.
#pragma once
#include "storage/read_backend.h"
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <cstdint>
#include <string>
#include <vector>

namespace strata::runtime {

using UnitId = uint32_t;

struct FileRange {
  uint32_t file = 0;     // index into the provider's file list
  uint64_t offset = 0;   // absolute byte offset
  uint64_t length = 0;
};

// Usage hints the residency policy may use (always-needed small tensors get pinned).
enum class UnitKind : uint8_t { Dense, Expert, Pinned };

struct UnitDesc {
  std::string name;      // "blk.3.attn_q.weight", "blk.3.ffn_up_exps.weight[5]"
  // One or more file ranges (an expert unit holds its gate, up and down slices). Where range i
  // lies inside the acquired bytes is range_offset(id, i): providers may pad for alignment.
  std::vector<FileRange> ranges;
  UnitKind kind = UnitKind::Dense;
  int layer = -1;        // -1 for non-layer tensors (embeddings, output)
  int expert = -1;       // expert index for expert units
  uint64_t bytes() const {
    uint64_t n = 0;
    for (const auto& r : ranges) n += r.length;
    return n;
  }
};

// How sure the caller is that a unit will be used, which decides the order reads go out in.
enum class Need : uint8_t {
  Now,          // this step acquires it (a router chose the expert): read before anything else
  Ahead,        // certain but later (the next layer's dense tensors)
  Speculative,  // predicted (the next layer's experts): read only in the prefetch budget
};

// Counters a provider keeps; what `strata run` and `strata bench` summarise. A hit is an
// acquire that found the unit's bytes already in memory (cached, or landed from a prefetch in
// time); a miss had to wait for its read.
struct ProviderStats {
  std::string io;                 // backend name ("resident" for the in-RAM provider)
  uint64_t budget_bytes = 0;      // the pinned pool (0: no budget)
  uint64_t requested_budget_bytes = 0;  // the budget asked for (more than budget_bytes when trimmed to need)
  uint64_t pinned_bytes = 0;      // units that never leave memory
  uint64_t resident_bytes = 0;    // weight bytes in memory now
  uint64_t peak_resident_bytes = 0;
  bool locked = false;            // the pool is mlock'ed
  uint64_t bytes_read = 0, reads = 0;
  // Summed over steps: the read bytes of the distinct units a step used that were not in
  // memory when it began. bytes_read above it is waste (mispredictions, a unit read twice in
  // one step); a batch's step should read each needed unit once, so the two stay close.
  uint64_t step_new_bytes = 0;
  uint64_t dense_hits = 0, dense_misses = 0, expert_hits = 0, expert_misses = 0;
  uint64_t prefetch_issued = 0;   // speculative loads started
  uint64_t prefetch_used = 0;     // ... whose unit was acquired before it was evicted
  uint64_t evictions = 0;
  double disk_busy_s = 0;         // wall time with at least one read in flight
  double wait_s = 0;              // time acquire() callers spent waiting for reads
  double transform_s = 0;         // time spent rewriting loaded units (repacking for a kernel)
  uint64_t transforms = 0;        // ... and how many times
  std::vector<storage::DeviceStats> devices;  // per drive: bytes, busy time, latency
};

class WeightProvider {
 public:
  virtual ~WeightProvider() = default;
  // Register all units before the first acquire.
  virtual UnitId add_unit(UnitDesc desc) = 0;
  // Called once after registration (the resident provider reads everything here).
  virtual void finalize() = 0;
  // Hint: these units will be acquired soon. May start reads; never blocks.
  virtual void prefetch(const UnitId* ids, size_t n, Need need = Need::Now) { (void)ids; (void)n; (void)need; }
  // Bytes of the unit, valid until the matching release(). May block until they are loaded.
  virtual const std::byte* acquire(UnitId id) = 0;
  // Acquires whichever of `ids` is in memory first (blocking until one is) and returns its index
  // in `ids`; the caller releases it. Lets a caller start each job the moment its bytes land.
  virtual size_t acquire_any(const UnitId* ids, size_t n, const std::byte** data) {
    (void)n;
    *data = acquire(ids[0]);
    return 0;
  }
  virtual void release(UnitId id) = 0;
  // The forward pass has reached `layer` (-1: embeddings, a new step; n_layer: the output). The
  // residency policy measures recency and distance to next use on this clock.
  virtual void at_layer(int layer) { (void)layer; }
  // Rewrites the unit's bytes in memory after every load of it, before any acquire returns them
  // (the model repacks weights into a faster kernel's layout). Call after finalize(); `fn` must
  // give the same bytes every time it runs on the same input.
  virtual void set_transform(UnitId id, std::function<void(std::byte* data)> fn) = 0;
  // Largest unit the provider accepts; bigger matrices are registered as row blocks.
  virtual uint64_t max_unit_bytes() const { return UINT64_MAX; }
  virtual ProviderStats stats() const { return {}; }
  virtual const UnitDesc& unit(UnitId id) const = 0;
  // Byte offset of range `range` of the unit inside the pointer acquire() returns.
  virtual size_t range_offset(UnitId id, size_t range) const = 0;
  virtual size_t unit_count() const = 0;
  // Bytes of weights currently held in memory by this provider.
  virtual uint64_t resident_bytes() const = 0;
};

// Bytes landed so far and the total, while a provider reads weights at finalize().
using LoadProgress = std::function<void(uint64_t done, uint64_t total)>;

// Holds every unit in RAM, read at finalize(); `progress` (may be empty) follows the reads.
std::unique_ptr<WeightProvider> make_resident_provider(std::vector<std::string> paths, LoadProgress progress = {});

// RAII lease on a unit's bytes.
class UnitLease {
 public:
  UnitLease() = default;
  UnitLease(WeightProvider& p, UnitId id) : p_(&p), id_(id), data_(p.acquire(id)) {}
  // Adopts a unit the caller already acquired (acquire_any).
  UnitLease(WeightProvider& p, UnitId id, const std::byte* acquired) : p_(&p), id_(id), data_(acquired) {}
  ~UnitLease() { if (p_) p_->release(id_); }
  UnitLease(UnitLease&& o) noexcept : p_(o.p_), id_(o.id_), data_(o.data_) { o.p_ = nullptr; }
  UnitLease& operator=(UnitLease&& o) noexcept {
    if (this != &o) { if (p_) p_->release(id_); p_ = o.p_; id_ = o.id_; data_ = o.data_; o.p_ = nullptr; }
    return *this;
  }
  UnitLease(const UnitLease&) = delete;
  UnitLease& operator=(const UnitLease&) = delete;
  const std::byte* data() const { return data_; }
  // Start of the unit's range i (a dense unit has only range 0).
  const std::byte* range(size_t i) const { return data_ + p_->range_offset(id_, i); }

 private:
  WeightProvider* p_ = nullptr;
  UnitId id_ = 0;
  const std::byte* data_ = nullptr;
};

}  // namespace strata::runtime
