// make_read_backend and the helpers every backend shares (opening files, the O_DIRECT alignment
// query, statistics).
#include "storage/read_backend.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "storage/backend_common.h"
#include "storage/error.h"

namespace strata::storage {
namespace detail {

OpenedFile::~OpenedFile() {
  if (fd >= 0) ::close(fd);
}

std::unique_ptr<OpenedFile> open_for_read(const std::string& path, bool want_direct) {
  auto f = std::make_unique<OpenedFile>();
  f->path = path;
  int flags = O_RDONLY | O_CLOEXEC;
  if (want_direct) {
    f->fd = ::open(path.c_str(), flags | O_DIRECT);
    if (f->fd >= 0) {
      f->direct = true;
    } else if (errno == EINVAL) {
      spdlog::warn("{}: filesystem rejects O_DIRECT; reading through the page cache", path);
    } else {
      fail("{}: cannot open for reading: {}", path, std::strerror(errno));
    }
  }
  if (f->fd < 0) {
    f->fd = ::open(path.c_str(), flags);
    if (f->fd < 0) fail("{}: cannot open for reading: {}", path, std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(f->fd, &st) != 0) fail("{}: cannot stat: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    fail("{}: not a regular file or block device", path);
  f->alignment = direct_io_alignment(f->fd);
  return f;
}

namespace {

size_t valid_alignment(uint64_t a) {
  return (a >= 1 && a <= (1u << 20) && std::has_single_bit(a)) ? static_cast<size_t>(a) : 0;
}

size_t read_sysfs_number(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  return (in >> v) ? valid_alignment(v) : 0;
}

}  // namespace

size_t direct_io_alignment(int fd) {
#ifdef STATX_DIOALIGN
  // The filesystem's own answer for this file, when the kernel (6.1+) gives one: it accounts for
  // things the device block size does not (encryption, unusual filesystems).
  struct statx sx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
    size_t a = valid_alignment(std::max(sx.stx_dio_offset_align, sx.stx_dio_mem_align));
    if (a > 1) return a;
  }
#endif
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 4096;
  unsigned maj, min;
  if (S_ISBLK(st.st_mode)) {
    maj = major(st.st_rdev);
    min = minor(st.st_rdev);
    int ss = 0;
    if (::ioctl(fd, BLKSSZGET, &ss) == 0 && valid_alignment(ss) > 1) return ss;
  } else {
    maj = major(st.st_dev);
    min = minor(st.st_dev);
  }
  // The device node of the filesystem usually needs privileges to open; sysfs does not.
  const std::string dev = fmt::format("/dev/block/{}:{}", maj, min);
  if (int bfd = ::open(dev.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK); bfd >= 0) {
    int ss = 0;
    bool ok = ::ioctl(bfd, BLKSSZGET, &ss) == 0;
    ::close(bfd);
    if (ok && valid_alignment(ss) > 1) return ss;
  }
  const std::string sys = fmt::format("/sys/dev/block/{}:{}/", maj, min);
  if (size_t a = read_sysfs_number(sys + "queue/logical_block_size"); a > 1) return a;
  if (size_t a = read_sysfs_number(sys + "../queue/logical_block_size"); a > 1) return a;  // partition
  return 4096;
}

uint64_t current_size(const OpenedFile& f) {
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail("{}: cannot stat: {}", f.path, std::strerror(errno));
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(f.fd, BLKGETSIZE64, &bytes) == 0) return bytes;
  }
  return static_cast<uint64_t>(st.st_size);
}

std::string errno_text(int negative_errno) { return std::strerror(-negative_errno); }

unsigned latency_bucket(uint64_t us) {
  constexpr unsigned kLast = std::size(IoStats{}.latency_us_hist) - 1;
  return std::min<unsigned>(static_cast<unsigned>(std::bit_width(us)), kLast);
}

void StatsRecorder::read_started(Clock::time_point now) {
  if (reads_in_flight_++ == 0) busy_since_ = now;
}

void StatsRecorder::read_finished(Clock::time_point now) {
  if (--reads_in_flight_ == 0)
    counters.busy_s += std::chrono::duration<double>(now - busy_since_).count();
}

void StatsRecorder::request_finished(const Completion& c, Clock::duration latency) {
  counters.ops++;
  counters.bytes += c.bytes;
  if (c.error != 0 && c.error != -ECANCELED) counters.errors++;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(latency).count();
  counters.latency_us_hist[latency_bucket(static_cast<uint64_t>(std::max<int64_t>(us, 0)))]++;
}

IoStats StatsRecorder::snapshot(Clock::time_point now) const {
  IoStats s = counters;
  if (reads_in_flight_ > 0) s.busy_s += std::chrono::duration<double>(now - busy_since_).count();
  return s;
}

}  // namespace detail

std::unique_ptr<ReadBackend> make_read_backend(const std::string& kind, const BackendOptions& opts) {
  if (opts.queue_depth < 1 || opts.queue_depth > 4096)
    fail("read backend options: queue_depth must be 1..4096, got {}", opts.queue_depth);
  // Chunks are single kernel reads: a 32-bit length, and a multiple of any O_DIRECT alignment.
  if (opts.chunk_bytes < 4096 || opts.chunk_bytes > (size_t{1} << 30) || opts.chunk_bytes % 4096)
    fail("read backend options: chunk_bytes must be a multiple of 4096 from 4 KiB to 1 GiB, got {}",
         opts.chunk_bytes);
  if (opts.threads < 1 || opts.threads > 256)
    fail("read backend options: threads must be 1..256, got {}", opts.threads);
  if (kind == "uring") {
    std::string why;
    if (auto b = detail::make_uring_backend(opts, why)) return b;
    spdlog::warn("io_uring unavailable ({}); using the pread backend", why);
    return detail::make_pread_backend(opts);
  }
  if (kind == "pread") return detail::make_pread_backend(opts);
  if (kind == "mmap") return detail::make_mmap_backend(opts);
  fail("read backend '{}': unknown kind (expected uring, pread or mmap)", kind);
}

}  // namespace strata::storage
