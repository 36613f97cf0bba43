// The "mmap" backend: the page-cache baseline (what llama.cpp does). Each file is mapped
// read-only and a "read" is a memcpy out of the mapping, so page faults and readahead happen in
// the copy. Reads complete synchronously inside submit(); reap() hands them over. For comparison
// only: no O_DIRECT, no overlap of I/O with anything.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>

#include <fmt/format.h>

#include "storage/backend_common.h"
#include "storage/error.h"

namespace strata::storage::detail {
namespace {

struct MappedFile {
  std::unique_ptr<OpenedFile> file;
  const char* base = nullptr;
  uint64_t mapped = 0;

  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (base) ::munmap(const_cast<char*>(base), mapped);
  }
};

class MmapBackend final : public ReadBackend {
 public:
  explicit MmapBackend(const BackendOptions& opts) : opts_(opts) {}

  const char* name() const override { return "mmap"; }
  size_t alignment() const override { return 1; }

  uint32_t add_file(const std::string& path) override {
    auto m = std::make_unique<MappedFile>();
    m->file = open_for_read(path, false);
    m->mapped = current_size(*m->file);
    if (m->mapped > 0) {
      void* p = ::mmap(nullptr, m->mapped, PROT_READ, MAP_SHARED, m->file->fd, 0);
      if (p == MAP_FAILED) fail("{}: cannot map {} bytes: {}", path, m->mapped, std::strerror(errno));
      m->base = static_cast<const char*>(p);
    }
    std::lock_guard lk(mu_);
    files_.push_back(std::move(m));
    return static_cast<uint32_t>(files_.size() - 1);
  }

  uint64_t file_size(uint32_t file) const override {
    std::lock_guard lk(mu_);
    if (file >= files_.size()) fail("read backend: file id {} was never added", file);
    return current_size(*files_[file]->file);
  }

  void submit(std::span<const ReadRequest> reqs) override {
    std::lock_guard lk(mu_);
    for (const auto& r : reqs) done_.push_back(copy(r));
  }

  size_t reap(std::vector<Completion>& out, bool wait, std::chrono::milliseconds timeout) override {
    std::lock_guard lk(mu_);
    size_t n = done_.size();
    for (auto& c : done_) out.push_back(std::move(c));
    done_.clear();
    return n;
  }

  void cancel(uint64_t user_data) override {}  // everything has completed already

  size_t in_flight() const override {
    std::lock_guard lk(mu_);
    return done_.size();
  }

  IoStats stats() const override {
    std::lock_guard lk(mu_);
    return stats_.snapshot(Clock::now());
  }

 private:
  Completion copy(const ReadRequest& r) {
    const auto start = Clock::now();
    Completion c;
    c.user_data = r.user_data;
    if (r.file >= files_.size()) {
      c.error = -EBADF;
      c.message = fmt::format("read backend: file id {} was never added ({} files)", r.file,
                              files_.size());
    } else {
      const MappedFile& m = *files_[r.file];
      // Touching the mapping past the current end of file raises SIGBUS, so a file shortened
      // since add_file is clamped to its present size (racy against a concurrent truncate, as
      // mmap readers always are).
      uint64_t end = m.mapped;
      try {
        end = std::min(end, current_size(*m.file));
      } catch (const Error&) {
      }
      const uint64_t n = r.offset < end ? std::min(r.length, end - r.offset) : 0;
      stats_.read_started(start);
      for (uint64_t done = 0; done < n; done += opts_.chunk_bytes) {
        const uint64_t len = std::min<uint64_t>(opts_.chunk_bytes, n - done);
        std::memcpy(static_cast<char*>(r.dst) + done, m.base + r.offset + done, len);
        stats_.counters.chunks++;
      }
      c.bytes = n;
    }
    const auto now = Clock::now();
    if (c.error == 0) stats_.read_finished(now);
    stats_.request_finished(c, now - start);
    return c;
  }

  const BackendOptions opts_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::deque<Completion> done_;
  StatsRecorder stats_;
};

}  // namespace

std::unique_ptr<ReadBackend> make_mmap_backend(const BackendOptions& opts) {
  return std::make_unique<MmapBackend>(opts);
}

}  // namespace strata::storage::detail
