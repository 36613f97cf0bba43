#include "runtime/pinned_pool.h"

#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "storage/error.h"

namespace strata::runtime {

RangeAllocator::RangeAllocator(uint64_t size, uint64_t align)
    : size_(size / align * align), align_(align), free_bytes_(size_) {
  assert(align > 0);
  if (size_ > 0) free_.emplace(0, size_);
}

std::optional<uint64_t> RangeAllocator::allocate(uint64_t bytes) {
  bytes = round_up(bytes == 0 ? 1 : bytes);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < bytes) continue;
    const uint64_t off = it->first, len = it->second;
    free_.erase(it);
    if (len > bytes) free_.emplace(off + bytes, len - bytes);
    free_bytes_ -= bytes;
    return off;
  }
  return std::nullopt;
}

void RangeAllocator::free(uint64_t offset, uint64_t bytes) {
  bytes = round_up(bytes == 0 ? 1 : bytes);
  assert(offset + bytes <= size_);
  auto next = free_.lower_bound(offset);
  assert(next == free_.end() || next->first >= offset + bytes);  // no double free
  uint64_t off = offset, len = bytes;
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    assert(prev->first + prev->second <= offset);
    if (prev->first + prev->second == offset) {
      off = prev->first;
      len += prev->second;
      free_.erase(prev);
    }
  }
  if (next != free_.end() && next->first == offset + bytes) {
    len += next->second;
    free_.erase(next);
  }
  free_.emplace(off, len);
  free_bytes_ += bytes;
}

uint64_t RangeAllocator::largest_free() const {
  uint64_t m = 0;
  for (const auto& [off, len] : free_) m = std::max(m, len);
  return m;
}

PinnedPool::PinnedPool(uint64_t bytes) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  size_ = (bytes + page - 1) / page * page;
  if (size_ == 0) return;
  // Huge pages where the pool spans one: the kernels stream megabytes of weights per unit, and
  // with 4 KiB pages every page is a TLB miss and a stop for the hardware prefetcher (measured:
  // decode of cached experts at half the speed of the same kernel on the huge-page resident
  // arena). The mapping is over-allocated by one huge page and trimmed so the base is 2 MiB
  // aligned; THP in "madvise" mode then backs it when mlock faults it in.
  const bool huge = size_ >= kHugePage;
  const uint64_t mapped = huge ? size_ + kHugePage - page : size_;
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("cannot map a {} byte weight pool: {}", size_, std::strerror(errno));
  auto* raw = static_cast<std::byte*>(p);
  base_ = raw;
  if (huge) {
    const uint64_t addr = reinterpret_cast<uint64_t>(raw);
    const uint64_t head = (kHugePage - addr % kHugePage) % kHugePage;
    if (head) ::munmap(raw, head);
    if (mapped - head > size_) ::munmap(raw + head + size_, mapped - head - size_);
    base_ = raw + head;
    if (::madvise(base_, size_, MADV_HUGEPAGE) != 0)
      spdlog::debug("madvise(MADV_HUGEPAGE) on the weight pool: {}; using small pages", std::strerror(errno));
  }
  // mlock faults every page in: the budget is committed up front, so a later shortage of memory
  // shows at start instead of as swapping in the middle of a run.
  if (::mlock(base_, size_) == 0) {
    locked_ = true;
  } else {
    static std::atomic<bool> warned{false};
    struct rlimit rl {};
    ::getrlimit(RLIMIT_MEMLOCK, &rl);
    if (!warned.exchange(true))
      spdlog::warn("weight pool of {} MiB is not mlock'ed ({}; RLIMIT_MEMLOCK is {} KiB): pages may be swapped",
                   size_ >> 20, std::strerror(errno), rl.rlim_cur == RLIM_INFINITY ? -1 : static_cast<long long>(rl.rlim_cur >> 10));
    // Touch the pages anyway so the budget is resident from the start, as with mlock.
    ::madvise(base_, size_, MADV_WILLNEED);
  }
}

PinnedPool::~PinnedPool() {
  if (!base_) return;
  if (locked_) ::munlock(base_, size_);
  ::munmap(base_, size_);
}

}  // namespace strata::runtime
