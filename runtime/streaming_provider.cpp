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

#include "runtime/residency_manager.h"
#include "runtime/unit_table.h"
#include "storage/read_scheduler.h"
#include "storage/error.h"

namespace strata::runtime {
namespace {

using Clock = std::chrono::steady_clock;

std::string human(uint64_t b) {
  return b >= (1ull << 30) ? fmt::format("{:.2f} GiB", b / double(1ull << 30)) : fmt::format("{:.1f} MiB", b / double(1 << 20));
}

storage::Priority priority_of(Need n) { return static_cast<storage::Priority>(static_cast<uint8_t>(n)); }

class StreamingProvider final : public WeightProvider {
 public:
  StreamingProvider(std::vector<std::string> paths, StreamingOptions opts)
      : paths_(std::move(paths)),
        opts_(std::move(opts)),
        residency_(units_, opts_.residency, [this](UnitId id) { scheduler_->request(id, priority_of(units_[id].need)); }) {
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
    scheduler_.reset();  // its backend waits for reads still in the kernel: their buffers are in the pool
  }

  UnitId add_unit(UnitDesc desc) override { return units_.add(std::move(desc)); }
  uint64_t max_unit_bytes() const override { return max_unit_; }

  void finalize() override {
    std::unique_ptr<storage::ReadBackend> backend =
        storage::make_device_array(opts_.io, opts_.backend, opts_.wrap_backend);
    std::vector<uint32_t> file_ids;
    for (const auto& p : paths_) file_ids.push_back(backend->add_file(p));
    units_.layout(file_ids, backend->alignment());
    int max_layer = -1;
    uint64_t pinned = 0, largest = 0, everything = 0;
    const UnitRecord* largest_unit = nullptr;
    for (const UnitRecord& u : units_) {
      max_layer = std::max(max_layer, u.desc.layer);
      const uint64_t slot = ResidencyManager::round_slot(u.slot_bytes);
      everything += slot;
      if (u.pinned) {
        pinned += slot;
      } else if (u.slot_bytes > largest) {
        largest = u.slot_bytes;
        largest_unit = &u;
      }
    }
    pinned_bytes_ = pinned;
    // One unit computing while the next one loads: below this, reads cannot overlap compute.
    const uint64_t minimum = pinned + 2 * ResidencyManager::round_slot(largest);
    if (opts_.memory_budget < minimum)
      fail("memory budget {} is below the minimum {} for this model: {} for pinned units (norms, routers) "
           "+ 2 x {} for the largest streamed unit '{}' (one in use while the next loads)",
           human(opts_.memory_budget), human(minimum), human(pinned), human(ResidencyManager::round_slot(largest)),
           largest_unit ? largest_unit->desc.name : "-");
    // A budget above what every unit takes would only pin memory nothing ever uses (and mlock
    // it, which takes seconds per GiB): trim it. ProviderStats::requested_budget_bytes keeps
    // what was asked, so the tools can say so.
    requested_budget_ = opts_.memory_budget;
    opts_.memory_budget = std::min(opts_.memory_budget, std::max(everything, minimum));
    residency_.allocate_pool(opts_.memory_budget, max_layer + 1);
    backend->register_buffer(residency_.pool().base(), residency_.pool().size());

    // The in-flight caps are per drive: more drives keep more bytes in flight.
    const uint64_t drives = std::max<size_t>(backend->device_stats().size(), 1);
    storage::ReadSchedulerOptions so{opts_.max_inflight_bytes * drives, opts_.speculative_inflight_bytes * drives};
    scheduler_ = std::make_unique<storage::ReadScheduler>(
        std::move(backend), so, [this](uint32_t id, storage::Priority p, bool urgent) { return admit(id, p, urgent); },
        [this](uint32_t id) { return units_[id].waiters > 0; });
    for (UnitId id = 0; id < units_.size(); ++id) scheduler_->define(id, units_[id].reads, units_[id].slot_bytes);
    reaper_ = std::thread([this] { reap_loop(); });

    // Pinned units are loaded once, now, and never leave.
    std::vector<UnitId> pins;
    for (UnitId id = 0; id < units_.size(); ++id)
      if (units_[id].pinned) pins.push_back(id);
    prefetch(pins.data(), pins.size(), Need::Now);
    std::unique_lock lk(mu_);
    for (UnitId id : pins) {
      UnitRecord& u = units_[id];
      cv_.wait(lk, [&] { return u.state == UnitState::Resident || u.failed; });
      if (u.failed) fail("{}", u.error);
      u.wanted = false;
      u.counted = false;
    }
    finalized_ = true;
  }

  void prefetch(const UnitId* ids, size_t n, Need need) override {
    std::lock_guard lk(mu_);
    for (size_t i = 0; i < n; ++i) request(units_.at(ids[i]), ids[i], need);
    pump();
  }

  const std::byte* acquire(UnitId id) override {
    std::unique_lock lk(mu_);
    UnitRecord& u = units_.at(id);
    request(u, id, Need::Now);
    if (u.state != UnitState::Resident) {
      ++u.waiters;
      pump();
      wait_for(lk, [&] { return u.state == UnitState::Resident || u.failed; });
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
        const UnitRecord& u = units_[ids[i]];
        if (u.state == UnitState::Resident || u.failed) {
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
    UnitRecord& u = units_.at(id);
    if (u.leases > 0 && --u.leases == 0) pump();
  }

  void at_layer(int layer) override {
    std::lock_guard lk(mu_);
    if (layer < 0) ++step_;
    residency_.tick(step_, layer);
  }

  const UnitDesc& unit(UnitId id) const override { return units_.at(id).desc; }
  size_t range_offset(UnitId id, size_t range) const override { return units_.at(id).range_off.at(range); }
  size_t unit_count() const override { return units_.size(); }
  uint64_t resident_bytes() const override {
    std::lock_guard lk(mu_);
    return residency_.resident_bytes();
  }

  ProviderStats stats() const override {
    std::lock_guard lk(mu_);
    ProviderStats s = stats_;
    s.io = scheduler_ ? scheduler_->backend().name() : opts_.io;
    s.budget_bytes = residency_.has_pool() ? residency_.pool_bytes() : opts_.memory_budget;
    s.requested_budget_bytes = requested_budget_ ? requested_budget_ : opts_.memory_budget;
    s.pinned_bytes = pinned_bytes_;
    s.resident_bytes = residency_.resident_bytes();
    s.peak_resident_bytes = residency_.peak_resident_bytes();
    s.evictions = residency_.evictions();
    s.locked = residency_.pool_locked();
    if (scheduler_) {
      s.disk_busy_s = scheduler_->backend().stats().busy_s;
      s.devices = scheduler_->backend().device_stats();
    }
    return s;
  }

  void set_transform(UnitId id, std::function<void(std::byte*)> fn) override {
    std::lock_guard lk(mu_);
    UnitRecord& u = units_.at(id);
    u.transform = std::move(fn);
    u.transformed = false;
  }

 private:
  // Under mu_. Starts what the scheduler can start and wakes the reaper for it.
  void pump() {
    scheduler_->pump();
    if (scheduler_->inflight_bytes() > 0) reaper_cv_.notify_one();
  }

  // Under mu_. Marks the unit needed and queues its read if it is not in memory.
  void request(UnitRecord& u, UnitId id, Need need) {
    if (need != Need::Speculative) u.wanted = true;
    if (need == Need::Now && !u.counted && finalized_ && !u.pinned) {
      u.counted = true;
      const bool hit = u.state == UnitState::Resident;
      if (u.desc.kind == UnitKind::Expert) (hit ? stats_.expert_hits : stats_.expert_misses)++;
      else (hit ? stats_.dense_hits : stats_.dense_misses)++;
    }
    if (u.state == UnitState::Absent || (u.state == UnitState::Queued && need < u.need)) {
      if (u.state == UnitState::Absent) u.failed = false;
      u.state = UnitState::Queued;
      u.need = need;
      scheduler_->request(id, priority_of(need));
    } else if (need < u.need) {
      u.need = need;  // in flight or in memory already: only its protection moves up
    }
  }

  // Under mu_ (the scheduler asks from pump()). A slot for the unit, or wait / drop.
  storage::Admission admit(uint32_t id, storage::Priority p, bool urgent) {
    UnitRecord& u = units_[id];
    const Need need = static_cast<Need>(static_cast<uint8_t>(p));
    const std::optional<uint64_t> off = residency_.make_room(u.slot_bytes, need, urgent, [this] {
      const double busy = scheduler_->backend().stats().busy_s;
      return stats_.bytes_read > (64u << 20) && busy > 0 ? stats_.bytes_read / busy : 1.5e9;
    });
    if (!off) {
      if (need != Need::Speculative) return {storage::Admission::Wait};
      u.state = UnitState::Absent;  // a guess is not worth waiting for
      return {storage::Admission::Drop};
    }
    u.off = *off;
    u.transformed = false;
    u.state = UnitState::Loading;
    u.load_step = step_;
    u.error.clear();
    if (need == Need::Speculative) {
      u.speculative = true;
      ++stats_.prefetch_issued;
    }
    return {storage::Admission::Start, residency_.pool().base() + *off};
  }

  template <class Pred>
  void wait_for(std::unique_lock<std::mutex>& lk, Pred pred) {
    const auto t0 = Clock::now();
    while (!cv_.wait_for(lk, std::chrono::seconds(5), pred)) {
      uint64_t wanted_now = 0, wanted_ahead = 0, leased = 0, loading = 0, other = 0;
      for (const UnitRecord& u : units_) {
        if (u.state == UnitState::Loading) loading += u.slot_bytes;
        else if (u.state != UnitState::Resident || u.pinned) continue;
        else if (u.leases) leased += u.slot_bytes;
        else if (u.wanted && u.need == Need::Now) wanted_now += u.slot_bytes;
        else if (u.wanted) wanted_ahead += u.slot_bytes;
        else other += u.slot_bytes;
      }
      spdlog::warn("weight reads stalled for {:.0f} s: pool {} free (largest {}), leased {}, loading {}, "
                   "wanted now {}, wanted ahead {}, other {}; queued {}/{}/{}; in flight {}",
                   std::chrono::duration<double>(Clock::now() - t0).count(), human(residency_.slots().free_bytes()),
                   human(residency_.slots().largest_free()), human(leased), human(loading), human(wanted_now),
                   human(wanted_ahead), human(other), scheduler_->queue_length(storage::Priority::Now),
                   scheduler_->queue_length(storage::Priority::Ahead),
                   scheduler_->queue_length(storage::Priority::Speculative), human(scheduler_->inflight_bytes()));
    }
    stats_.wait_s += std::chrono::duration<double>(Clock::now() - t0).count();
  }

  // Under mu_ (held by lk), once the unit is Resident or failed. The first lease after a load
  // runs the unit's transform outside the lock; the lease keeps the unit from being evicted
  // meanwhile, and a second acquirer waits until it is done.
  const std::byte* lease(std::unique_lock<std::mutex>& lk, UnitRecord& u) {
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
    residency_.on_access(u);
    std::byte* data = residency_.pool().base() + u.off;
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

  void reap_loop() {
    std::vector<storage::Completion> done;
    while (!stop_) {
      {
        // Nothing in flight: sleep until a read is submitted (reap would return at once).
        std::unique_lock lk(mu_);
        reaper_cv_.wait_for(lk, std::chrono::milliseconds(100),
                            [&] { return stop_ || scheduler_->inflight_bytes() > 0; });
        if (stop_) break;
        if (scheduler_->inflight_bytes() == 0) continue;
      }
      done.clear();
      try {
        scheduler_->backend().reap(done, true, std::chrono::milliseconds(20));
      } catch (const std::exception& e) {
        spdlog::error("read backend: {}", e.what());
        continue;
      }
      if (done.empty()) continue;
      std::lock_guard lk(mu_);
      for (const storage::Completion& c : done) {
        stats_.bytes_read += c.bytes;
        ++stats_.reads;
        if (auto r = scheduler_->complete(c)) job_done(*r);
      }
      pump();
      cv_.notify_all();
    }
  }

  // Under mu_: the unit's last read landed.
  void job_done(const storage::JobResult& r) {
    UnitRecord& u = units_[r.job];
    if (!r.error.empty()) {
      u.error = fmt::format("reading weight unit '{}': {}", u.desc.name, r.error);
    } else {
      for (size_t i = 0; i < r.got.size(); ++i) {
        if (r.got[i] >= u.needed[i]) continue;
        u.error = fmt::format("{}: file ends before weight unit '{}' does (needed {} bytes at offset {}, got {}); "
                              "the file was truncated or changed while in use",
                              paths_.at(u.desc.ranges.at(i).file), u.desc.name, u.needed[i], u.reads[i].offset, r.got[i]);
        break;
      }
    }
    if (!u.error.empty()) {
      residency_.load_failed(u);
      if (u.wanted || u.counted) {
        u.failed = true;
        spdlog::debug("{}", u.error);
      }
      return;
    }
    residency_.loaded(u);
  }

  std::vector<std::string> paths_;
  StreamingOptions opts_;
  uint64_t max_unit_ = 0;
  UnitTable units_;
  ResidencyManager residency_;                        // owns the pool: outlives the reads in flight
  std::unique_ptr<storage::ReadScheduler> scheduler_;  // owns the backend
  std::thread reaper_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable reaper_cv_;
  uint64_t pinned_bytes_ = 0;
  uint64_t requested_budget_ = 0;  // the budget asked for, before trimming to need
  int64_t step_ = 0;
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
