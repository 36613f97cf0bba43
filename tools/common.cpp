#include "tools/common.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
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

// Sizes on the command line: "512M", "4G", "11.1G", "1.5GiB", "123456": binary multiples.
uint64_t parse_size(const std::string& text, const char* flag) {
  size_t end = 0;
  double v = 0;
  try {
    v = std::stod(text, &end);
  } catch (...) {
    end = 0;
  }
  std::string suffix;
  for (size_t i = end; i < text.size(); ++i) suffix += char(std::toupper(static_cast<unsigned char>(text[i])));
  if (suffix.ends_with("IB")) suffix.resize(suffix.size() - 2);
  else if (suffix.ends_with("B")) suffix.resize(suffix.size() - 1);
  double mult = 0;
  if (suffix.empty()) mult = 1;
  else if (suffix == "K") mult = 0x1p10;
  else if (suffix == "M") mult = 0x1p20;
  else if (suffix == "G") mult = 0x1p30;
  else if (suffix == "T") mult = 0x1p40;
  if (end == 0 || mult == 0 || !(v > 0) || v * mult > 0x1p60)
    fail("{} '{}': expected a positive size such as 512M, 4G or 11.1G", flag, text);
  return static_cast<uint64_t>(std::llround(v * mult));
}

std::unique_ptr<tbb::global_control> limit_threads(int n) {
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (n > hw) {
    std::fprintf(stderr, "strata: -t %d is more threads than this machine has (%d); using %d\n", n, hw, hw);
    n = hw;
  }
  if (n <= 0) n = hw;
  return std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                               static_cast<size_t>(n));
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("model name")) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t b = line.find_first_not_of(" \t", colon + 1);
    if (b != std::string::npos) return line.substr(b);
  }
  return "unknown";  // some ARM kernels name no model
}

}  // namespace strata::tools
