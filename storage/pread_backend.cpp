// The "pread" backend: a small thread pool doing positional reads (O_DIRECT where allowed). The
// fallback when io_uring cannot be set up, so it keeps the same semantics: chunking, short-read
// resubmission, end of file, errors, cancellation of chunks not yet started.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "storage/backend_common.h"
#include "storage/chunk_scheduler.h"
#include "storage/error.h"

namespace strata::storage::detail {
namespace {

constexpr unsigned kMaxTransientRetries = 1000;

class PreadBackend final : public ReadBackend {
 public:
  explicit PreadBackend(const BackendOptions& opts) : opts_(opts), sched_(opts.chunk_bytes) {
    // More workers than the queue depth would only exceed the depth the caller asked for.
    unsigned n = std::max(1u, std::min(opts.threads, opts.queue_depth));
    workers_.reserve(n);
    for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
  }

  ~PreadBackend() override {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    // Joining waits for the chunks being read: their buffers are lent until then.
    for (auto& t : workers_) t.join();
  }

  const char* name() const override { return "pread"; }

  size_t alignment() const override {
    std::lock_guard lk(mu_);
    return alignment_;
  }

  uint32_t add_file(const std::string& path) override {
    auto f = open_for_read(path, opts_.direct);
    std::lock_guard lk(mu_);
    alignment_ = files_.empty() ? f->alignment : std::max(alignment_, f->alignment);
    files_.push_back(std::move(f));
    return static_cast<uint32_t>(files_.size() - 1);
  }

  uint64_t file_size(uint32_t file) const override {
    std::lock_guard lk(mu_);
    if (file >= files_.size()) fail("read backend: file id {} was never added", file);
    return current_size(*files_[file]);
  }

  void submit(std::span<const ReadRequest> reqs) override {
    {
      std::lock_guard lk(mu_);
      auto now = Clock::now();
      for (const auto& r : reqs)
        sched_.add(r, r.file < files_.size() ? files_[r.file].get() : nullptr,
                   static_cast<uint32_t>(files_.size()), now);
    }
    work_cv_.notify_all();
    done_cv_.notify_all();  // requests that completed at once (invalid, empty)
  }

  size_t reap(std::vector<Completion>& out, bool wait, std::chrono::milliseconds timeout) override {
    std::unique_lock lk(mu_);
    if (wait)
      done_cv_.wait_for(lk, timeout, [&] { return sched_.has_done() || sched_.outstanding() == 0; });
    return sched_.take_done(out);
  }

  void cancel(uint64_t user_data) override {
    std::lock_guard lk(mu_);
    // Chunks being read run to the end; the rest of the request is dropped.
    sched_.cancel(user_data, Clock::now());
    if (sched_.has_done()) done_cv_.notify_all();
  }

  size_t in_flight() const override {
    std::lock_guard lk(mu_);
    return sched_.outstanding();
  }

  IoStats stats() const override {
    std::lock_guard lk(mu_);
    return sched_.stats.snapshot(Clock::now());
  }

  bool set_short_read_injection(unsigned every_nth) override {
    inject_every_ = every_nth;
    return true;
  }

 private:
  void work() {
    std::unique_lock lk(mu_);
    for (;;) {
      std::optional<Chunk> c;
      while (!stopping_ && !(c = sched_.next_chunk())) work_cv_.wait(lk);
      if (stopping_) return;  // queued requests are dropped with the backend
      sched_.stats.read_started(Clock::now());
      unsigned every = inject_every_.load();
      bool inject = every > 0 && ++reads_issued_ % every == 0;
      lk.unlock();
      unsigned retries = 0;
      int64_t result = read_chunk(*c, inject, retries);
      lk.lock();
      auto now = Clock::now();
      sched_.stats.counters.retries += retries;
      sched_.stats.read_finished(now);
      sched_.chunk_done(*c, result, now);
      if (sched_.has_done()) done_cv_.notify_all();
    }
  }

  // Bytes read from the chunk's start (fewer than its length only at end of file) or -errno.
  static int64_t read_chunk(const Chunk& c, bool inject_short, unsigned& retries) {
    const OpenedFile& f = *c.file;
    uint64_t done = 0;
    unsigned transient = 0;
    while (done < c.length) {
      uint64_t want = c.length - done;
      if (inject_short && done == 0 && want >= 2 * f.alignment)
        want = want / 2 / f.alignment * f.alignment;
      ssize_t r = ::pread(f.fd, c.dst + done, want, static_cast<off_t>(c.offset + done));
      if (r < 0) {
        if ((errno == EINTR || errno == EAGAIN) && ++transient <= kMaxTransientRetries) {
          retries++;
          continue;
        }
        return -errno;
      }
      if (r == 0) break;  // end of file
      done += static_cast<uint64_t>(r);
      if (done < c.length) {
        // O_DIRECT transfers whole blocks, so an unaligned stop can only be the end of file.
        if (f.direct && (c.offset + done) % f.alignment != 0) break;
        retries++;
      }
    }
    return static_cast<int64_t>(done);
  }

  const BackendOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::unique_ptr<OpenedFile>> files_;
  size_t alignment_ = 4096;
  ChunkScheduler sched_;
  std::atomic<unsigned> inject_every_{0};
  uint64_t reads_issued_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;  // last: started after everything they use exists
};

}  // namespace

std::unique_ptr<ReadBackend> make_pread_backend(const BackendOptions& opts) {
  return std::make_unique<PreadBackend>(opts);
}

}  // namespace strata::storage::detail
