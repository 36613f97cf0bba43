// The pinned pool: the memory budget for weights. One anonymous mapping (2 MiB aligned and
// advised to use transparent huge pages when it spans one), mlock'ed
// where RLIMIT_MEMLOCK allows (one warning when it does not), registered with the read backend
// so io_uring reads land in it without pinning pages per request. Every streamed weight byte
// lives here; a first-fit allocator with coalescing carves it into unit slots.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

namespace strata::runtime {

// Offsets and sizes are multiples of `align`. Not thread-safe (the provider's lock covers it).
class RangeAllocator {
 public:
  RangeAllocator(uint64_t size, uint64_t align);
  // First fit; nothing when no free range is large enough.
  std::optional<uint64_t> allocate(uint64_t bytes);
  void free(uint64_t offset, uint64_t bytes);
  uint64_t free_bytes() const { return free_bytes_; }
  uint64_t largest_free() const;
  uint64_t size() const { return size_; }
  uint64_t round_up(uint64_t bytes) const { return (bytes + align_ - 1) / align_ * align_; }

 private:
  uint64_t size_, align_, free_bytes_;
  std::map<uint64_t, uint64_t> free_;  // offset -> length, never adjacent (coalesced)
};

class PinnedPool {
 public:
  // Maps `bytes` (rounded up to pages). Throws strata::Error when the mapping fails.
  explicit PinnedPool(uint64_t bytes);
  ~PinnedPool();
  PinnedPool(const PinnedPool&) = delete;
  PinnedPool& operator=(const PinnedPool&) = delete;

  std::byte* base() const { return base_; }
  uint64_t size() const { return size_; }
  bool locked() const { return locked_; }

 private:
  static constexpr uint64_t kHugePage = 2ull << 20;
  std::byte* base_ = nullptr;
  uint64_t size_ = 0;
  bool locked_ = false;
};

}  // namespace strata::runtime
