// RAII file handle with exact positional reads: the plain-read path used for GGUF headers and
// for the resident weight provider. Streaming backends (io_uring, O_DIRECT) build on the same fd.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace strata::storage {

class File {
 public:
  File() = default;
  // Opens read-only; throws strata::Error naming the path on failure.
  static File open_read(const std::string& path, bool direct = false);
  // Creates/truncates for writing; throws strata::Error naming the path on failure.
  static File create(const std::string& path);
  ~File();
  File(File&& o) noexcept;
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  uint64_t size() const;  // current size (fstat), throws on failure

  // Reads exactly n bytes at offset or throws strata::Error ("<path>: unexpected end of file
  // reading N bytes at offset O" / errno text). Retries EINTR and short reads.
  void read_exact(void* dst, size_t n, uint64_t offset) const;
  // Writes exactly n bytes at the current position or throws.
  void write_all(const void* src, size_t n);

 private:
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace strata::storage
