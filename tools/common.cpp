#include "tools/common.h"

#include <thread>

#include "storage/error.h"
#include "storage/file.h"

namespace strata::tools {

std::string read_file_bytes(const std::string& path) {
  storage::File f = storage::File::open_read(path);
  const uint64_t n = f.size();
  if (n > (1ull << 30)) fail("{}: file is larger than 1 GiB; not a prompt or text file", path);
  std::string s(static_cast<size_t>(n), '\0');
  if (n) f.read_exact(s.data(), s.size(), 0);
  return s;
}

std::unique_ptr<tbb::global_control> limit_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                               static_cast<size_t>(n));
}

}  // namespace strata::tools
