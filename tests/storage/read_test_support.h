// Helpers for the read-backend tests: a scratch directory on a disk filesystem (so O_DIRECT is
// really exercised), files of a known byte pattern, and reaping with a deadline so a lost
// completion fails the test instead of hanging it.
#pragma once
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "storage/file.h"
#include "storage/read_backend.h"

namespace strata::test {

// Byte i of every pattern file: a hash of the 8-byte word it lies in, so misplaced data shows.
inline uint8_t pattern_byte(uint64_t i) {
  uint64_t z = (i / 8) + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<uint8_t>(z >> ((i % 8) * 8));
}

// Index of the first byte of buf[0, n) that differs from the pattern at file offset `offset`,
// or -1 when all match.
inline int64_t pattern_mismatch(const void* buf, uint64_t offset, uint64_t n) {
  const auto* p = static_cast<const uint8_t*>(buf);
  for (uint64_t i = 0; i < n; ++i)
    if (p[i] != pattern_byte(offset + i)) return static_cast<int64_t>(i);
  return -1;
}

class ScratchDir {
 public:
  ScratchDir() {
    // /var/tmp sits on the disk filesystem; /tmp may be tmpfs without O_DIRECT.
    std::string tmpl = "/var/tmp/strata-storage-test-XXXXXX";
    if (!::mkdtemp(tmpl.data())) FAIL("cannot create a scratch directory under /var/tmp");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

  // Writes `size` pattern bytes to a new file and returns its path.
  std::string pattern_file(const std::string& name, uint64_t size) const {
    std::string p = file(name);
    auto f = storage::File::create(p);
    std::vector<uint8_t> block(1 << 16);
    for (uint64_t off = 0; off < size; off += block.size()) {
      uint64_t n = std::min<uint64_t>(block.size(), size - off);
      for (uint64_t i = 0; i < n; ++i) block[i] = pattern_byte(off + i);
      f.write_all(block.data(), n);
    }
    return p;
  }

  // Whether the filesystem here takes O_DIRECT (reported by the tests, since the backends fall
  // back to buffered reads where it does not).
  bool direct_io_supported() const {
    std::string p = pattern_file("probe", 4096);
    int fd = ::open(p.c_str(), O_RDONLY | O_DIRECT);
    if (fd >= 0) ::close(fd);
    std::filesystem::remove(p);
    return fd >= 0;
  }

 private:
  std::filesystem::path path_;
};

// Reaps until `expected` completions have arrived or `limit` passes; the caller checks the count.
inline std::vector<storage::Completion> reap_all(storage::ReadBackend& b, size_t expected,
                                                 std::chrono::seconds limit = std::chrono::seconds(20)) {
  std::vector<storage::Completion> out;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (out.size() < expected && std::chrono::steady_clock::now() < deadline)
    b.reap(out, true, std::chrono::milliseconds(200));
  return out;
}

// user_data -> how many completions carried it.
inline std::map<uint64_t, int> completion_counts(const std::vector<storage::Completion>& cs) {
  std::map<uint64_t, int> m;
  for (const auto& c : cs) m[c.user_data]++;
  return m;
}

}  // namespace strata::test
