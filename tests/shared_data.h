// Locating the read-only reference data (../shared) from tests.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace strata::test {

// Returns the shared data folder, or an empty path when it is not present (a user's clone).
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("STRATA_SHARED"); env && *env) {
    std::filesystem::path p(env);
    return std::filesystem::is_directory(p) ? p : std::filesystem::path{};
  }
  std::filesystem::path p(STRATA_DEFAULT_SHARED);
  return std::filesystem::is_directory(p / "models") ? p : std::filesystem::path{};
}

// The built strata binary, for tests that exercise the command line.
inline std::string strata_binary() { return STRATA_BINARY; }

}  // namespace strata::test

// Skips the current doctest case (with a message saying why) when ../shared is absent.
#define STRATA_REQUIRE_SHARED(dir_var)                                                      \
  const std::filesystem::path dir_var = strata::test::shared_dir();                         \
  if (dir_var.empty()) {                                                                    \
    MESSAGE("skipped: reference data ../shared not found (set STRATA_SHARED to its path)"); \
    return;                                                                                 \
  }
