// Raw read speed of a file through a backend, the way fio measures a drive (O_DIRECT, reads of
// a fixed size, a fixed queue depth): the reference the streaming figures are compared with,
// measured in the same run because this disk varies from run to run. Two patterns: sequential
// (the file's prefix) and given extents (the units a streamed run reads, in random order: the
// speed the drive gives for the run's own access pattern).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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

struct ReadExtent {
  uint32_t file = 0;  // index into the paths
  uint64_t offset = 0, length = 0;
};

// Reads each extent (widened to the backend's alignment, split into `chunk` reads) in the order
// given, `queue_depth` reads in flight. Throws strata::Error on a read error.
SequentialReadResult measure_extent_read(const std::vector<std::string>& paths, const std::vector<ReadExtent>& extents,
                                         const std::string& kind = "uring", uint64_t chunk = 1 << 20,
                                         unsigned queue_depth = 32);

}  // namespace strata::storage
