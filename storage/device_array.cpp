// The device array: a ReadBackend over placed files (storage/placement.h) that keeps every drive
// busy. Each request is split at stripe boundaries into pieces; a piece goes to the queue of the
// drive its part lives on. Each drive has its own inner backend, its own queue (served by
// priority, then in arrival order) and an in-flight byte limit, so a drive never holds more than
// its backend can keep in the kernel and an urgent piece never waits behind a long speculative
// queue. One reaper thread per drive folds piece completions into request completions.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "storage/backend_common.h"
#include "storage/error.h"
#include "storage/placement.h"

#include <spdlog/spdlog.h>

namespace strata::storage {
namespace {

using detail::Clock;

std::string device_name(dev_t dev) {
  const std::string id = fmt::format("{}:{}", major(dev), minor(dev));
  std::error_code ec;
  const auto target = std::filesystem::read_symlink("/sys/dev/block/" + id, ec);
  return ec ? id : target.filename().string();
}

class DeviceArray final : public ReadBackend {
 public:
  DeviceArray(std::string kind, BackendOptions opts, BackendWrapper wrap)
      : kind_(std::move(kind)), opts_(opts), wrap_(std::move(wrap)) {
    cap_bytes_ = std::max<uint64_t>(uint64_t(opts_.queue_depth) * opts_.chunk_bytes, 1 << 20);
  }

  ~DeviceArray() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      for (auto& d : devices_) d->cv.notify_all();
    }
    for (auto& d : devices_)
      if (d->reaper.joinable()) d->reaper.join();
    devices_.clear();  // each inner backend waits for its reads still in the kernel
  }

  const char* name() const override {
    std::lock_guard lk(mu_);
    return devices_.empty() ? kind_.c_str() : devices_.front()->backend->name();
  }

  size_t alignment() const override {
    std::lock_guard lk(mu_);
    size_t a = devices_.empty() ? 4096 : 1;
    for (const auto& d : devices_) a = std::max(a, d->backend->alignment());
    return a;
  }

  uint32_t add_file(const std::string& locator) override {
    Placement placement = Placement::open(locator);
    std::lock_guard lk(mu_);
    FileEntry fe{std::move(placement), {}};
    for (const std::string& part : fe.placement.parts()) {
      struct stat st {};
      if (::stat(part.c_str(), &st) != 0) fail("{}: cannot stat: {}", part, std::strerror(errno));
      const uint32_t di = device_for(st.st_dev);
      fe.parts.push_back({di, devices_[di]->backend->add_file(part)});
      devices_[di]->paths.push_back(part);
    }
    files_.push_back(std::move(fe));
    return static_cast<uint32_t>(files_.size() - 1);
  }

  uint64_t file_size(uint32_t file) const override {
    std::lock_guard lk(mu_);
    return files_.at(file).placement.size();
  }

  void register_buffer(void* base, size_t len) override {
    std::lock_guard lk(mu_);
    regions_.emplace_back(base, len);
    for (auto& d : devices_) d->backend->register_buffer(base, len);
  }

  void submit(std::span<const ReadRequest> reqs) override {
    std::lock_guard lk(mu_);
    const auto now = Clock::now();
    std::vector<bool> touched(devices_.size(), false);
    for (const ReadRequest& r : reqs) {
      const uint64_t seq = next_seq_++;
      Pending& p = pending_[seq];
      p.req = r;
      p.t0 = now;
      if (r.file >= files_.size()) {
        p.error = -EBADF;
        p.message = fmt::format("read of unknown file id {}", r.file);
        finish(seq, now);
        continue;
      }
      const FileEntry& fe = files_[r.file];
      const uint8_t pri = std::min<uint8_t>(r.priority, 2);
      // Nothing past the logical end is read (a whole part may be longer than the file it holds).
      const uint64_t size = fe.placement.size();
      // The cut is rounded up to 4 KiB so O_DIRECT reads stay aligned; bytes past the end are
      // not reported (data_end).
      const uint64_t length = r.offset >= size ? 0 : std::min(r.length, (size - r.offset + 4095) / 4096 * 4096);
      if (length < r.length) p.data_end = std::max(r.offset, size);
      for (const Piece& pc : fe.placement.map(r.offset, length)) {
        const PartRef& ref = fe.parts[pc.part];
        const uint64_t id = next_piece_++;
        PieceRec rec;
        rec.seq = seq;
        rec.device = ref.device;
        rec.logical_offset = pc.logical_offset;
        rec.inner = ReadRequest{ref.file, pc.part_offset, pc.length,
                                static_cast<char*>(r.dst) + (pc.logical_offset - r.offset), id, pri};
        pieces_.emplace(id, rec);
        p.pieces.push_back(id);
        devices_[ref.device]->queue[pri].push_back(id);
        touched[ref.device] = true;
      }
      p.left = static_cast<uint32_t>(p.pieces.size());
      if (p.left == 0) finish(seq, now);
    }
    for (size_t d = 0; d < devices_.size(); ++d)
      if (touched[d]) dispatch(d, now);
  }

  size_t reap(std::vector<Completion>& out, bool wait, std::chrono::milliseconds timeout) override {
    std::unique_lock lk(mu_);
    if (devices_.size() == 1 && !threaded_) {
      // One drive: reap it on the caller's thread (a reaper thread would add a wake-up to every
      // read, which small units on a fast drive feel).
      ReadBackend& inner = *devices_.front()->backend;
      if (done_.empty()) {
        lk.unlock();
        std::vector<Completion> got;
        inner.reap(got, wait, timeout);
        lk.lock();
        const auto now = Clock::now();
        for (const Completion& c : got) piece_done(*devices_.front(), c, now);
        dispatch(0, now);
      }
    } else if (wait && done_.empty()) {
      done_cv_.wait_for(lk, timeout, [&] { return !done_.empty(); });
    }
    const size_t n = done_.size();
    for (Completion& c : done_) out.push_back(std::move(c));
    done_.clear();
    return n;
  }

  void cancel(uint64_t user_data) override {
    std::lock_guard lk(mu_);
    const auto now = Clock::now();
    std::vector<uint64_t> seqs;
    for (auto& [seq, p] : pending_)
      if (p.req.user_data == user_data) seqs.push_back(seq);
    for (uint64_t seq : seqs) {
      Pending& p = pending_.at(seq);
      p.cancelled = true;
      for (uint64_t id : p.pieces) {
        auto it = pieces_.find(id);
        if (it == pieces_.end()) continue;
        if (it->second.issued) {
          devices_[it->second.device]->backend->cancel(id);
        } else {
          pieces_.erase(it);  // its queue entry is skipped when reached
          p.lost = true;
          --p.left;
        }
      }
      if (p.left == 0) finish(seq, now);
    }
  }

  size_t in_flight() const override {
    std::lock_guard lk(mu_);
    return pending_.size() + done_.size();
  }

  IoStats stats() const override {
    std::lock_guard lk(mu_);
    IoStats s = recorder_.snapshot(Clock::now());
    for (const auto& d : devices_) {
      const IoStats in = d->backend->stats();
      s.chunks += in.chunks;
      s.retries += in.retries;
      s.fixed_chunks += in.fixed_chunks;
    }
    return s;
  }

  std::vector<DeviceStats> device_stats() const override {
    std::lock_guard lk(mu_);
    std::vector<DeviceStats> out;
    for (const auto& d : devices_) out.push_back({d->name, d->paths, d->backend->stats()});
    return out;
  }

  bool set_short_read_injection(unsigned every_nth) override {
    std::lock_guard lk(mu_);
    bool any = false;
    for (auto& d : devices_) any = d->backend->set_short_read_injection(every_nth) || any;
    short_every_ = every_nth;
    return any;
  }

 private:
  struct Device {
    dev_t dev = 0;
    std::string name;
    std::vector<std::string> paths;
    std::unique_ptr<ReadBackend> backend;
    std::deque<uint64_t> queue[3];
    uint64_t inflight_bytes = 0;
    uint32_t issued = 0;
    std::condition_variable cv;  // wakes the reaper when something is issued
    std::thread reaper;
  };
  struct PartRef {
    uint32_t device = 0;
    uint32_t file = 0;  // the inner backend's file id
  };
  struct FileEntry {
    Placement placement;
    std::vector<PartRef> parts;
  };
  struct Pending {
    ReadRequest req;
    std::vector<uint64_t> pieces;
    uint32_t left = 0;
    int32_t error = 0;
    std::string message;
    uint64_t data_end = UINT64_MAX;  // logical offset where the data stopped, if a piece read short
    bool cancelled = false, lost = false;
    Clock::time_point t0;
  };
  struct PieceRec {
    uint64_t seq = 0;
    uint32_t device = 0;
    uint64_t logical_offset = 0;
    bool issued = false;
    ReadRequest inner;
  };

  // Under mu_. The index of the drive `dev`, set up on first sight.
  uint32_t device_for(dev_t dev) {
    for (uint32_t i = 0; i < devices_.size(); ++i)
      if (devices_[i]->dev == dev) return i;
    auto d = std::make_unique<Device>();
    d->dev = dev;
    d->name = device_name(dev);
    std::unique_ptr<ReadBackend> b = make_read_backend(kind_, opts_);
    if (wrap_) b = wrap_(std::move(b));
    d->backend = std::move(b);
    for (auto [base, len] : regions_) d->backend->register_buffer(base, len);
    if (short_every_) d->backend->set_short_read_injection(short_every_);
    devices_.push_back(std::move(d));
    if (devices_.size() == 2) threaded_ = true;
    if (threaded_)  // several drives: one reaper each (the first drive's starts with the second's)
      for (size_t i = 0; i < devices_.size(); ++i)
        if (!devices_[i]->reaper.joinable()) devices_[i]->reaper = std::thread([this, i] { reap_loop(i); });
    return static_cast<uint32_t>(devices_.size() - 1);
  }

  // Under mu_. Issues queued pieces of drive `di`, most urgent first, within its byte limit.
  void dispatch(size_t di, Clock::time_point now) {
    Device& d = *devices_[di];
    std::vector<ReadRequest> batch;
    for (auto& q : d.queue) {
      while (!q.empty()) {
        auto it = pieces_.find(q.front());
        if (it == pieces_.end()) {  // cancelled before issue
          q.pop_front();
          continue;
        }
        PieceRec& pc = it->second;
        if (d.inflight_bytes > 0 && d.inflight_bytes + pc.inner.length > cap_bytes_) goto full;
        q.pop_front();
        pc.issued = true;
        d.inflight_bytes += pc.inner.length;
        ++d.issued;
        recorder_.read_started(now);
        batch.push_back(pc.inner);
      }
    }
  full:
    if (batch.empty()) return;
    d.backend->submit(batch);
    d.cv.notify_one();
  }

  void reap_loop(size_t di) {
    std::vector<Completion> got;
    for (;;) {
      Device* d;
      {
        std::unique_lock lk(mu_);
        d = devices_[di].get();
        d->cv.wait(lk, [&] { return stop_ || d->issued > 0; });
        if (stop_) return;
      }
      got.clear();
      try {
        d->backend->reap(got, true, std::chrono::milliseconds(50));
      } catch (const std::exception& e) {
        spdlog::error("device {}: {}", d->name, e.what());
        continue;
      }
      if (got.empty()) continue;
      std::lock_guard lk(mu_);
      const auto now = Clock::now();
      for (const Completion& c : got) piece_done(*d, c, now);
      dispatch(di, now);
    }
  }

  // Under mu_.
  void piece_done(Device& d, const Completion& c, Clock::time_point now) {
    auto it = pieces_.find(c.user_data);
    if (it == pieces_.end()) return;
    const PieceRec pc = it->second;
    pieces_.erase(it);
    d.inflight_bytes -= pc.inner.length;
    --d.issued;
    recorder_.read_finished(now);
    auto pit = pending_.find(pc.seq);
    if (pit == pending_.end()) return;
    Pending& p = pit->second;
    if (c.error == -ECANCELED && p.cancelled) {
      p.lost = true;
    } else if (c.error != 0) {  // -ECANCELED unasked too: the piece has no bytes
      if (p.error == 0) {
        p.error = c.error;
        p.message = c.message;
      }
    } else if (c.bytes < pc.inner.length) {
      p.data_end = std::min(p.data_end, pc.logical_offset + c.bytes);
    }
    if (--p.left == 0) finish(pc.seq, now);
  }

  // Under mu_. Folds a request's pieces into its one completion.
  void finish(uint64_t seq, Clock::time_point now) {
    auto it = pending_.find(seq);
    Pending& p = it->second;
    Completion c;
    c.user_data = p.req.user_data;
    c.error = p.error;
    c.message = std::move(p.message);
    if (c.error == 0 && p.cancelled && p.lost) {
      c.error = -ECANCELED;
      c.message = "cancelled";
    }
    if (c.error == 0) {
      const uint64_t end = std::min(p.data_end, p.req.offset + p.req.length);
      c.bytes = end > p.req.offset ? end - p.req.offset : 0;
    }
    recorder_.request_finished(c, now - p.t0);
    pending_.erase(it);
    done_.push_back(std::move(c));
    done_cv_.notify_all();
  }

  std::string kind_;
  BackendOptions opts_;
  BackendWrapper wrap_;
  uint64_t cap_bytes_ = 0;
  unsigned short_every_ = 0;
  bool threaded_ = false;  // reaper threads run (more than one drive)

  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  bool stop_ = false;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<FileEntry> files_;
  std::vector<std::pair<void*, size_t>> regions_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::unordered_map<uint64_t, PieceRec> pieces_;
  std::deque<Completion> done_;
  uint64_t next_seq_ = 0, next_piece_ = 0;
  detail::StatsRecorder recorder_;
};

}  // namespace

std::unique_ptr<ReadBackend> make_device_array(const std::string& kind, const BackendOptions& opts, BackendWrapper wrap) {
  // Refuse an unknown kind now rather than at the first add_file.
  if (kind != "uring" && kind != "pread" && kind != "mmap") fail("read backend '{}': unknown kind (expected uring, pread or mmap)", kind);
  return std::make_unique<DeviceArray>(kind, opts, std::move(wrap));
}

}  // namespace strata::storage
