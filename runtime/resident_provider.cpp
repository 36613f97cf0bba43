// Resident weights: every unit read into one RAM arena at finalize(), at the disk's speed. The
// baseline for "same answers" checks and for models that fit in memory.
//
// The arena mirrors the files: the block-aligned supersets of all ranges are merged into extents
// (a GGUF's tensors lie back to back, so a model is usually one extent per file), and each extent
// is read in large requests, many in flight (O_DIRECT where the filesystem allows), straight to
// its place in the arena: the same access pattern as the raw sequential read, and no copy. A
// unit's pointer is its lowest range; range_offset() gives the others' distance from it (the
// padding the interface allows: other units' bytes may lie in between). Units whose ranges
// overlap get private copies, so one unit's transform never shows through another.
#include <sys/mman.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <span>
#include <tuple>
#include <vector>

#include <spdlog/spdlog.h>

#include "runtime/weight_provider.h"
#include "storage/aligned_buffer.h"
#include "storage/error.h"
#include "storage/read_backend.h"

namespace strata::runtime {
namespace {

// A huge page. The arena is advised to use them (THP in "madvise" mode): a 2 GiB load then takes
// ~1k page faults instead of ~500k.
constexpr size_t kHugePage = size_t{2} << 20;
// Requests of one huge page, 64 in flight (128 MiB ahead). 1-4 MiB at depth 32-64 measured
// alike with tools/load_bench on a 2 GiB model; the disk's drift hides smaller differences.
constexpr uint64_t kRequestBytes = uint64_t{2} << 20;
constexpr unsigned kQueueDepth = 64;
// Progress is reported at most once per this many landed bytes, and once at the end.
constexpr uint64_t kProgressStep = uint64_t{4} << 20;
// The arena is faulted in this far ahead of the reads (see read_all).
constexpr uint64_t kPopulateStep = uint64_t{32} << 20;

struct Extent {
  uint32_t file = 0;      // index into paths_ (== backend file id)
  uint32_t group = 0;     // 0: shared; else a private copy, never merged with another range
  uint64_t begin = 0;     // aligned file offsets
  uint64_t end = 0;
  uint64_t data_end = 0;  // end of the last range in it (the aligned end may lie past EOF)
  uint64_t at = 0;        // arena offset of `begin`
  size_t first_request = 0;
};

struct Request {
  size_t extent = 0;
  uint64_t begin = 0, end = 0;  // file offsets
  uint64_t credit = 0;          // unit bytes that land with it (progress)
};

class ResidentProvider final : public WeightProvider {
 public:
  ResidentProvider(std::vector<std::string> paths, LoadProgress progress)
      : paths_(std::move(paths)), progress_(std::move(progress)) {}

  UnitId add_unit(UnitDesc desc) override {
    units_.push_back(std::move(desc));
    return static_cast<UnitId>(units_.size() - 1);
  }

  void finalize() override {
    storage::BackendOptions opts;
    opts.queue_depth = kQueueDepth;
    opts.chunk_bytes = kRequestBytes;
    opts.threads = 16;  // the pread fallback's workers
    // The device array reads placed (striped) models too, each drive with its own queue.
    std::unique_ptr<storage::ReadBackend> backend = storage::make_device_array("uring", opts);
    for (const std::string& p : paths_) backend->add_file(p);
    layout(backend->alignment());
    // The arena is not registered with the backend: pinning 2 GiB took longer here (1.3-1.9 s)
    // than the reads it speeds up.
    read_all(*backend);
  }

  // Transforms (the Q4_0 repack: about a fifth of a 2 GiB model's load when run one by one) are
  // collected and run together, in parallel, before the first acquire returns.
  void set_transform(UnitId id, std::function<void(std::byte*)> fn) override {
    if (id >= units_.size()) fail("set_transform: unit {} does not exist ({} units)", id, units_.size());
    std::lock_guard lk(transform_mu_);
    pending_.push_back({id, std::move(fn)});
    transforms_pending_.store(true, std::memory_order_release);
  }
  const std::byte* acquire(UnitId id) override {
    if (transforms_pending_.load(std::memory_order_acquire)) run_transforms();
    return unit_data(id);
  }
  void release(UnitId) override {}
  const UnitDesc& unit(UnitId id) const override { return units_.at(id); }
  size_t range_offset(UnitId id, size_t range) const override {
    if (range >= units_.at(id).ranges.size()) fail("weight unit {}: no range {}", units_[id].name, range);
    return static_cast<size_t>(range_at_[first_range_[id] + range] - base_[id]);
  }
  size_t unit_count() const override { return units_.size(); }
  uint64_t resident_bytes() const override { return bytes_; }
  ProviderStats stats() const override {
    ProviderStats st;
    st.io = "resident";
    st.resident_bytes = st.peak_resident_bytes = bytes_;
    st.bytes_read = bytes_read_;
    st.reads = requests_.size();
    std::lock_guard lk(transform_mu_);
    st.transform_s = transform_s_;  // wall time of the parallel batches
    st.transforms = transforms_;
    return st;
  }

 private:
  std::byte* unit_data(UnitId id) { return arena_.data() + base_.at(id); }
  void run_transforms();
  void layout(uint64_t align);
  void populate(uint64_t from, uint64_t to);
  void read_all(storage::ReadBackend& backend);
  [[noreturn]] void fail_short(const Request& r, uint64_t got) const;

  std::vector<std::string> paths_;
  LoadProgress progress_;
  std::vector<UnitDesc> units_;
  std::vector<size_t> first_range_;  // unit -> its first entry in range_at_
  std::vector<uint64_t> range_at_;   // arena offset of each range's first byte
  std::vector<uint64_t> base_;       // arena offset of each unit's pointer (its lowest range)
  std::vector<Extent> extents_;
  std::vector<Request> requests_;
  storage::AlignedBuffer arena_;
  uint64_t arena_bytes_ = 0;
  uint64_t bytes_ = 0, bytes_read_ = 0;

  struct PendingTransform {
    UnitId id;
    std::function<void(std::byte*)> fn;
  };
  mutable std::mutex transform_mu_;
  std::vector<PendingTransform> pending_;
  std::atomic<bool> transforms_pending_{false};
  double transform_s_ = 0;
  uint64_t transforms_ = 0;
};

void ResidentProvider::run_transforms() {
  std::lock_guard lk(transform_mu_);
  if (!transforms_pending_.load(std::memory_order_relaxed)) return;
  const auto t0 = std::chrono::steady_clock::now();
  // A unit given several transforms gets them in the order they were set, in one task.
  std::stable_sort(pending_.begin(), pending_.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::vector<size_t> starts;
  for (size_t i = 0; i < pending_.size(); ++i)
    if (i == 0 || pending_[i].id != pending_[i - 1].id) starts.push_back(i);
  starts.push_back(pending_.size());
  // Isolated: while it waits for its own tasks this thread must not pick up an unrelated one
  // (a forward pass's job) that would call acquire() and block on the lock it holds.
  tbb::this_task_arena::isolate([&] {
    tbb::parallel_for(size_t{0}, starts.size() - 1, [&](size_t g) {
      for (size_t i = starts[g]; i < starts[g + 1]; ++i) pending_[i].fn(unit_data(pending_[i].id));
    });
  });
  transform_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  transforms_ += pending_.size();
  pending_.clear();
  pending_.shrink_to_fit();
  transforms_pending_.store(false, std::memory_order_release);
}

// Merges every range's aligned superset into extents, places them in the arena, cuts them into
// requests, and records where each range and unit lands.
void ResidentProvider::layout(uint64_t align) {
  align = std::max<uint64_t>(align, 64);
  struct Piece {
    uint32_t file, unit, group;
    uint64_t offset, length;
  };
  std::vector<Piece> pieces;
  first_range_.resize(units_.size());
  for (size_t u = 0; u < units_.size(); ++u) {
    first_range_[u] = pieces.size();
    for (const FileRange& r : units_[u].ranges) {
      if (r.file >= paths_.size()) fail("weight unit {}: file index {} out of range", units_[u].name, r.file);
      pieces.push_back({r.file, static_cast<uint32_t>(u), 0, r.offset, r.length});
      bytes_ += r.length;
    }
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < pieces.size(); ++i)
    if (pieces[i].length > 0) order.push_back(i);
  auto sort_pieces = [&] {
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::tie(pieces[a].group, pieces[a].file, pieces[a].offset) <
             std::tie(pieces[b].group, pieces[b].file, pieces[b].offset);
    });
  };
  sort_pieces();
  // Runs of overlapping ranges (the same bytes registered twice): every unit in one gets its own
  // copy of its ranges.
  std::vector<bool> own_copy(units_.size(), false);
  bool any_own = false;
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    uint64_t reach = pieces[order[i]].offset + pieces[order[i]].length;
    while (j < order.size() && pieces[order[j]].file == pieces[order[i]].file && pieces[order[j]].offset < reach) {
      reach = std::max(reach, pieces[order[j]].offset + pieces[order[j]].length);
      ++j;
    }
    if (j - i > 1)
      for (size_t k = i; k < j; ++k) own_copy[pieces[order[k]].unit] = any_own = true;
    i = j;
  }
  if (any_own) {
    for (size_t i = 0; i < pieces.size(); ++i)
      if (own_copy[pieces[i].unit]) pieces[i].group = static_cast<uint32_t>(i + 1);
    sort_pieces();
  }

  std::vector<size_t> extent_of(pieces.size(), 0);
  uint64_t arena_bytes = 0;
  for (size_t i : order) {
    const Piece& p = pieces[i];
    const uint64_t begin = p.offset / align * align;
    const uint64_t end = (p.offset + p.length + align - 1) / align * align;
    Extent* x = extents_.empty() ? nullptr : &extents_.back();
    if (x && p.group == 0 && x->group == 0 && x->file == p.file && begin <= x->end) {
      arena_bytes += std::max(end, x->end) - x->end;
      x->end = std::max(end, x->end);
      x->data_end = std::max(x->data_end, p.offset + p.length);
    } else {
      extents_.push_back({p.file, p.group, begin, end, p.offset + p.length, arena_bytes, 0});
      arena_bytes += end - begin;
    }
    extent_of[i] = extents_.size() - 1;
  }
  for (size_t xi = 0; xi < extents_.size(); ++xi) {
    Extent& x = extents_[xi];
    x.first_request = requests_.size();
    for (uint64_t b = x.begin; b < x.end; b += kRequestBytes)
      requests_.push_back({xi, b, std::min(x.end, b + kRequestBytes), 0});
  }
  range_at_.assign(pieces.size(), 0);
  for (size_t i : order) {
    const Piece& p = pieces[i];
    const Extent& x = extents_[extent_of[i]];
    range_at_[i] = x.at + (p.offset - x.begin);
    for (uint64_t k = (p.offset - x.begin) / kRequestBytes; k <= (p.offset + p.length - 1 - x.begin) / kRequestBytes; ++k) {
      Request& r = requests_[x.first_request + k];
      r.credit += std::min(r.end, p.offset + p.length) - std::max(r.begin, p.offset);
    }
  }
  base_.assign(units_.size(), 0);
  for (size_t u = 0; u < units_.size(); ++u) {
    const size_t n = units_[u].ranges.size();
    uint64_t base = UINT64_MAX;
    for (size_t i = first_range_[u]; i < first_range_[u] + n; ++i)
      if (pieces[i].length > 0) base = std::min(base, range_at_[i]);
    if (base == UINT64_MAX) base = 0;  // nothing but empty ranges
    base_[u] = base;
    for (size_t i = first_range_[u]; i < first_range_[u] + n; ++i)
      if (pieces[i].length == 0) range_at_[i] = base;
  }

  // One allocation for everything, never written before the reads land in it (the kernel zeroes
  // each page on first touch already).
  arena_bytes_ = arena_bytes;
  const bool huge = arena_bytes >= kHugePage;
  arena_ = storage::AlignedBuffer(std::max<uint64_t>(arena_bytes, 1), huge ? kHugePage : std::max<uint64_t>(align, 4096));
  if (huge && ::madvise(arena_.data(), (arena_bytes + kHugePage - 1) / kHugePage * kHugePage, MADV_HUGEPAGE) != 0)
    spdlog::debug("madvise(MADV_HUGEPAGE) on the weight arena: {}; using small pages", std::strerror(errno));
}

// Faults in arena bytes [from, to) (`from` a multiple of kPopulateStep: no read is in flight
// there yet). Faulting fresh memory is the slowest part of a load (in a VM whose host backs guest
// memory only when touched, slower than the disk); left to the reads, it happens inside the
// submitting thread's read calls, between submissions. Done here, a step ahead of the reads, it
// overlaps with the transfers in flight.
void ResidentProvider::populate(uint64_t from, uint64_t to) {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14
#endif
  std::byte* base = arena_.data();
  const uint64_t page = 4096;
  from = from / page * page;
  if (to <= from) return;
  if (::madvise(base + from, to - from, MADV_POPULATE_WRITE) == 0) return;
  // Older kernels: one write per page does the same (the reads overwrite it).
  for (uint64_t at = from; at < to; at += page) *reinterpret_cast<volatile std::byte*>(base + at) = std::byte{0};
}

void ResidentProvider::read_all(storage::ReadBackend& backend) {
  std::vector<storage::ReadRequest> reqs;
  reqs.reserve(requests_.size());
  for (size_t i = 0; i < requests_.size(); ++i) {
    const Request& r = requests_[i];
    const Extent& x = extents_[r.extent];
    reqs.push_back({x.file, r.begin, r.end - r.begin, arena_.data() + x.at + (r.begin - x.begin), i});
  }
  auto arena_end = [&](size_t i) {
    const Extent& x = extents_[requests_[i].extent];
    return x.at + (requests_[i].end - x.begin);
  };
  uint64_t populated = 0, done = 0, reported = 0;
  size_t submitted = 0;
  std::vector<storage::Completion> cs;
  for (size_t landed = 0; landed < requests_.size();) {
    // A step of the arena is faulted in, then its reads go out (the backend keeps queue-depth
    // reads in flight and queues the rest); the next step is faulted in while they run.
    if (populated < arena_bytes_) {
      const uint64_t to = std::min(arena_bytes_, populated + kPopulateStep);
      populate(populated, to);
      populated = to;
      size_t last = submitted;
      while (last < requests_.size() && arena_end(last) <= populated) ++last;
      if (last > submitted) backend.submit(std::span(reqs).subspan(submitted, last - submitted));
      submitted = last;
    }
    cs.clear();
    backend.reap(cs, populated >= arena_bytes_, std::chrono::milliseconds(1000));
    for (const storage::Completion& c : cs) {
      if (c.error != 0) fail("reading weights: {}", c.message);
      const Request& r = requests_.at(c.user_data);
      const uint64_t needed = std::min(r.end, extents_[r.extent].data_end) - r.begin;
      if (c.bytes < needed) fail_short(r, c.bytes);
      bytes_read_ += c.bytes;
      done += r.credit;
      ++landed;
      if (progress_ && done - reported >= kProgressStep && done < bytes_) {
        progress_(done, bytes_);
        reported = done;
      }
    }
  }
  if (progress_) progress_(bytes_, bytes_);
}

void ResidentProvider::fail_short(const Request& r, uint64_t got) const {
  const Extent& x = extents_[r.extent];
  const uint64_t stop = r.begin + got;
  // Name a unit the missing bytes belong to.
  std::string who = "?";
  for (const UnitDesc& u : units_) {
    for (const FileRange& fr : u.ranges)
      if (fr.file == x.file && fr.length > 0 && fr.offset + fr.length > stop && fr.offset < r.end) {
        who = u.name;
        break;
      }
    if (who != "?") break;
  }
  fail("{}: file ends at offset {} but weight unit '{}' needs bytes up to offset {}; the file was truncated "
       "or changed while loading",
       paths_[x.file], stop, who, std::min(r.end, x.data_end));
}

}  // namespace

std::unique_ptr<WeightProvider> make_resident_provider(std::vector<std::string> paths, LoadProgress progress) {
  return std::make_unique<ResidentProvider>(std::move(paths), std::move(progress));
}

}  // namespace strata::runtime
