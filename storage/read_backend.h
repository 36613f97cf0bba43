// The read-backend interface: asynchronous, aligned reads of (file, offset, length) into
// caller-owned buffers. The backend never owns the buffers: a buffer handed to submit() belongs
// to the kernel/backend until its completion is reaped, then returns to the caller.
//
// Backends: "uring" (default: liburing, O_DIRECT, registered files and buffers, chunked reads,
// short-read/-EAGAIN resubmission), "pread" (thread pool, O_DIRECT where the filesystem allows;
// the automatic fallback when io_uring cannot be set up) and "mmap" (page-cache baseline, for
// comparison only). Chosen at run time by make_read_backend; nothing else names a concrete one.
//
// Thread-safety: every method may be called from any thread; each backend serializes them with
// its own lock. A reap(wait=true) sleeping for completions does not block submit() or cancel()
// from another thread (so one thread may submit while another reaps). Each request completes
// exactly once. Destroying a backend waits for reads already in the kernel to land (their
// buffers stay lent until the destructor returns); completions not yet reaped are dropped.
//
// Setting STRATA_URING_DISABLE=1 in the environment makes io_uring setup fail on purpose (to test
// the pread fallback).
#pragma once
#include <chrono>
#include <functional>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace strata::storage {

struct ReadRequest {
  uint32_t file = 0;       // id from add_file
  uint64_t offset = 0;     // multiple of alignment()
  uint64_t length = 0;     // multiple of alignment() (reads past EOF return fewer bytes)
  void* dst = nullptr;     // aligned to alignment(); owned by the caller, lent until completion
  uint64_t user_data = 0;  // returned in the completion
  // 0 = needed now, 1 = ahead, 2 = speculative. The device array serves each drive's queue in
  // this order; single-file backends ignore it.
  uint8_t priority = 0;
};

struct Completion {
  uint64_t user_data = 0;
  int32_t error = 0;   // 0, or a negative errno (-EIO, -ECANCELED, ...)
  uint64_t bytes = 0;  // bytes read (less than asked only at end of file)
  std::string message; // for errors: "<path>: <what happened> at offset O"
};

// Latency histogram: bucket i counts requests that took < 2^i microseconds (last: the rest).
struct IoStats {
  uint64_t bytes = 0;
  uint64_t ops = 0;        // completed requests
  uint64_t chunks = 0;     // kernel-level reads issued (after splitting)
  uint64_t retries = 0;    // short reads / EAGAIN resubmitted
  uint64_t errors = 0;     // requests that completed with an error other than -ECANCELED
  uint64_t fixed_chunks = 0;  // chunks read into a registered buffer (io_uring read_fixed)
  double busy_s = 0;       // wall time with at least one read in flight
  uint64_t latency_us_hist[24] = {};
};

// One drive's share of the reads (ReadBackend::device_stats).
struct DeviceStats {
  std::string device;  // "loop3", "nvme0n1p1", or "MAJ:MIN" when sysfs does not name it
  std::vector<std::string> paths;  // the files (parts) read from it
  IoStats io;
};

struct BackendOptions {
  unsigned queue_depth = 64;       // reads in flight at once
  size_t chunk_bytes = 1 << 20;    // large requests are split into chunks of this size
  bool sqpoll = false;             // io_uring kernel submission thread
  bool direct = true;              // O_DIRECT where the filesystem allows it
  unsigned threads = 4;            // pread pool size
};

class ReadBackend {
 public:
  virtual ~ReadBackend() = default;
  virtual const char* name() const = 0;
  // Required alignment of offset, length and dst (the file's logical block size, 4096 if unknown;
  // 1 for mmap). With several files: the largest among them; 4096 before the first add_file.
  virtual size_t alignment() const = 0;
  // Opens a file for reading; strata::Error naming the path on failure.
  virtual uint32_t add_file(const std::string& path) = 0;
  virtual uint64_t file_size(uint32_t file) const = 0;
  // Registers a long-lived buffer region (the pinned pool) so reads into it skip page pinning.
  // The region must stay allocated (not freed and reused) for the backend's lifetime: the kernel
  // keeps the pages it pinned at registration.
  virtual void register_buffer(void* base, size_t len) { (void)base; (void)len; }
  // Queues reads; never blocks waiting for I/O (requests beyond the queue depth wait inside the
  // backend and are issued as slots free up).
  virtual void submit(std::span<const ReadRequest> reqs) = 0;
  // Moves finished requests into `out`. With wait=true blocks until at least one completes or
  // the timeout passes. Returns the number added.
  virtual size_t reap(std::vector<Completion>& out, bool wait,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) = 0;
  // Cancels a queued or in-flight request; it still completes (with -ECANCELED or its result).
  virtual void cancel(uint64_t user_data) = 0;
  // Requests submitted and not yet reaped.
  virtual size_t in_flight() const = 0;
  virtual IoStats stats() const = 0;
  // Testing hook (used by the fault-injection wrapper): every Nth kernel read is issued for only
  // part of its length, so the backend's own short-read resubmission path runs. 0 turns it off.
  // Returns false when the backend has no such path (mmap).
  virtual bool set_short_read_injection(unsigned every_nth) { (void)every_nth; return false; }
  // Per-drive figures; a backend over one file reports itself as one device.
  virtual std::vector<DeviceStats> device_stats() const { return {DeviceStats{name(), {}, stats()}}; }
};

using BackendWrapper = std::function<std::unique_ptr<ReadBackend>(std::unique_ptr<ReadBackend>)>;

// kind: "uring", "pread" or "mmap". "uring" falls back to "pread" (one warning log line) when
// io_uring cannot be set up. Unknown kind: strata::Error naming it.
std::unique_ptr<ReadBackend> make_read_backend(const std::string& kind, const BackendOptions& opts = {});

// The backend the weight providers use: add_file takes a locator (storage/placement.h: a plain
// file, or a manifest striping it over several drives). Parts are grouped by the drive they live
// on (st_dev); each drive gets its own backend of `kind` (wrapped by `wrap` when given: tests put
// fault injection or a scripted fake there), its own queue served in priority order and its own
// in-flight limit (queue_depth x chunk_bytes, at least 1 MiB). Requests are split at stripe boundaries and
// complete once all their pieces have. name() is the inner backend's.
std::unique_ptr<ReadBackend> make_device_array(const std::string& kind, const BackendOptions& opts = {},
                                               BackendWrapper wrap = {});

}  // namespace strata::storage
