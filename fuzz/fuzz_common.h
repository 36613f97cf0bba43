// Helpers shared by the fuzz targets: where ../shared is, and a scratch file per process for the
// parsers that read from a path.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "storage/error.h"

namespace strata::fuzz {

inline std::string shared_dir() {
  if (const char* s = std::getenv("STRATA_SHARED")) return s;
  return STRATA_DEFAULT_SHARED;
}

// The file the GGUF target rewrites for every input: tmpfs when there is one (no disk wear at
// thousands of writes a second), named per process so parallel fuzz jobs do not share it.
inline const std::string& scratch_path() {
  static const std::string path = [] {
    std::string dir = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    return dir + "/strata-fuzz-" + std::to_string(::getpid()) + ".gguf";
  }();
  return path;
}

inline void write_scratch(const uint8_t* data, size_t size) {
  FILE* f = std::fopen(scratch_path().c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

}  // namespace strata::fuzz
