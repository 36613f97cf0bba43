// Runs the built strata binary with a command line and collects its exit status and output.
#pragma once
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "tests/shared_data.h"

namespace strata::test {

struct RunResult {
  int status = -1;
  std::string output;
};

// Runs a shell command line and collects what it writes to stdout and its exit status.
inline RunResult run_shell(const std::string& cmd) {
  RunResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int raw = ::pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// stderr joins stdout unless `stdout_only` (for output parsed as JSON).
inline RunResult run_strata(const std::string& args, bool stdout_only = false) {
  return run_shell(fmt::format("\"{}\" {} {}", strata_binary(), args, stdout_only ? "2>/dev/null" : "2>&1"));
}

}  // namespace strata::test
