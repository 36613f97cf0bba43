#include "runtime/streaming_provider.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "runtime/pinned_pool.h"
#include "storage/error.h"

namespace strata::runtime {
namespace {

using Clock = std::chrono::steady_clock;

struct Span {
  uint32_t file = 0;
  uint64_t begin = 0;   // aligned file offset
  uint64_t length = 0;  // aligned length
  uint64_t at = 0;      // where it lands in the slot
  uint64_t needed = 0;  // bytes from `begin` that must exist (the range's end)
};

enum class State : uint8_t { Absent, Queued, Loading, Resident };

struct Unit {
  UnitDesc desc;
  std::vector<Span> spans;
  std::vector<size_t> range_off;  // range i's offset inside the slot
  uint64_t slot_bytes = 0;
  bool pinned = false;
  State state = State::Absent;
  Need need = Need::Speculative;  // priority of its queue entry / load
  bool wanted = false;       // requested Now/Ahead and not yet acquired: protected from eviction
  bool counted = false;      // hit or miss already counted for the pending request
  bool speculative = false;  // loaded by a speculative prefetch and not yet acquired
  bool spec_flight = false;  // its read counts against the speculative in-flight budget
  bool failed = false;
  std::string error;
  uint64_t off = 0;
  uint32_t leases = 0;
  uint32_t pending = 0;      // reads outstanding
  uint32_t waiters = 0;      // threads blocked in acquire/acquire_any on it
  std::function<void(std::byte*)> transform;  // applied after each load, by the first lease
  bool transformed = false;
  bool transforming = false;
  UnitUsage usage;
  // Steps (at_layer(-1) ticks) of its last load and last lease: a unit leased in the step that
  // loaded it was not in memory when that step began (ProviderStats::step_new_bytes).
  int64_t load_step = -1, used_step = -1;
  uint64_t read_bytes = 0;  // what one load reads (its aligned spans)
};

class StreamingProvider final : public WeightProvider {
 public:
  StreamingProvider(std::vector<std::string> paths, StreamingOptions opts)
      : paths_(std::move(paths)), opts_(std::move(opts)), policy_(opts_.residency, 1) {
    // Large matrices are registered in row blocks of at most an eighth of the budget, so the
    // minimum budget does not grow with the largest tensor.
    max_unit_ = opts_.max_unit_bytes ? opts_.max_unit_bytes
                                     : std::clamp<uint64_t>(opts_.memory_budget / 8, 64ull << 10, 256ull << 20);
  }

  ~StreamingProvider() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    reaper_cv_.notify_all();
    if (reaper_.joinable()) reaper_.join();
    backend_.reset();  // waits for reads still in the kernel: their buffers are in pool_
  }

  UnitId add_unit(UnitDesc desc) override {
    Unit u;
    u.desc = std::move(desc);
    units_.push_back(std::move(u));
    return static_cast<UnitId>(units_.size() - 1);
  }

  uint64_t max_unit_bytes() const override { return max_unit_; }

  void finalize() override {
    std::unique_ptr<storage::ReadBackend> b = storage::make_read_backend(opts_.io, opts_.backend);
    if (opts_.wrap_backend) b = opts_.wrap_backend(std::move(b));
    backend_ = std::move(b);
    for (const auto& p : paths_) file_ids_.push_back(backend_->add_file(p));
    const uint64_t align = std::max<uint64_t>(backend_->alignment(), 1);
    int max_layer = -1;
    uint64_t pinned = 0, largest = 0, everything = 0;
    const Unit* largest_unit = nullptr;
    for (Unit& u : units_) {
      uint64_t at = 0;
      for (const FileRange& r : u.desc.ranges) {
        if (r.file >= file_ids_.size()) fail("weight unit {}: file index {} out of range", u.desc.name, r.file);
        Span s;
        s.file = file_ids_[r.file];
        s.begin = r.offset / align * align;
        const uint64_t end = (r.offset + r.length + align - 1) / align * align;
        s.length = end - s.begin;
        s.at = at;
        s.needed = r.offset + r.length - s.begin;
        u.range_off.push_back(at + (r.offset - s.begin));
        u.spans.push_back(s);
        u.read_bytes += s.length;
        at += s.length;
      }
      u.slot_bytes = std::max<uint64_t>(at, 1);
      u.pinned = u.desc.kind == UnitKind::Pinned;
      max_layer = std::max(max_layer, u.desc.layer);
      everything += round_pool(u.slot_bytes);
      if (u.pinned) {
        pinned += round_pool(u.slot_bytes);
      } else if (u.slot_bytes > largest) {
        largest = u.slot_bytes;
        largest_unit = &u;
      }
    }
    n_layers_ = max_layer + 1;
    policy_ = ResidencyPolicy(opts_.residency, n_layers_);
    pinned_bytes_ = pinned;
    // One unit computing while the next one loads: below this, reads cannot overlap compute.
    const uint64_t minimum = pinned + 2 * round_pool(largest);
    if (opts_.memory_budget < minimum)
      fail("memory budget {} is below the minimum {} for this model: {} for pinned units (norms, routers) "
           "+ 2 x {} for the largest streamed unit '{}' (one in use while the next loads)",
           human(opts_.memory_budget), human(minimum), human(pinned), human(round_pool(largest)),
           largest_unit ? largest_unit->desc.name : "-");
    // A budget above what every unit takes would only pin memory nothing ever uses (and mlock
    // it, which takes seconds per GiB): trim it. ProviderStats::requested_budget_bytes keeps
    // what was asked, so the tools can say so.
    requested_budget_ = opts_.memory_budget;
    opts_.memory_budget = std::min(opts_.memory_budget, std::max(everything, minimum));
    pool_ = std::make_unique<PinnedPool>(opts_.memory_budget);
    alloc_ = std::make_unique<RangeAllocator>(pool_->size(), kPoolAlign);
    backend_->register_buffer(pool_->base(), pool_->size());
    reaper_ = std::thread([this] { reap_loop(); });

    // Pinned units are loaded once, now, and never leave.
    std::vector<UnitId> pins;
    for (UnitId id = 0; id < units_.size(); ++id)
      if (units_[id].pinned) pins.push_back(id);
    prefetch(pins.data(), pins.size(), Need::Now);
    std::unique_lock lk(mu_);
    for (UnitId id : pins) {
      Unit& u = units_[id];
      cv_.wait(lk, [&] { return u.state == State::Resident || u.failed; });
      if (u.failed) fail("{}", u.error);
      u.wanted = false;
      u.counted = false;
    }
    finalized_ = true;
  }

  void prefetch(const UnitId* ids, size_t n, Need need) override {
    std::lock_guard lk(mu_);
    for (size_t i = 0; i < n; ++i) request(ids[i], need);
    pump();
  }

  const std::byte* acquire(UnitId id) override {
    std::unique_lock lk(mu_);
    Unit& u = units_.at(id);
    request(u, id, Need::Now);
    if (u.state != State::Resident) {
      ++u.waiters;
      pump();
      wait_for(lk, [&] { return u.state == State::Resident || u.failed; });
      --u.waiters;
    }
    return lease(lk, u);
  }

  size_t acquire_any(const UnitId* ids, size_t n, const std::byte** data) override {
    std::unique_lock lk(mu_);
    for (size_t i = 0; i < n; ++i) {
      request(units_.at(ids[i]), ids[i], Need::Now);
      ++units_[ids[i]].waiters;
    }
    pump();
    size_t found = n;
    auto ready = [&] {
      for (size_t i = 0; i < n; ++i) {
        const Unit& u = units_[ids[i]];
        if (u.state == State::Resident || u.failed) {
          found = i;
          return true;
        }
      }
      return false;
    };
    if (!ready()) wait_for(lk, ready);
    for (size_t i = 0; i < n; ++i) --units_[ids[i]].waiters;
    *data = lease(lk, units_[ids[found]]);
    return found;
  }

  void release(UnitId id) override {
    std::lock_guard lk(mu_);
    Unit& u = units_.at(id);
    if (u.leases > 0 && --u.leases == 0) pump();
  }

  void at_layer(int layer) override {
    std::lock_guard lk(mu_);
    if (layer < 0) ++step_;
    current_layer_ = layer;
    now_ = policy_.clock(step_, layer);
  }

  const UnitDesc& unit(UnitId id) const override { return units_.at(id).desc; }
  size_t range_offset(UnitId id, size_t range) const override { return units_.at(id).range_off.at(range); }
  size_t unit_count() const override { return units_.size(); }
  uint64_t resident_bytes() const override {
    std::lock_guard lk(mu_);
    return resident_;
  }

  ProviderStats stats() const override {
    std::lock_guard lk(mu_);
    ProviderStats s = stats_;
    s.io = backend_ ? backend_->name() : opts_.io;
    s.budget_bytes = pool_ ? pool_->size() : opts_.memory_budget;
    s.requested_budget_bytes = requested_budget_ ? requested_budget_ : opts_.memory_budget;
    s.pinned_bytes = pinned_bytes_;
    s.resident_bytes = resident_;
    s.peak_resident_bytes = peak_resident_;
    s.locked = pool_ && pool_->locked();
    if (backend_) s.disk_busy_s = backend_->stats().busy_s;
    return s;
  }

 private:
  static constexpr uint64_t kPoolAlign = 4096;
  static uint64_t round_pool(uint64_t b) { return (b + kPoolAlign - 1) / kPoolAlign * kPoolAlign; }
  static std::string human(uint64_t b) {
    return b >= (1ull << 30) ? fmt::format("{:.2f} GiB", b / double(1ull << 30)) : fmt::format("{:.1f} MiB", b / double(1 << 20));
  }

  void request(UnitId id, Need need) { request(units_.at(id), id, need); }

  // Under mu_. Marks the unit needed and queues its read if it is not in memory.
  void request(Unit& u, UnitId id, Need need) {
    if (need != Need::Speculative) u.wanted = true;
    if (need == Need::Now && !u.counted && finalized_ && !u.pinned) {
      u.counted = true;
      const bool hit = u.state == State::Resident;
      if (u.desc.kind == UnitKind::Expert) (hit ? stats_.expert_hits : stats_.expert_misses)++;
      else (hit ? stats_.dense_hits : stats_.dense_misses)++;
    }
    if (u.state == State::Absent || (u.state == State::Queued && need < u.need)) {
      if (u.state == State::Absent) u.failed = false;
      u.state = State::Queued;
      u.need = need;
      queue(need).push_back(id);
    } else if (need < u.need) {
      u.need = need;  // in flight or in memory already: only its protection moves up
    }
  }

  std::deque<UnitId>& queue(Need n) { return queues_[static_cast<int>(n)]; }

  template <class Pred>
  void wait_for(std::unique_lock<std::mutex>& lk, Pred pred) {
    const auto t0 = Clock::now();
    while (!cv_.wait_for(lk, std::chrono::seconds(5), pred)) {
      uint64_t wanted_now = 0, wanted_ahead = 0, leased = 0, loading = 0, other = 0;
      for (const Unit& u : units_) {
        if (u.state == State::Loading) loading += u.slot_bytes;
        else if (u.state != State::Resident || u.pinned) continue;
        else if (u.leases) leased += u.slot_bytes;
        else if (u.wanted && u.need == Need::Now) wanted_now += u.slot_bytes;
        else if (u.wanted) wanted_ahead += u.slot_bytes;
        else other += u.slot_bytes;
      }
      spdlog::warn("weight reads stalled for {:.0f} s: pool {} free (largest {}), leased {}, loading {}, "
                   "wanted now {}, wanted ahead {}, other {}; queued {}/{}/{}; in flight {}",
                   std::chrono::duration<double>(Clock::now() - t0).count(), human(alloc_->free_bytes()),
                   human(alloc_->largest_free()), human(leased), human(loading), human(wanted_now), human(wanted_ahead),
                   human(other), queues_[0].size(), queues_[1].size(), queues_[2].size(), human(inflight_));
    }
    stats_.wait_s += std::chrono::duration<double>(Clock::now() - t0).count();
  }

  // Under mu_ (held by lk), once the unit is Resident or failed. The first lease after a load
  // runs the unit's transform outside the lock; the lease keeps the unit from being evicted
  // meanwhile, and a second acquirer waits until it is done.
  const std::byte* lease(std::unique_lock<std::mutex>& lk, Unit& u) {
    u.counted = false;
    if (u.failed) {
      u.failed = false;
      u.wanted = false;
      fail("{}", u.error);
    }
    ++u.leases;
    u.wanted = false;
    if (u.used_step != step_) {
      u.used_step = step_;
      if (u.load_step == step_ && !u.pinned) stats_.step_new_bytes += u.read_bytes;
    }
    if (u.speculative) {
      u.speculative = false;
      ++stats_.prefetch_used;
    }
    policy_.on_access(u.usage, now_);
    std::byte* data = pool_->base() + u.off;
    if (u.transform && !u.transformed) {
      if (u.transforming) {
        cv_.wait(lk, [&] { return !u.transforming; });
      } else {
        u.transforming = true;
        lk.unlock();
        const auto t0 = Clock::now();
        u.transform(data);
        const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
        lk.lock();
        stats_.transform_s += dt;
        ++stats_.transforms;
        u.transforming = false;
        u.transformed = true;
        cv_.notify_all();
      }
    }
    return data;
  }

 public:
  void set_transform(UnitId id, std::function<void(std::byte*)> fn) override {
    std::lock_guard lk(mu_);
    Unit& u = units_.at(id);
    u.transform = std::move(fn);
    u.transformed = false;
  }

 private:

  // Under mu_. Starts queued reads in priority order while the in-flight cap and the pool allow.
  void pump() {
    if (!alloc_) return;
    // A unit a thread is blocked on goes first, whatever its place in the queue: the threads
    // use units in their own order, which need not be the order they were requested in.
    for (UnitId id : queues_[0]) {
      Unit& u = units_[id];
      if (u.waiters == 0 || u.state != State::Queued || u.need != Need::Now) continue;
      if (inflight_ > 0 && inflight_ + u.slot_bytes > opts_.max_inflight_bytes) break;
      const std::optional<uint64_t> off = make_room(u.slot_bytes, Need::Now, true);
      if (!off) break;
      start_load(u, id, *off);  // its queue entry is now stale and skipped below
    }
    for (int qi = 0; qi < 3; ++qi) {
      const Need need = static_cast<Need>(qi);
      std::deque<UnitId>& q = queues_[qi];
      while (!q.empty()) {
        Unit& u = units_[q.front()];
        if (u.state != State::Queued || u.need != need) {  // stale entry: moved up or cancelled
          q.pop_front();
          continue;
        }
        if (inflight_ > 0 && inflight_ + u.slot_bytes > opts_.max_inflight_bytes) return;
        if (need == Need::Speculative && spec_inflight_ > 0 &&
            spec_inflight_ + u.slot_bytes > opts_.speculative_inflight_bytes)
          return;
        const std::optional<uint64_t> off = make_room(u.slot_bytes, need, u.waiters > 0);
        if (!off) {
          if (need != Need::Speculative) return;  // waits for a release
          u.state = State::Absent;                // a guess is not worth waiting for
          q.pop_front();
          continue;
        }
        const UnitId id = q.front();
        q.pop_front();
        start_load(u, id, *off);
      }
      if (!q.empty()) return;  // lower priorities wait until this queue drains
    }
  }

  // Under mu_. Frees pool space by evicting the lowest-scored candidates until `bytes` fit.
  // Tiers, each used only when the one before is empty: units nobody asked for; units wanted
  // later in this step (Ahead; only for what is needed now); units wanted now that nobody is
  // blocked on yet (only for a unit somebody is blocked on: this is what keeps a full pool of
  // requested-but-not-yet-used units from deadlocking the thread that must use them in order).
  std::optional<uint64_t> make_room(uint64_t bytes, Need need, bool urgent) {
    double bw = 0;  // measured read bandwidth, asked of the backend only when evicting
    for (;;) {
      if (auto off = alloc_->allocate(bytes)) return off;
      if (bw == 0) {
        const double busy = backend_->stats().busy_s;
        bw = stats_.bytes_read > (64u << 20) && busy > 0 ? stats_.bytes_read / busy : 1.5e9;
      }
      Unit* victim[3] = {nullptr, nullptr, nullptr};
      double best[3] = {0, 0, 0};
      for (Unit& u : units_) {
        if (u.state != State::Resident || u.pinned || u.leases > 0 || u.waiters > 0) continue;
        const int tier = !u.wanted ? 0 : u.need != Need::Now ? 1 : 2;
        if (tier >= 1 && need != Need::Now) continue;
        if (tier == 2 && !urgent) continue;
        int d = policy_.distance(u.desc.layer, current_layer_);
        if (d == 0 && (u.usage.last_clock >= now_ || u.desc.kind == UnitKind::Expert)) d = policy_.period();
        const double s = policy_.keep_score(u.usage, u.slot_bytes, d, now_, bw);
        if (!victim[tier] || s < best[tier]) {
          victim[tier] = &u;
          best[tier] = s;
        }
      }
      Unit* v = victim[0] ? victim[0] : victim[1] ? victim[1] : victim[2];
      if (!v) return std::nullopt;
      evict(*v);
    }
  }

  void evict(Unit& u) {
    alloc_->free(u.off, u.slot_bytes);
    resident_ -= u.slot_bytes;
    u.state = u.wanted ? State::Queued : State::Absent;
    if (u.wanted) queue(u.need).push_back(static_cast<UnitId>(&u - units_.data()));
    u.speculative = false;
    ++stats_.evictions;
  }

  void start_load(Unit& u, UnitId id, uint64_t off) {
    u.off = off;
    u.transformed = false;
    u.state = State::Loading;
    u.load_step = step_;
    u.pending = static_cast<uint32_t>(u.spans.size());
    u.error.clear();
    inflight_ += u.slot_bytes;
    if (u.need == Need::Speculative) {
      spec_inflight_ += u.slot_bytes;
      u.spec_flight = true;
      u.speculative = true;
      ++stats_.prefetch_issued;
    }
    std::vector<storage::ReadRequest> reqs;
    for (size_t i = 0; i < u.spans.size(); ++i) {
      const Span& s = u.spans[i];
      reqs.push_back({s.file, s.begin, s.length, pool_->base() + off + s.at, (uint64_t(id) << 8) | i});
    }
    backend_->submit(reqs);
    reaper_cv_.notify_one();
  }

  void reap_loop() {
    std::vector<storage::Completion> done;
    while (!stop_) {
      {
        // Nothing in flight: sleep until a read is submitted (reap would return at once).
        std::unique_lock lk(mu_);
        reaper_cv_.wait_for(lk, std::chrono::milliseconds(100), [&] { return stop_ || inflight_ > 0; });
        if (stop_) break;
        if (inflight_ == 0) continue;
      }
      done.clear();
      try {
        backend_->reap(done, true, std::chrono::milliseconds(20));
      } catch (const std::exception& e) {
        spdlog::error("read backend: {}", e.what());
        continue;
      }
      if (done.empty()) continue;
      std::lock_guard lk(mu_);
      for (const storage::Completion& c : done) complete(c);
      pump();
      cv_.notify_all();
    }
  }

  // Under mu_.
  void complete(const storage::Completion& c) {
    const UnitId id = static_cast<UnitId>(c.user_data >> 8);
    const size_t si = c.user_data & 0xff;
    if (id >= units_.size()) return;
    Unit& u = units_[id];
    const Span& s = u.spans.at(si);
    stats_.bytes_read += c.bytes;
    ++stats_.reads;
    if (c.error != 0 && u.error.empty()) {
      u.error = fmt::format("reading weight unit '{}': {}", u.desc.name, c.message);
    } else if (c.error == 0 && c.bytes < s.needed && u.error.empty()) {
      u.error = fmt::format("{}: file ends before weight unit '{}' does (needed {} bytes at offset {}, got {}); "
                            "the file was truncated or changed while in use",
                            paths_.at(u.desc.ranges.at(si).file), u.desc.name, s.needed, s.begin, c.bytes);
    }
    if (--u.pending > 0) return;
    inflight_ -= u.slot_bytes;
    if (u.spec_flight) spec_inflight_ -= u.slot_bytes;
    u.spec_flight = false;
    if (!u.error.empty()) {
      alloc_->free(u.off, u.slot_bytes);
      u.state = State::Absent;
      u.speculative = false;
      if (u.wanted || u.counted) {
        u.failed = true;
        spdlog::debug("{}", u.error);
      }
      return;
    }
    u.state = State::Resident;
    resident_ += u.slot_bytes;
    peak_resident_ = std::max(peak_resident_, resident_);
  }

  std::vector<std::string> paths_;
  StreamingOptions opts_;
  ResidencyPolicy policy_;
  uint64_t max_unit_ = 0;
  std::vector<Unit> units_;
  std::unique_ptr<PinnedPool> pool_;  // declared before backend_: outlives in-flight reads
  std::unique_ptr<RangeAllocator> alloc_;
  std::unique_ptr<storage::ReadBackend> backend_;
  std::vector<uint32_t> file_ids_;
  std::thread reaper_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable reaper_cv_;
  std::deque<UnitId> queues_[3];
  uint64_t inflight_ = 0, spec_inflight_ = 0;
  uint64_t resident_ = 0, peak_resident_ = 0, pinned_bytes_ = 0;
  uint64_t requested_budget_ = 0;  // the budget asked for, before trimming to need
  int n_layers_ = 0;
  int64_t step_ = 0, now_ = 0;
  int current_layer_ = -1;
  bool finalized_ = false;
  ProviderStats stats_;
};

}  // namespace

std::unique_ptr<WeightProvider> make_streaming_provider(std::vector<std::string> paths, StreamingOptions opts) {
  if (opts.memory_budget == 0) fail("the streaming provider needs a memory budget (--memory-budget)");
  return std::make_unique<StreamingProvider>(std::move(paths), std::move(opts));
}

std::unique_ptr<WeightProvider> make_weight_provider(std::vector<std::string> paths, StreamingOptions opts) {
  if (opts.memory_budget == 0) return make_resident_provider(std::move(paths));
  return make_streaming_provider(std::move(paths), std::move(opts));
}

}  // namespace strata::runtime
