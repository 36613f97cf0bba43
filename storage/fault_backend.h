// A ReadBackend wrapper that injects faults, for testing callers (and the backends' own error
// paths): failed requests, short reads, late completions. Requests still go to the inner backend,
// so buffers stay lent for as long as a real read would hold them; the fault is applied to the
// completion.
#pragma once
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "storage/read_backend.h"

namespace strata::storage {

struct FaultPlan {
  // Requests are numbered 0, 1, 2, ... in submission order (across submit calls).
  std::vector<uint64_t> fail_requests;  // these complete with -fail_errno
  struct ByteRange {
    uint32_t file = 0;
    uint64_t begin = 0;
    uint64_t end = 0;  // exclusive
  };
  std::vector<ByteRange> fail_ranges;   // every request overlapping one of these fails
  std::vector<uint32_t> fail_files;     // every request on one of these files fails
  int fail_errno = EIO;

  enum class ShortReads {
    none,
    // The completion reports half the bytes asked (rounded down to the alignment), as if the
    // device had stopped early: exercises the caller's handling of short counts.
    reported,
    // The inner backend issues its kernel reads for part of their length, so its own
    // resubmission path runs; the caller sees full, correct results. Not for "mmap".
    resubmitted,
  };
  ShortReads short_reads = ShortReads::none;
  unsigned short_every = 1;  // every Nth request (reported) or kernel read (resubmitted)

  std::chrono::milliseconds delay{0};  // completions reach the caller this much later
  unsigned delay_every = 1;            // every Nth request is delayed
};

// Wraps `inner`. Throws strata::Error when the plan asks for something the inner backend cannot
// do (resubmitted short reads on mmap). Injected errors carry a message naming the file, the
// offset and the rule that fired.
std::unique_ptr<ReadBackend> make_fault_backend(std::unique_ptr<ReadBackend> inner, FaultPlan plan);

}  // namespace strata::storage
