// The "uring" backend (default): O_DIRECT reads through io_uring with registered files and
// buffers. Requests are split into chunks (ChunkScheduler); at most queue_depth chunks are in the
// kernel, each in a slot whose index (plus a generation, so a late cancel cannot hit a reused
// slot) is the SQE's user_data. Completions are processed in reap(), which is also where queued
// chunks are issued as slots free up: submit() only queues and pushes the first SQEs.
//
// Locks: state_mu_ guards everything including the submission queue; cq_mu_ makes reap() the
// only consumer of the completion queue. reap() sleeps in the kernel holding only cq_mu_, so
// submit() and cancel() from other threads go on meanwhile. Lock order: cq_mu_, then state_mu_.
#include <liburing.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "storage/backend_common.h"
#include "storage/chunk_scheduler.h"
#include "storage/error.h"

namespace strata::storage::detail {
namespace {

constexpr uint64_t kCancelTag = ~uint64_t{0} - 1;  // LIBURING_UDATA_TIMEOUT is ~0
constexpr unsigned kFileTable = 1024;
constexpr unsigned kBufferTable = 256;
constexpr size_t kMaxRegion = size_t{1} << 30;  // the kernel's limit per registered buffer
constexpr unsigned kMaxTransientRetries = 1000;

bool disabled_by_env() {
  const char* v = std::getenv("STRATA_URING_DISABLE");
  return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}

class UringBackend final : public ReadBackend {
 public:
  explicit UringBackend(const BackendOptions& opts) : opts_(opts), sched_(opts.chunk_bytes) {}
  ~UringBackend() override;
  bool init(std::string& why_not);

  const char* name() const override { return "uring"; }
  size_t alignment() const override {
    std::lock_guard lk(state_mu_);
    return alignment_;
  }
  uint32_t add_file(const std::string& path) override;
  uint64_t file_size(uint32_t file) const override {
    std::lock_guard lk(state_mu_);
    if (file >= files_.size()) fail("read backend: file id {} was never added", file);
    return current_size(*files_[file]);
  }
  void register_buffer(void* base, size_t len) override;
  void submit(std::span<const ReadRequest> reqs) override;
  size_t reap(std::vector<Completion>& out, bool wait, std::chrono::milliseconds timeout) override;
  void cancel(uint64_t user_data) override;
  size_t in_flight() const override {
    std::lock_guard lk(state_mu_);
    return sched_.outstanding();
  }
  IoStats stats() const override {
    std::lock_guard lk(state_mu_);
    return sched_.stats.snapshot(Clock::now());
  }
  bool set_short_read_injection(unsigned every_nth) override {
    std::lock_guard lk(state_mu_);
    inject_every_ = every_nth;
    return true;
  }

 private:
  struct Slot {
    Chunk chunk;
    uint64_t done = 0;      // bytes of the chunk already read
    uint32_t generation = 0;
    unsigned transient = 0; // -EAGAIN / -EINTR resubmissions
    bool busy = false;
    bool inject_short = false;
  };
  struct Region {
    char* base;
    size_t len;
  };

  // All below: state_mu_ held.
  uint64_t tag(uint32_t slot) const { return (uint64_t{slots_[slot].generation} << 32) | (slot + 1); }
  io_uring_sqe* get_sqe();
  void issue_queued(Clock::time_point now);
  void prep_read(uint32_t slot);
  void post_cancel(uint32_t slot);
  void push_to_kernel();
  void handle_cqe(uint64_t user_data, int32_t res, Clock::time_point now);
  void finish_slot(uint32_t slot, int64_t result, Clock::time_point now);
  int find_region(const char* p, uint64_t len) const;
  bool add_region(char* base, size_t len);
  // Both locks held.
  void drain_cq(Clock::time_point now);

  const BackendOptions opts_;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool ext_arg_ = false;     // the kernel waits with a timeout without using an SQE
  bool sqpoll_ = false;
  bool file_table_ = false;
  enum class BufferTable { unknown, sparse, whole } buffer_table_ = BufferTable::unknown;
  bool warned_buffers_ = false;

  std::vector<std::unique_ptr<OpenedFile>> files_;
  size_t alignment_ = 4096;
  std::vector<Region> regions_;  // index = registered buffer index
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  unsigned in_kernel_ = 0;  // reads whose completion has not been processed
  ChunkScheduler sched_;
  unsigned inject_every_ = 0;
  uint64_t reads_issued_ = 0;
  bool shutting_down_ = false;

  mutable std::mutex state_mu_;
  std::mutex cq_mu_;
};

bool UringBackend::init(std::string& why_not) {
  if (disabled_by_env()) {
    why_not = "io_uring_queue_init: Function not implemented (forced by STRATA_URING_DISABLE)";
    return false;
  }
  const unsigned entries = opts_.queue_depth + 32;  // room for cancel requests beside the reads
  auto params = [&](bool sqpoll) {
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 4 * entries;
    if (sqpoll) {
      p.flags |= IORING_SETUP_SQPOLL;
      p.sq_thread_idle = 50;  // ms
    }
    return p;
  };
  io_uring_params p = params(opts_.sqpoll);
  int rc = io_uring_queue_init_params(entries, &ring_, &p);
  if (rc < 0 && opts_.sqpoll) {
    spdlog::warn("io_uring: SQPOLL unavailable ({}); submitting without it", std::strerror(-rc));
    p = params(false);
    rc = io_uring_queue_init_params(entries, &ring_, &p);
  }
  if (rc < 0) {
    why_not = fmt::format("io_uring_queue_init: {}", std::strerror(-rc));
    return false;
  }
  ring_ready_ = true;
  sqpoll_ = (p.flags & IORING_SETUP_SQPOLL) != 0;
  ext_arg_ = (p.features & IORING_FEAT_EXT_ARG) != 0;

  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  bool has_ops = probe && io_uring_opcode_supported(probe, IORING_OP_READ) &&
                 io_uring_opcode_supported(probe, IORING_OP_READ_FIXED) &&
                 io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
  if (probe) io_uring_free_probe(probe);
  if (!has_ops) {
    why_not = "the kernel's io_uring lacks IORING_OP_READ (needs Linux 5.6 or later)";
    return false;
  }

  if (io_uring_register_files_sparse(&ring_, kFileTable) == 0) {
    file_table_ = true;
  } else {
    std::vector<int> empty(kFileTable, -1);
    file_table_ = io_uring_register_files(&ring_, empty.data(), kFileTable) == 0;
  }
  slots_.resize(opts_.queue_depth);
  for (uint32_t i = opts_.queue_depth; i-- > 0;) free_slots_.push_back(i);
  return true;
}

UringBackend::~UringBackend() {
  if (!ring_ready_) return;
  std::scoped_lock lk(cq_mu_, state_mu_);
  // Reads in the kernel write into caller buffers: they must land (or be cancelled) first.
  shutting_down_ = true;
  for (uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].busy) post_cancel(i);
  push_to_kernel();
  auto last_note = Clock::now();
  while (in_kernel_ > 0) {
    __kernel_timespec ts{0, 100'000'000};
    io_uring_cqe* cqe = nullptr;
    io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
    auto now = Clock::now();
    drain_cq(now);
    if (in_kernel_ > 0 && now - last_note > std::chrono::seconds(10)) {
      spdlog::warn("io_uring: still waiting for {} reads to finish before closing", in_kernel_);
      last_note = now;
    }
  }
  io_uring_queue_exit(&ring_);
}

uint32_t UringBackend::add_file(const std::string& path) {
  auto f = open_for_read(path, opts_.direct);
  std::lock_guard lk(state_mu_);
  const auto id = static_cast<uint32_t>(files_.size());
  if (file_table_ && id < kFileTable) {
    int fd = f->fd;
    if (io_uring_register_files_update(&ring_, id, &fd, 1) == 1) f->fixed_index = static_cast<int>(id);
  }
  alignment_ = files_.empty() ? f->alignment : std::max(alignment_, f->alignment);
  files_.push_back(std::move(f));
  return id;
}

void UringBackend::register_buffer(void* base, size_t len) {
  std::lock_guard lk(state_mu_);
  auto* p = static_cast<char*>(base);
  while (len > 0) {
    size_t piece = std::min(len, kMaxRegion);
    if (!add_region(p, piece)) return;
    p += piece;
    len -= piece;
  }
}

bool UringBackend::add_region(char* base, size_t len) {
  int rc = 0;
  bool ok = false;
  if (regions_.size() >= kBufferTable) {
    rc = -ENOSPC;
  } else {
    iovec v{base, len};
    if (buffer_table_ == BufferTable::unknown)
      buffer_table_ = io_uring_register_buffers_sparse(&ring_, kBufferTable) == 0
                          ? BufferTable::sparse
                          : BufferTable::whole;
    if (buffer_table_ == BufferTable::sparse) {
      __u64 tag = 0;
      rc = io_uring_register_buffers_update_tag(&ring_, static_cast<unsigned>(regions_.size()), &v,
                                                &tag, 1);
      ok = rc == 1;
    } else {
      // Kernels before 5.19 only take the whole table at once.
      std::vector<iovec> all;
      for (const auto& r : regions_) all.push_back({r.base, r.len});
      all.push_back(v);
      if (!regions_.empty()) io_uring_unregister_buffers(&ring_);
      rc = io_uring_register_buffers(&ring_, all.data(), static_cast<unsigned>(all.size()));
      ok = rc == 0;
      if (!ok && !regions_.empty() &&
          io_uring_register_buffers(&ring_, all.data(), static_cast<unsigned>(all.size() - 1)) != 0)
        regions_.clear();
    }
  }
  if (!ok) {
    if (!warned_buffers_)
      spdlog::warn("io_uring: cannot register a {}-byte buffer ({}); reads into it are plain reads",
                   len, std::strerror(-rc));
    warned_buffers_ = true;
    return false;
  }
  regions_.push_back({base, len});
  return true;
}

int UringBackend::find_region(const char* p, uint64_t len) const {
  for (size_t i = 0; i < regions_.size(); ++i) {
    const Region& r = regions_[i];
    if (p >= r.base && p + len <= r.base + r.len) return static_cast<int>(i);
  }
  return -1;
}

io_uring_sqe* UringBackend::get_sqe() {
  for (;;) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
    // Full of unsubmitted entries: only possible with a burst of cancels.
    io_uring_submit(&ring_);
    if (sqpoll_) io_uring_sqring_wait(&ring_);
  }
}

void UringBackend::push_to_kernel() {
  if (io_uring_sq_ready(&ring_) == 0) return;
  int rc = io_uring_submit(&ring_);
  // Transient refusals leave the entries in the ring; the next reap() pushes them again.
  if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
    spdlog::error("io_uring_submit: {}", std::strerror(-rc));
}

void UringBackend::issue_queued(Clock::time_point now) {
  if (shutting_down_) return;
  while (!free_slots_.empty()) {
    std::optional<Chunk> c = sched_.next_chunk();
    if (!c) break;
    uint32_t i = free_slots_.back();
    free_slots_.pop_back();
    Slot& s = slots_[i];
    s.chunk = *c;
    s.done = 0;
    s.generation++;
    s.transient = 0;
    s.busy = true;
    s.inject_short = inject_every_ > 0 && ++reads_issued_ % inject_every_ == 0;
    in_kernel_++;
    sched_.stats.read_started(now);
    prep_read(i);
  }
}

void UringBackend::prep_read(uint32_t slot) {
  Slot& s = slots_[slot];
  const Chunk& c = s.chunk;
  const OpenedFile& f = *c.file;
  uint64_t len = c.length - s.done;
  if (s.inject_short) {
    s.inject_short = false;
    if (len >= 2 * f.alignment) len = len / 2 / f.alignment * f.alignment;
  }
  char* dst = c.dst + s.done;
  const uint64_t off = c.offset + s.done;
  const int fd = f.fixed_index >= 0 ? f.fixed_index : f.fd;
  io_uring_sqe* sqe = get_sqe();
  const int region = find_region(dst, len);
  if (region >= 0) {
    io_uring_prep_read_fixed(sqe, fd, dst, static_cast<unsigned>(len), off, region);
    if (s.done == 0) sched_.stats.counters.fixed_chunks++;
  } else {
    io_uring_prep_read(sqe, fd, dst, static_cast<unsigned>(len), off);
  }
  if (f.fixed_index >= 0) io_uring_sqe_set_flags(sqe, IOSQE_FIXED_FILE);
  io_uring_sqe_set_data64(sqe, tag(slot));
}

void UringBackend::post_cancel(uint32_t slot) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, tag(slot), 0);
  io_uring_sqe_set_data64(sqe, kCancelTag);
}

void UringBackend::finish_slot(uint32_t slot, int64_t result, Clock::time_point now) {
  Slot& s = slots_[slot];
  const Chunk c = s.chunk;
  s.busy = false;
  free_slots_.push_back(slot);
  in_kernel_--;
  sched_.stats.read_finished(now);
  sched_.chunk_done(c, result, now);
}

void UringBackend::handle_cqe(uint64_t user_data, int32_t res, Clock::time_point now) {
  const uint64_t index = user_data & 0xffffffffu;
  if (user_data == kCancelTag || index == 0 || index > slots_.size()) return;  // cancel/timeout
  const auto slot = static_cast<uint32_t>(index - 1);
  Slot& s = slots_[slot];
  if (!s.busy || tag(slot) != user_data) return;
  const Chunk& c = s.chunk;
  const bool abandon = shutting_down_ || c.request->cancelled;
  if (res < 0) {
    if ((res == -EAGAIN || res == -EINTR) && !abandon && ++s.transient <= kMaxTransientRetries) {
      sched_.stats.counters.retries++;
      prep_read(slot);
    } else {
      finish_slot(slot, res, now);
    }
    return;
  }
  s.done += static_cast<uint64_t>(res);
  const OpenedFile& f = *c.file;
  // A read of 0 bytes is the end of the file; so is an unaligned stop under O_DIRECT, which
  // transfers whole blocks otherwise.
  if (s.done >= c.length || res == 0 || (f.direct && (c.offset + s.done) % f.alignment != 0)) {
    finish_slot(slot, static_cast<int64_t>(s.done), now);
  } else if (abandon) {
    finish_slot(slot, -ECANCELED, now);
  } else {
    sched_.stats.counters.retries++;
    prep_read(slot);  // short read: ask for the rest
  }
}

void UringBackend::drain_cq(Clock::time_point now) {
  io_uring_cqe* cqe = nullptr;
  // peek (unlike for_each) also flushes completions the kernel kept back when the ring was full.
  while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
    const uint64_t user_data = io_uring_cqe_get_data64(cqe);
    const int32_t res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    handle_cqe(user_data, res, now);
  }
  issue_queued(now);
  push_to_kernel();
}

void UringBackend::submit(std::span<const ReadRequest> reqs) {
  std::lock_guard lk(state_mu_);
  const auto now = Clock::now();
  for (const auto& r : reqs)
    sched_.add(r, r.file < files_.size() ? files_[r.file].get() : nullptr,
               static_cast<uint32_t>(files_.size()), now);
  issue_queued(now);
  push_to_kernel();
}

size_t UringBackend::reap(std::vector<Completion>& out, bool wait,
                          std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::unique_lock cq(cq_mu_, std::defer_lock);
  if (wait) {
    cq.lock();
  } else if (!cq.try_lock()) {
    // Another thread is reaping (maybe sleeping in the kernel): take what is already finished.
    std::lock_guard st(state_mu_);
    return sched_.take_done(out);
  }
  for (;;) {
    {
      std::lock_guard st(state_mu_);
      drain_cq(Clock::now());
      // One completion from the kernel may finish no request (a chunk, a resubmission): loop.
      if (sched_.has_done() || !wait || in_kernel_ == 0) return sched_.take_done(out);
    }
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    __kernel_timespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
    io_uring_cqe* cqe = nullptr;
    if (ext_arg_) {
      io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
    } else {
      // Older kernels implement the timeout with an SQE: the submission side must be ours.
      std::lock_guard st(state_mu_);
      io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
    }
  }
}

void UringBackend::cancel(uint64_t user_data) {
  std::lock_guard lk(state_mu_);
  auto running = sched_.cancel(user_data, Clock::now());
  if (running.empty()) return;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.busy && std::find(running.begin(), running.end(), s.chunk.request) != running.end())
      post_cancel(i);
  }
  push_to_kernel();
}

}  // namespace

std::unique_ptr<ReadBackend> make_uring_backend(const BackendOptions& opts, std::string& why_not) {
  auto b = std::make_unique<UringBackend>(opts);
  if (!b->init(why_not)) return nullptr;
  return b;
}

}  // namespace strata::storage::detail
