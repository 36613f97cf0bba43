// Raw sequential read speed of a file through a backend, the way fio measures a drive
// (O_DIRECT, fixed-size reads, a fixed queue depth): the reference the streaming figures are
// compared with, measured in the same run because this disk varies from run to run.
#pragma once
#include <cstdint>
#include <string>

namespace strata::storage {

struct SequentialReadResult {
  uint64_t bytes = 0;
  double seconds = 0;
  double gbps() const { return seconds > 0 ? bytes / seconds / 1e9 : 0; }
};

// Reads [0, min(size, max_bytes)) of `path` in `chunk` reads, `queue_depth` in flight, with the
// given backend kind. Throws strata::Error on a read error.
SequentialReadResult measure_sequential_read(const std::string& path, const std::string& kind = "uring",
                                             uint64_t chunk = 1 << 20, unsigned queue_depth = 32,
                                             uint64_t max_bytes = 4ull << 30);

}  // namespace strata::storage
