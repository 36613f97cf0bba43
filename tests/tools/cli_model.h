// A tiny random-weight llama written once per test process by `strata synth` (trained context
// 64 tokens, f32 so tests can poison single weights), for command-line tests that must run
// without ../shared.
#pragma once
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/tools/run_strata.h"

namespace strata::test {

inline std::filesystem::path cli_temp_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / fmt::format("strata-cli-{}", ::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Trained context of the model below.
constexpr int kCliModelCtx = 64;

inline std::string cli_model() {
  static const std::string path = [] {
    const std::string p = (cli_temp_dir() / "tiny-llama-f32.gguf").string();
    const RunResult r = run_strata(fmt::format(
        "synth -o \"{}\" --arch llama --layers 2 --dim 64 --heads 4 --kv-heads 2 --ffn 128 --vocab 300 --ctx {} "
        "--type f32 --seed 3 --buffered",
        p, kCliModelCtx));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    return p;
  }();
  return path;
}

// A tiny random MoE (for streaming), written once.
inline std::string cli_moe_model() {
  static const std::string path = [] {
    const std::string p = (cli_temp_dir() / "tiny-moe-q8_0.gguf").string();
    const RunResult r = run_strata(fmt::format(
        "synth -o \"{}\" --arch mixtral --layers 2 --dim 128 --heads 4 --kv-heads 2 --experts 4 --used 2 --ffn 256 "
        "--vocab 300 --ctx 64 --type q8_0 --seed 4 --buffered",
        p));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    return p;
  }();
  return path;
}

// Removes the temp folder when the test process ends.
struct CliTempCleanup {
  CliTempCleanup() : dir(cli_temp_dir()) {}
  ~CliTempCleanup() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::filesystem::path dir;
};

}  // namespace strata::test
