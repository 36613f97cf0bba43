// How the model layer obtains weight bytes. The model registers "units" (a dense tensor, or one
// expert's slice of a 3-D expert tensor) by file range; later it acquires a unit's bytes for the
// duration of a job. A resident provider reads everything at load; the streaming runtime reads
// units on demand from SSD into the pinned pool. The model never knows which one it has.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
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

class WeightProvider {
 public:
  virtual ~WeightProvider() = default;
  // Register all units before the first acquire.
  virtual UnitId add_unit(UnitDesc desc) = 0;
  // Called once after registration (the resident provider reads everything here).
  virtual void finalize() = 0;
  // Hint: these units will be acquired soon. May start reads; never blocks.
  virtual void prefetch(const UnitId* ids, size_t n) { (void)ids; (void)n; }
  // Bytes of the unit, valid until the matching release(). May block until they are loaded.
  virtual const std::byte* acquire(UnitId id) = 0;
  virtual void release(UnitId id) = 0;
  virtual const UnitDesc& unit(UnitId id) const = 0;
  // Byte offset of range `range` of the unit inside the pointer acquire() returns.
  virtual size_t range_offset(UnitId id, size_t range) const = 0;
  virtual size_t unit_count() const = 0;
  // Bytes of weights currently held in memory by this provider.
  virtual uint64_t resident_bytes() const = 0;
};

// Holds every unit in RAM, read with plain reads at finalize().
std::unique_ptr<WeightProvider> make_resident_provider(std::vector<std::string> paths);

// RAII lease on a unit's bytes.
class UnitLease {
 public:
  UnitLease() = default;
  UnitLease(WeightProvider& p, UnitId id) : p_(&p), id_(id), data_(p.acquire(id)) {}
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
