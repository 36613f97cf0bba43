// The read scheduler: decides which whole-unit loads ("jobs") go to the drives and when.
//
// A job is a fixed list of reads (file, offset, length, offset in the job's destination) made
// once, and is requested again each time its bytes are needed and absent. Requested jobs wait in
// three queues by priority: Now (a running step waits for it), Ahead (certain, later) and
// Speculative (predicted). pump() starts them in that order, a Now job whose owner reports a
// thread blocked on it (urgent) first of all, while:
//   - the bytes of jobs in flight stay under max_inflight_bytes (one job always may start),
//   - speculative jobs stay under their own speculative_inflight_bytes, so a misprediction never
//     holds up a certain read for long, and
//   - the owner admits the job: admit() gives a destination (room in the memory pool), or says to
//     wait (a certain job stops the pump until something is released) or to drop it (a guess is
//     not worth waiting for).
// Reads carry the job's priority down to the backend, whose per-drive queues (the device array)
// serve them in the same order.
//
// Thread-safety: not thread-safe; the owner calls every method under its own lock, including
// complete(), which its reaper calls with the completions it reaped from backend().
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/read_backend.h"

namespace strata::storage {

enum class Priority : uint8_t { Now = 0, Ahead = 1, Speculative = 2 };

struct ReadSchedulerOptions {
  uint64_t max_inflight_bytes = 128ull << 20;
  uint64_t speculative_inflight_bytes = 64ull << 20;
};

struct JobRead {
  uint32_t file = 0;    // backend file id
  uint64_t offset = 0;  // aligned
  uint64_t length = 0;  // aligned
  uint64_t at = 0;      // offset in the job's destination
};

// What the owner answers when a job is about to start.
struct Admission {
  enum Kind { Start, Wait, Drop } kind = Wait;
  std::byte* dst = nullptr;  // for Start: the job's destination
};

// A job's outcome: error is empty when every read landed; got[i] is the bytes read i returned
// (less than asked at end of file).
struct JobResult {
  uint32_t job = 0;
  std::string error;
  std::vector<uint64_t> got;
};

class ReadScheduler {
 public:
  using Admit = std::function<Admission(uint32_t job, Priority priority, bool urgent)>;
  using Urgent = std::function<bool(uint32_t job)>;

  ReadScheduler(std::unique_ptr<ReadBackend> backend, ReadSchedulerOptions opts, Admit admit, Urgent urgent);

  ReadBackend& backend() { return *backend_; }
  const ReadBackend& backend() const { return *backend_; }

  // Registers job `id` (ids are dense from 0) with its reads and its byte size (what counts
  // against the in-flight caps).
  void define(uint32_t id, std::vector<JobRead> reads, uint64_t bytes);

  // Queues the job at `priority`, or moves a queued job up. A job in flight is left alone.
  void request(uint32_t id, Priority priority);

  // Starts what it can, in priority order (see the header comment).
  void pump();
  // Folds one reaped completion in; returns the job's result when that was its last read.
  std::optional<JobResult> complete(const Completion& c);

  uint64_t inflight_bytes() const { return inflight_; }
  size_t queue_length(Priority p) const { return queues_[static_cast<int>(p)].size(); }

 private:
  enum class State : uint8_t { Idle, Queued, InFlight };
  struct Job {
    std::vector<JobRead> reads;
    uint64_t bytes = 0;
    State state = State::Idle;
    Priority priority = Priority::Now;
    bool speculative_flight = false;
    uint32_t pending = 0;
    std::string error;
    std::vector<uint64_t> got;
  };

  bool fits(const Job& j) const;
  void start(uint32_t id, Job& j, std::byte* dst);

  std::unique_ptr<ReadBackend> backend_;
  ReadSchedulerOptions opts_;
  Admit admit_;
  Urgent urgent_;
  std::vector<Job> jobs_;
  std::deque<uint32_t> queues_[3];
  uint64_t inflight_ = 0, spec_inflight_ = 0;
};

}  // namespace strata::storage
