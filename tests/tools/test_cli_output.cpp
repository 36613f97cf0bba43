// What the commands print: the context limit (default, warning, stop message), perplexity as
// llama.cpp prints it, NaN weights named by layer, binary units, run --json's shape, valid
// UTF-8 from a random model, and the demo saying what it shows.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "models/gguf/gguf.h"
#include "tests/shared_data.h"
#include "tests/tools/cli_model.h"
#include "tests/tools/run_strata.h"

using strata::test::cli_model;
using strata::test::cli_moe_model;
using strata::test::kCliModelCtx;
using strata::test::run_strata;
using strata::test::RunResult;
using nlohmann::json;

namespace {

strata::test::CliTempCleanup cleanup;

// A text file of about n words for perplexity.
std::string text_file(int words) {
  const std::string p = (strata::test::cli_temp_dir() / fmt::format("text-{}.txt", words)).string();
  std::ofstream f(p);
  for (int i = 0; i < words; ++i) f << (i % 7 == 0 ? "the " : i % 5 == 0 ? "cat sat. " : "on a mat ");
  return p;
}

// Every byte sequence is valid UTF-8 (RFC 3629 lead and continuation bytes, no overlongs).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 && c >= 0xC2 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

}  // namespace

TEST_CASE("the context defaults to the trained length and generation stops there, saying so") {
  const RunResult r = run_strata(fmt::format("run -m {} -p hi -n 1000000 --ignore-eos", cli_model()));
  CAPTURE(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find(fmt::format("the context of {} positions is full", kCliModelCtx)) != std::string::npos);
  const RunResult j = run_strata(fmt::format("run -m {} -p hi -n 1000000 --ignore-eos --json", cli_model()), true);
  const json o = json::parse(j.output);
  CHECK(o["stats"]["n_ctx"] == kCliModelCtx);
  CHECK(o["stats"]["context_full"] == true);
  // Prompt + generated tokens fill the context and go no further.
  CHECK(o["stats"]["prompt_tokens"].get<int>() + o["stats"]["gen_tokens"].get<int>() == kCliModelCtx);
}

TEST_CASE("a context beyond the trained length warns; a prompt longer than the context is an error") {
  const std::string m = cli_model();
  RunResult r = run_strata(fmt::format("run -m {} -p hi -n 2 -c 4096", m));
  CAPTURE(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find(fmt::format("--ctx-size 4096 is beyond the {} tokens this model was trained on", kCliModelCtx)) !=
        std::string::npos);
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "the cat ";
  const std::string p = (strata::test::cli_temp_dir() / "long-prompt.txt").string();
  std::ofstream(p) << long_prompt;
  r = run_strata(fmt::format("run -m {} -f {} -n 2", m, p));
  CAPTURE(r.output);
  CHECK(r.status != 0);
  CHECK(std::regex_search(r.output, std::regex("the prompt has [0-9]+ tokens but the context holds 64 \\(the model's trained length\\)")));
}

TEST_CASE("perplexity: trained-length window by default, running values, llama.cpp's final line") {
  const std::string m = cli_model(), text = text_file(2000);
  const RunResult j = run_strata(fmt::format("perplexity -m {} -f {} --json", m, text), true);
  REQUIRE_MESSAGE(j.status == 0, j.output);
  const json o = json::parse(j.output);
  CHECK(o["n_ctx"] == kCliModelCtx);  // not 512 on a 64-token model
  const RunResult t = run_strata(fmt::format("perplexity -m {} -f {}", m, text), true);
  REQUIRE(t.status == 0);
  CAPTURE(t.output);
  CHECK(t.output.starts_with("[1]"));
  CHECK(t.output.find(fmt::format("[{}]", o["n_chunks"].get<int>())) != std::string::npos);
  std::smatch sm;
  REQUIRE(std::regex_search(t.output, sm, std::regex("Final estimate: PPL = ([0-9.]+) \\+/- ([0-9.]+)")));
  CHECK(std::stod(sm[1]) == doctest::Approx(o["ppl"].get<double>()).epsilon(1e-3));
  CHECK(std::stod(sm[2]) == doctest::Approx(o["ppl_stderr"].get<double>()).epsilon(1e-2));
  // The running value after the last chunk is the final estimate.
  const auto running = o["running_ppl"];
  CHECK(running.back().get<double>() == doctest::Approx(o["ppl"].get<double>()));
}

TEST_CASE("weights that produce NaN are an error naming the first layer where it appeared") {
  // Poison one weight of layer 1's attention norm in a copy of the tiny f32 model.
  const std::string src = cli_model();
  const std::string bad = (strata::test::cli_temp_dir() / "nan.gguf").string();
  std::filesystem::copy_file(src, bad, std::filesystem::copy_options::overwrite_existing);
  {
    const auto f = strata::gguf::GGUFFile::open(bad);
    const auto& t = f.require_tensor("blk.1.attn_norm.weight", "test");
    REQUIRE(t.type == strata::compute::DType::F32);
    std::fstream io(bad, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(t.offset + 4 * 3));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    io.write(reinterpret_cast<const char*>(&nan), sizeof nan);
  }
  RunResult r = run_strata(fmt::format("perplexity -m {} -f {}", bad, text_file(400)));
  CAPTURE(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("became NaN or infinite in layer 1 (attention: blk.1.*)") != std::string::npos);
  CHECK(r.output.find("-nan") == std::string::npos);  // no "perplexity: -nan"
  CHECK(r.output.find("Final estimate") == std::string::npos);
  r = run_strata(fmt::format("run -m {} -p hi -n 4", bad));
  CHECK(r.status == 1);
  CHECK(r.output.find("in layer 1") != std::string::npos);
  // The untouched model is fine.
  CHECK(run_strata(fmt::format("run -m {} -p hi -n 4", src)).status == 0);
}

TEST_CASE("human output uses binary units, never '0 MiB'") {
  const std::string m = cli_moe_model();
  const RunResult info = run_strata("info " + m);
  CHECK(info.status == 0);
  CHECK(std::regex_search(info.output, std::regex("total tensor bytes: +[0-9.]+ (KiB|MiB|GiB)")));
  CHECK_FALSE(std::regex_search(info.output, std::regex("[0-9] (MB|GB|kB)\\b")));
  // A 600 KiB budget (below 1 MiB) is printed as such, not as "budget 0 MiB"; the model's
  // minimum decides whether it runs, so only the wording is checked when it does.
  const RunResult run = run_strata(fmt::format("run -m {} -p hi -n 2 --memory-budget 3M", m));
  CAPTURE(run.output);
  REQUIRE(run.status == 0);
  CHECK(std::regex_search(run.output, std::regex("read [0-9.]+ (B|KiB|MiB)/token at [0-9.]+ (KiB|MiB|GiB)/s")));
  CHECK(std::regex_search(run.output, std::regex("budget [1-9][0-9.]* (KiB|MiB)")));
  CHECK(run.output.find(" MB") == std::string::npos);
}

TEST_CASE("run --json: id lists are *_ids, counts live under stats") {
  const RunResult r = run_strata(fmt::format("run -m {} -p hi -n 3 --json", cli_model()), true);
  REQUIRE(r.status == 0);
  const json o = json::parse(r.output);
  CHECK(o["prompt_ids"].is_array());
  CHECK(o["token_ids"].is_array());
  CHECK_FALSE(o.contains("prompt_tokens"));
  CHECK(o["stats"]["prompt_tokens"] == o["prompt_ids"].size());
  CHECK(o["stats"]["gen_tokens"] == o["token_ids"].size());
}

TEST_CASE("text from a random model reaches the terminal as valid UTF-8") {
  // Random weights pick byte tokens freely: raw, they would be invalid UTF-8.
  const RunResult r = run_strata(fmt::format("run -m {} -p hi -n 60 --ignore-eos --temp 1.5 --no-display-prompt",
                                             cli_moe_model()), true);
  REQUIRE(r.status == 0);
  CHECK(valid_utf8(r.output));
}

TEST_CASE("progress: a bar on a terminal, plain lines otherwise, for load, synth, perplexity and bench") {
  const std::string m = cli_model();
  // The quiet start (2 s) is set to 0 so that these short phases show their progress.
  const std::string lines = "STRATA_PROGRESS=lines STRATA_PROGRESS_AFTER=0 ";
  const std::string bin = strata::test::strata_binary();
  // Only stderr, where progress goes, with the environment in front.
  auto sh = [&](const std::string& env, const std::string& args) {
    return strata::test::run_shell(fmt::format("{} \"{}\" {} 2>&1 >/dev/null", env, bin, args));
  };
  RunResult r = sh(lines, fmt::format("run -m {} -p hi -n 2", m));
  CAPTURE(r.output);
  CHECK(r.status == 0);
  CHECK(std::regex_search(r.output, std::regex("loading: 100% \\([0-9.]+ KiB of [0-9.]+ KiB, .*/s  in [0-9.]+ s\\)")));
  const std::string out = (strata::test::cli_temp_dir() / "progress.gguf").string();
  r = sh(lines, fmt::format("synth -o {} --arch llama --layers 2 --dim 64 --heads 4 --kv-heads 2 --ffn 128 --vocab 300 --type f32 --buffered", out));
  CHECK(r.status == 0);
  CHECK(std::regex_search(r.output, std::regex("synth: 100% \\(")));
  r = sh(lines, fmt::format("perplexity -m {} -f {}", m, text_file(400)));
  CHECK(r.status == 0);
  CHECK(std::regex_search(r.output, std::regex("perplexity: 100% \\([0-9]+ of [0-9]+ chunks")));
  r = sh(lines, fmt::format("bench -m {} -p 8 -n 4 -r 2", m));
  CHECK(r.status == 0);
  CHECK(std::regex_search(r.output, std::regex("bench: 100% \\(4 of 4 runs")));
  // The terminal form redraws one line in place.
  r = sh("STRATA_PROGRESS=1 STRATA_PROGRESS_AFTER=0", fmt::format("run -m {} -p hi -n 2", m));
  CHECK(r.output.find("\rloading  [") != std::string::npos);
  // Off by default for phases under two seconds, and with STRATA_PROGRESS=0.
  CHECK(sh("", fmt::format("run -m {} -p hi -n 2", m)).output.find("loading") == std::string::npos);
  CHECK(sh("STRATA_PROGRESS=0 STRATA_PROGRESS_AFTER=0", fmt::format("run -m {} -p hi -n 2", m)).output.find("loading") ==
        std::string::npos);
}
