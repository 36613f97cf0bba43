#include "storage/read_scheduler.h"

#include "storage/backend_common.h"
#include "storage/error.h"

namespace strata::storage {

namespace {
constexpr int kReadBits = 16;  // user_data = job << 16 | read index
}

ReadScheduler::ReadScheduler(std::unique_ptr<ReadBackend> backend, ReadSchedulerOptions opts, Admit admit, Urgent urgent)
    : backend_(std::move(backend)), opts_(opts), admit_(std::move(admit)), urgent_(std::move(urgent)) {}

void ReadScheduler::define(uint32_t id, std::vector<JobRead> reads, uint64_t bytes) {
  if (reads.size() >= (1u << kReadBits)) fail("read job {}: {} reads, more than the limit of {}", id, reads.size(), (1u << kReadBits) - 1);
  if (id >= jobs_.size()) jobs_.resize(id + 1);
  Job& j = jobs_[id];
  j.reads = std::move(reads);
  j.bytes = bytes;
}

void ReadScheduler::request(uint32_t id, Priority p) {
  Job& j = jobs_.at(id);
  if (j.state == State::Idle || (j.state == State::Queued && p < j.priority)) {
    j.state = State::Queued;
    j.priority = p;
    queues_[static_cast<int>(p)].push_back(id);  // an older entry at a lower priority goes stale
  }
}

bool ReadScheduler::fits(const Job& j) const {
  return inflight_ == 0 || inflight_ + j.bytes <= opts_.max_inflight_bytes;
}

void ReadScheduler::pump() {
  // A job a thread is blocked on goes first, whatever its place in the queue: threads use units
  // in their own order, which need not be the order they were requested in.
  for (uint32_t id : queues_[0]) {
    Job& j = jobs_[id];
    if (j.state != State::Queued || j.priority != Priority::Now || !urgent_(id)) continue;
    if (!fits(j)) break;
    const Admission a = admit_(id, Priority::Now, true);
    if (a.kind != Admission::Start) break;
    start(id, j, a.dst);  // its queue entry is now stale and skipped below
  }
  for (int qi = 0; qi < 3; ++qi) {
    const Priority p = static_cast<Priority>(qi);
    std::deque<uint32_t>& q = queues_[qi];
    while (!q.empty()) {
      const uint32_t id = q.front();
      Job& j = jobs_[id];
      if (j.state != State::Queued || j.priority != p) {  // stale: moved up or started
        q.pop_front();
        continue;
      }
      if (!fits(j)) return;
      if (p == Priority::Speculative && spec_inflight_ > 0 && spec_inflight_ + j.bytes > opts_.speculative_inflight_bytes)
        return;
      const Admission a = admit_(id, p, urgent_(id));
      if (a.kind == Admission::Wait) return;  // waits for a release
      q.pop_front();
      if (a.kind == Admission::Drop) {
        j.state = State::Idle;
        continue;
      }
      start(id, j, a.dst);
    }
    if (!q.empty()) return;  // lower priorities wait until this queue drains
  }
}

void ReadScheduler::start(uint32_t id, Job& j, std::byte* dst) {
  j.state = State::InFlight;
  j.pending = static_cast<uint32_t>(j.reads.size());
  j.error.clear();
  j.got.assign(j.reads.size(), 0);
  inflight_ += j.bytes;
  j.speculative_flight = j.priority == Priority::Speculative;
  if (j.speculative_flight) spec_inflight_ += j.bytes;
  std::vector<ReadRequest> reqs;
  reqs.reserve(j.reads.size());
  for (size_t i = 0; i < j.reads.size(); ++i) {
    const JobRead& r = j.reads[i];
    reqs.push_back({r.file, r.offset, r.length, dst + r.at, (uint64_t(id) << kReadBits) | i, static_cast<uint8_t>(j.priority)});
  }
  backend_->submit(reqs);
}

std::optional<JobResult> ReadScheduler::complete(const Completion& c) {
  const uint64_t id = c.user_data >> kReadBits;
  const size_t i = c.user_data & ((1u << kReadBits) - 1);
  if (id >= jobs_.size()) return std::nullopt;
  Job& j = jobs_[id];
  if (j.state != State::InFlight || i >= j.got.size()) return std::nullopt;
  j.got[i] = c.bytes;
  if (c.error != 0 && j.error.empty()) j.error = c.message.empty() ? detail::errno_text(c.error) : c.message;
  if (--j.pending > 0) return std::nullopt;
  inflight_ -= j.bytes;
  if (j.speculative_flight) spec_inflight_ -= j.bytes;
  j.speculative_flight = false;
  j.state = State::Idle;
  return JobResult{static_cast<uint32_t>(id), std::move(j.error), std::move(j.got)};
}

}  // namespace strata::storage
