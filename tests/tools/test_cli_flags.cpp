// The command line as a llama.cpp user types it: readable range errors, llama.cpp's flag
// spellings, and every nonsensical value refused with a message naming the flag.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "tests/tools/cli_model.h"
#include "tests/tools/run_strata.h"

using strata::test::cli_model;
using strata::test::cli_moe_model;
using strata::test::run_strata;
using strata::test::RunResult;

namespace {

strata::test::CliTempCleanup cleanup;

// A failed command: non-zero exit, the message expected, and no CLI11 range text with its
// 300-digit bound.
void expect_error(const std::string& args, const std::string& message) {
  CAPTURE(args);
  const RunResult r = run_strata(args);
  CAPTURE(r.output);
  CHECK(r.status != 0);
  CHECK(r.output.find(message) != std::string::npos);
  CHECK_FALSE(std::regex_search(r.output, std::regex("[0-9]{20}")));
}

RunResult expect_ok(const std::string& args) {
  CAPTURE(args);
  const RunResult r = run_strata(args);
  CAPTURE(r.output);
  CHECK(r.status == 0);
  return r;
}

}  // namespace

TEST_CASE("range errors read like '--n-predict must be >= -1 (got -2)'") {
  const std::string m = cli_model();
  expect_error(fmt::format("run -m {} -p hi -n -2", m), "--n-predict must be >= -1 (got -2)");
  expect_error(fmt::format("run -m {} -p hi -n lots", m), "--n-predict must be a whole number (got 'lots')");
  expect_error(fmt::format("run -m {} -p hi -n 99999999999", m), "--n-predict must be <= 2147483647");
  expect_error(fmt::format("run -m {} -p hi -t 0", m), "--threads must be >= 1 (got 0)");
  expect_error(fmt::format("run -m {} -p hi -t -3", m), "--threads must be >= 1 (got -3)");
  expect_error(fmt::format("run -m {} -p hi -c -1", m), "--ctx-size must be >= 0 (got -1)");
  expect_error(fmt::format("run -m {} -p hi --temp -1", m), "--temp must be >= 0 (got -1)");
  expect_error(fmt::format("run -m {} -p hi --top-p 2", m), "--top-p must be between 0 and 1 (got 2)");
  expect_error(fmt::format("perplexity -m {} -f {} -b 0", m, m), "--batch-size must be >= 1 (got 0)");
  expect_error(fmt::format("serve -m {} --max-batch 0", m), "--max-batch must be >= 1 (got 0)");
}

TEST_CASE("-n -1 generates until the context is full, as in llama.cpp") {
  const RunResult r = run_strata(fmt::format("run -m {} -p hi -n -1 --ignore-eos --json", cli_model()), true);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.output);
  CHECK(j["stats"]["context_full"] == true);
  CHECK(j["stats"]["n_ctx"] == strata::test::kCliModelCtx);
}

TEST_CASE("llama.cpp spellings: -ngl, --ctx-size, -s/--seed, --no-display-prompt, -no-cnv, info -m") {
  const std::string m = cli_model();
  // -ngl is not "-n gl": accepted, with one line saying the layers stay on the CPU.
  RunResult r = expect_ok(fmt::format("run -m {} -p hi -n 2 -ngl 99", m));
  CHECK(r.output.find("no GPU tier yet; all layers run on the CPU") != std::string::npos);
  r = expect_ok(fmt::format("run -m {} -p hi -n 2 -ngl=99 -no-cnv", m));
  CHECK(r.output.find("no GPU tier yet") != std::string::npos);
  // --ctx-size and -c are one flag; -s and --seed too (same seed, same sampled text).
  const RunResult a = run_strata(fmt::format("run -m {} -p hi -n 8 --ctx-size 32 -s 7 --temp 1 --json", m), true);
  const RunResult b = run_strata(fmt::format("run -m {} -p hi -n 8 -c 32 --seed 7 --temp 1 --json", m), true);
  REQUIRE(a.status == 0);
  REQUIRE(b.status == 0);
  const auto ja = nlohmann::json::parse(a.output), jb = nlohmann::json::parse(b.output);
  CHECK(ja["token_ids"] == jb["token_ids"]);
  CHECK(ja["stats"]["n_ctx"] == 32);
  CHECK(jb["stats"]["n_ctx"] == 32);
  // The prompt is shown before its continuation unless --no-display-prompt.
  r = run_strata(fmt::format("run -m {} -p \"Once upon\" -n 2", m), /*stdout_only=*/true);
  CHECK(r.status == 0);
  CHECK(r.output.starts_with("Once upon"));
  r = run_strata(fmt::format("run -m {} -p \"Once upon\" -n 2 --no-display-prompt", m), true);
  CHECK(r.status == 0);
  CHECK_FALSE(r.output.starts_with("Once upon"));
  // info takes -m as every other command does, and says the same.
  CHECK(expect_ok("info -m " + m).output == expect_ok("info " + m).output);
  // llama.cpp options strata has no equivalent for are named, not misparsed as "-f a".
  expect_error(fmt::format("run -m {} -p hi -fa", m), "-fa is a llama.cpp option (flash attention) that strata does not have");
}

TEST_CASE("an unknown command lists the commands") {
  expect_error("frobnicate", "unknown command 'frobnicate'; the commands are: info, tokenize, template, run");
}

TEST_CASE("more threads than cores: one warning, the real count used") {
  const RunResult r = expect_ok(fmt::format("run -m {} -p hi -n 1 -t 1000", cli_model()));
  CHECK(r.output.find("-t 1000 is more threads than this machine has") != std::string::npos);
}

TEST_CASE("streaming flags without a budget, and an empty budget, are errors") {
  const std::string m = cli_model();
  expect_error(fmt::format("run -m {} -p hi --io pread", m), "--io only applies when streaming: add --memory-budget");
  expect_error(fmt::format("run -m {} -p hi --sqpoll", m), "--sqpoll only applies when streaming");
  expect_error(fmt::format("run -m {} -p hi --queue-depth 8", m), "--queue-depth only applies when streaming");
  expect_error(fmt::format("run -m {} -p hi --memory-budget \"\"", m), "--memory-budget '': expected a size");
  expect_error(fmt::format("perplexity -m {} -f {} --io mmap", m, m), "--io only applies when streaming");
}

TEST_CASE("synth --size smaller than one layer is refused, naming the smallest size") {
  const std::string out = (strata::test::cli_temp_dir() / "small.gguf").string();
  expect_error(fmt::format("synth -o {} --size 1K", out), "is smaller than the smallest model of this shape");
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("a budget above what the model needs is trimmed to it, with one line") {
  const std::string m = cli_moe_model();
  const RunResult r = expect_ok(fmt::format("run -m {} -p hi -n 2 --memory-budget 16G --json", m));
  CHECK(r.output.find("--memory-budget 16.0 GiB is more than this model needs; using") != std::string::npos);
  // stdout's one JSON line among stderr's lines.
  const size_t at = r.output.find("\n{") + 1;
  const auto j = nlohmann::json::parse(r.output.substr(at, r.output.find('\n', at) - at));
  const auto budget = j["stats"]["streaming"]["memory_budget"].get<uint64_t>();
  CHECK(budget > 0);
  CHECK(budget <= std::filesystem::file_size(m) + (1 << 20));
}
