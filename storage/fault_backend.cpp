#include "storage/fault_backend.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "storage/error.h"

namespace strata::storage {
namespace {

using Clock = std::chrono::steady_clock;

class FaultBackend final : public ReadBackend {
 public:
  FaultBackend(std::unique_ptr<ReadBackend> inner, FaultPlan plan)
      : inner_(std::move(inner)), plan_(std::move(plan)) {
    if (plan_.short_reads == FaultPlan::ShortReads::resubmitted &&
        !inner_->set_short_read_injection(std::max(1u, plan_.short_every)))
      fail("fault plan: the {} backend cannot inject short kernel reads", inner_->name());
  }

  const char* name() const override { return "fault"; }
  size_t alignment() const override { return inner_->alignment(); }

  uint32_t add_file(const std::string& path) override {
    uint32_t id = inner_->add_file(path);
    std::lock_guard lk(mu_);
    if (paths_.size() <= id) paths_.resize(id + 1);
    paths_[id] = path;
    return id;
  }

  uint64_t file_size(uint32_t file) const override { return inner_->file_size(file); }
  void register_buffer(void* base, size_t len) override { inner_->register_buffer(base, len); }

  void submit(std::span<const ReadRequest> reqs) override {
    std::vector<ReadRequest> renamed(reqs.begin(), reqs.end());
    {
      std::lock_guard lk(mu_);
      for (auto& r : renamed) {
        Tracked t;
        t.req = r;
        t.ordinal = next_ordinal_++;
        t.fault = rule_for(t.req, t.ordinal);
        t.shorten = plan_.short_reads == FaultPlan::ShortReads::reported &&
                    every(plan_.short_every, t.ordinal);
        t.delayed = plan_.delay.count() > 0 && every(plan_.delay_every, t.ordinal);
        // The inner backend sees our own ids, so completions map back even if user_data repeats.
        r.user_data = t.ordinal;
        tracked_.emplace(t.ordinal, std::move(t));
      }
    }
    inner_->submit(renamed);
  }

  size_t reap(std::vector<Completion>& out, bool wait, std::chrono::milliseconds timeout) override {
    const auto deadline = Clock::now() + timeout;
    std::vector<Completion> got;
    for (;;) {
      inner_->reap(got, false);
      Clock::time_point next_due = Clock::time_point::max();
      size_t n = 0;
      {
        std::lock_guard lk(mu_);
        absorb(got);
        const auto now = Clock::now();
        for (auto it = held_.begin(); it != held_.end();) {
          if (it->due <= now) {
            tracked_.erase(it->ordinal);
            out.push_back(std::move(it->completion));
            it = held_.erase(it);
            ++n;
          } else {
            next_due = std::min(next_due, it->due);
            ++it;
          }
        }
        if (n > 0 || !wait || tracked_.empty()) return n;
      }
      const auto now = Clock::now();
      if (now >= deadline) return 0;
      const auto until = std::min(deadline, next_due);
      if (inner_->in_flight() > 0) {
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now);
        inner_->reap(got, true, std::max(ms, std::chrono::milliseconds(1)));
      } else {
        std::this_thread::sleep_until(until);
      }
    }
  }

  void cancel(uint64_t user_data) override {
    std::vector<uint64_t> ids;
    {
      std::lock_guard lk(mu_);
      for (const auto& [id, t] : tracked_)
        if (t.req.user_data == user_data && !t.finished) ids.push_back(id);
    }
    for (uint64_t id : ids) inner_->cancel(id);
  }

  size_t in_flight() const override {
    std::lock_guard lk(mu_);
    return tracked_.size();
  }

  IoStats stats() const override {
    IoStats s = inner_->stats();
    std::lock_guard lk(mu_);
    s.errors += injected_errors_;
    return s;
  }

  bool set_short_read_injection(unsigned every_nth) override {
    return inner_->set_short_read_injection(every_nth);
  }

 private:
  struct Tracked {
    ReadRequest req;
    uint64_t ordinal = 0;
    std::string fault;  // why this request fails; empty if it does not
    bool shorten = false;
    bool delayed = false;
    bool finished = false;  // completed by the inner backend, maybe held back
  };
  struct Held {
    Clock::time_point due;
    uint64_t ordinal;
    Completion completion;
  };

  static bool every(unsigned n, uint64_t ordinal) { return n <= 1 || (ordinal + 1) % n == 0; }

  std::string rule_for(const ReadRequest& r, uint64_t ordinal) const {
    if (std::find(plan_.fail_requests.begin(), plan_.fail_requests.end(), ordinal) !=
        plan_.fail_requests.end())
      return fmt::format("request #{}", ordinal);
    if (std::find(plan_.fail_files.begin(), plan_.fail_files.end(), r.file) != plan_.fail_files.end())
      return fmt::format("file {}", r.file);
    for (const auto& b : plan_.fail_ranges)
      if (b.file == r.file && r.offset < b.end && b.begin < r.offset + r.length)
        return fmt::format("byte range [{}, {})", b.begin, b.end);
    return {};
  }

  // Applies the plan to completions from the inner backend and queues them (mu_ held).
  void absorb(std::vector<Completion>& got) {
    const auto now = Clock::now();
    for (auto& c : got) {
      auto it = tracked_.find(c.user_data);
      if (it == tracked_.end()) continue;  // not ours: cannot happen with a sane inner backend
      Tracked& t = it->second;
      t.finished = true;
      c.user_data = t.req.user_data;
      if (!t.fault.empty()) {
        const std::string& path = t.req.file < paths_.size() ? paths_[t.req.file] : "?";
        c.error = -plan_.fail_errno;
        c.bytes = 0;
        c.message = fmt::format("{}: {} reading {} bytes at offset {} (injected by fault plan: {})",
                                path, std::strerror(plan_.fail_errno), t.req.length, t.req.offset,
                                t.fault);
        injected_errors_++;
      } else if (t.shorten && c.error == 0) {
        const uint64_t a = std::max<size_t>(1, inner_->alignment());
        c.bytes = std::min(c.bytes, t.req.length / 2 / a * a);
      }
      held_.push_back({t.delayed ? now + plan_.delay : now, t.ordinal, std::move(c)});
    }
    got.clear();
  }

  std::unique_ptr<ReadBackend> inner_;
  const FaultPlan plan_;
  mutable std::mutex mu_;
  std::vector<std::string> paths_;
  std::unordered_map<uint64_t, Tracked> tracked_;  // by ordinal, until handed to the caller
  std::deque<Held> held_;
  uint64_t next_ordinal_ = 0;
  uint64_t injected_errors_ = 0;
};

}  // namespace

std::unique_ptr<ReadBackend> make_fault_backend(std::unique_ptr<ReadBackend> inner, FaultPlan plan) {
  if (!inner) fail("fault plan: no inner backend to wrap");
  return std::make_unique<FaultBackend>(std::move(inner), std::move(plan));
}

}  // namespace strata::storage
