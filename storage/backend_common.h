// Pieces shared by the concrete read backends. Internal to storage/: callers only ever see
// ReadBackend through make_read_backend.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "storage/read_backend.h"

namespace strata::storage::detail {

using Clock = std::chrono::steady_clock;

// A file opened by a backend; owns the descriptor.
struct OpenedFile {
  std::string path;
  int fd = -1;
  bool direct = false;      // O_DIRECT in effect (dropped where the filesystem rejects it)
  size_t alignment = 4096;  // what O_DIRECT needs for offsets, lengths and buffers
  int fixed_index = -1;     // slot in io_uring's registered-file table, -1 if not registered

  OpenedFile() = default;
  OpenedFile(const OpenedFile&) = delete;
  OpenedFile& operator=(const OpenedFile&) = delete;
  ~OpenedFile();
};

// Opens read-only, with O_DIRECT when asked; falls back to buffered reads (one warning line) only
// when the filesystem rejects O_DIRECT with EINVAL. Throws strata::Error naming the path.
std::unique_ptr<OpenedFile> open_for_read(const std::string& path, bool want_direct);

// Alignment O_DIRECT needs on this file: statx STATX_DIOALIGN where the kernel reports it, else
// the logical block size of the underlying device (BLKSSZGET, or sysfs when the device node
// cannot be opened), else 4096.
size_t direct_io_alignment(int fd);

// Current size by fstat; throws strata::Error naming the path.
uint64_t current_size(const OpenedFile& f);

// "Input/output error" for -EIO.
std::string errno_text(int negative_errno);

// Histogram bucket for a latency: i such that us < 2^i (the last bucket takes the rest).
unsigned latency_bucket(uint64_t microseconds);

// Counters plus busy-time and latency bookkeeping. Not thread-safe: used under the backend's lock.
class StatsRecorder {
 public:
  // A kernel-level read went in flight / came back (busy time is wall time with >= 1 in flight).
  void read_started(Clock::time_point now);
  void read_finished(Clock::time_point now);
  void request_finished(const Completion& c, Clock::duration latency);
  IoStats snapshot(Clock::time_point now) const;

  IoStats counters;  // chunks, retries and fixed_chunks are bumped directly by the backends

 private:
  unsigned reads_in_flight_ = 0;
  Clock::time_point busy_since_{};
};

// Factories of the concrete backends (make_read_backend picks one). make_uring_backend returns
// nullptr and says why when io_uring cannot be set up.
std::unique_ptr<ReadBackend> make_uring_backend(const BackendOptions& opts, std::string& why_not);
std::unique_ptr<ReadBackend> make_pread_backend(const BackendOptions& opts);
std::unique_ptr<ReadBackend> make_mmap_backend(const BackendOptions& opts);

}  // namespace strata::storage::detail
