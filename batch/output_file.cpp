#include "batch/output_file.h"

#include <fcntl.h>
#include "batch/log.h"
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <cstring>
#include <filesystem>

#include "batch/batch_record.h"
#include "storage/error.h"

namespace strata::batch {
namespace {

std::string read_all(int fd, const std::string& path) {
  std::string text;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("{}: cannot read: {}", path, std::strerror(errno));
    if (n == 0) return text;
    text.append(buf, size_t(n));
  }
}

void fsync_dir(const std::string& path) {
  // A new file's directory entry is durable only once the directory is synced.
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    ::fsync(d);
    ::close(d);
  }
}

}  // namespace

OutputFile::OutputFile(std::string path, std::set<std::string, std::less<>>& done) : path_(std::move(path)) {
  if (const char* e = std::getenv("STRATA_BATCH_SPLIT_WRITES")) split_ms_ = std::atoi(e);
  const bool existed = std::filesystem::exists(path_);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("{}: cannot open for writing: {}", path_, std::strerror(errno));
  const std::string text = read_all(fd_, path_);
  size_t pos = 0, keep = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) break;  // no newline: the torn tail of an interrupted write
    const std::string_view line(text.data() + pos, nl - pos);
    const auto rec = parse_record(line);
    if (!rec) {
      // A complete line that is no record: only acceptable as the very last one (a write cut
      // short and then padded, as after a power loss); anything before it means this is not
      // (only) our file.
      if (nl + 1 < text.size())
        fail("{} line {}: not a strata batch record, and more lines follow; this file is not a batch output "
             "(or it is damaged): choose another output path or remove it",
             path_, line_no);
      break;
    }
    done.insert(rec->id);
    ++kept_;
    keep = pos = nl + 1;
  }
  if (keep < text.size()) {
    dropped_ = text.size() - keep;
    if (::ftruncate(fd_, off_t(keep)) != 0) fail("{}: cannot cut the torn last line: {}", path_, std::strerror(errno));
    ::fsync(fd_);
    batch_log()->warn("{}: dropped an incomplete last line ({} bytes) left by an interrupted run", path_, dropped_);
  }
  if (!existed) fsync_dir(path_);
}

OutputFile::~OutputFile() {
  if (fd_ < 0) return;
  if (dirty_) ::fsync(fd_);
  ::close(fd_);
}

void OutputFile::append(std::string_view line) {
  // One write() for the whole record: a kill lands before it, after it, or (rarely, for huge
  // records) in the middle, which leaves a torn last line that the next open cuts. The kill
  // test widens that window on purpose: STRATA_BATCH_SPLIT_WRITES=MS writes each record in two
  // halves MS milliseconds apart.
  if (split_ms_ > 0 && line.size() > 1) {
    const size_t half = line.size() / 2;
    write_all(line.substr(0, half));
    std::this_thread::sleep_for(std::chrono::milliseconds(split_ms_));
    line.remove_prefix(half);
  }
  write_all(line);
  dirty_ = true;
}

void OutputFile::write_all(std::string_view line) {
  while (!line.empty()) {
    const ssize_t n = ::write(fd_, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("{}: cannot write: {}", path_, std::strerror(errno));
    line.remove_prefix(size_t(n));
  }
}

void OutputFile::sync() {
  if (!dirty_) return;
  if (::fsync(fd_) != 0) fail("{}: fsync failed: {}", path_, std::strerror(errno));
  dirty_ = false;
}

}  // namespace strata::batch
