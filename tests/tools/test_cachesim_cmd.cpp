// The routing-trace path through the command line: `run` and `bench --memory-budget` write a
// trace with --trace-routing, `cachesim` replays it by experts or by bytes of the model, and
// each refuses what cannot work, naming the flag.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/routing_trace.h"
#include "tests/tools/run_strata.h"

using namespace strata;
using nlohmann::json;

namespace {

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("strata_cachesim_cmd_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("run and bench record routing traces that cachesim replays") {
  if (!std::filesystem::exists(test::strata_binary())) {
    MESSAGE("skipped: the strata binary is not built (", test::strata_binary(), ")");
    return;
  }
  const std::string model = tmp("moe.gguf"), dense = tmp("dense.gguf");
  const std::string run_trace = tmp("run.jsonl"), bench_trace = tmp("bench.jsonl");
  test::RunResult r = test::run_strata(fmt::format(
      "synth -o \"{}\" --arch mixtral --layers 3 --dim 128 --heads 4 --kv-heads 2 --experts 16 --used 2 --ffn 128 "
      "--vocab 300 --type q8_0 --zipf 1",
      model));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(contains(r.output, "zipf 1 routing"));

  // run: the prompt's step gives the first token, each further one takes a step of its own.
  r = test::run_strata(fmt::format("run -m \"{}\" -p \"once upon a time\" -n 4 --trace-routing \"{}\"", model, run_trace));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(contains(r.output, "routing trace: " + run_trace));
  runtime::RoutingTrace t = runtime::read_routing_trace(run_trace);
  CHECK(t.header.n_layer == 3);
  CHECK(t.header.n_expert == 16);
  CHECK(t.header.n_expert_used == 2);
  REQUIRE(t.records.size() == 3 * 4);  // 1 prompt step + 3 decode steps, 3 MoE layers each
  CHECK(t.records.front().n_tokens > 1);
  CHECK(t.records.back().n_tokens == 1);
  CHECK(t.records.back().step == 3);

  // bench --memory-budget: the untimed warm-up step, then n_gen steps per repetition.
  r = test::run_strata(fmt::format("bench -m \"{}\" --memory-budget 2M -n 6 -r 2 -t 1 --trace-routing \"{}\" -o json",
                                   model, bench_trace));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  t = runtime::read_routing_trace(bench_trace);
  REQUIRE(t.records.size() == 3 * (1 + 2 * 6));

  r = test::run_strata(fmt::format("cachesim -t \"{}\" --experts 4,16,48 --warmup 1 --json", bench_trace), true);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const json j = json::parse(r.output);
  CHECK(j["steps"] == 13);
  CHECK(j["accesses"].get<uint64_t>() >= 12 * 3 * 2);  // at least n_used distinct experts per visit
  REQUIRE(j["results"].size() == 3);
  for (const json& p : j["results"]) {
    CAPTURE(p.dump());
    CHECK(p["belady_hit_rate"].get<double>() >= p["lru_hit_rate"].get<double>());
    CHECK(p["belady_hit_rate"].get<double>() >= p["strata_hit_rate"].get<double>());
  }
  // All 48 experts fit: every rule misses only first uses.
  CHECK(j["results"][2]["strata_over_belady"].get<double>() == doctest::Approx(1.0));

  r = test::run_strata(fmt::format("cachesim -t \"{}\" -m \"{}\" --bytes 3M", bench_trace, model));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(contains(r.output, "Belady"));
  CHECK(contains(r.output, "strata/Belady"));
  CHECK(contains(r.output, "non-expert weights"));

  // Refusals name what is wrong.
  r = test::run_strata(fmt::format("cachesim -t \"{}\"", bench_trace));
  CHECK(r.status != 0);
  CHECK(contains(r.output, "--experts"));
  r = test::run_strata(fmt::format("cachesim -t \"{}\" --bytes 3M", bench_trace));
  CHECK(r.status != 0);
  CHECK(contains(r.output, "-m MODEL"));
  r = test::run_strata(fmt::format("cachesim -t \"{}\" --experts 4", model));
  CHECK(r.status != 0);
  CHECK(contains(r.output, model + ":1:"));
  REQUIRE(test::run_strata(fmt::format("synth -o \"{}\" --arch llama --layers 2 --dim 128 --heads 4 --kv-heads 2 --ffn "
                                       "128 --vocab 300 --type q8_0",
                                       dense))
              .status == 0);
  r = test::run_strata(fmt::format("cachesim -t \"{}\" -m \"{}\" --bytes 3M", bench_trace, dense));
  CHECK(r.status != 0);
  CHECK(contains(r.output, "is not the model"));
  r = test::run_strata(fmt::format("run -m \"{}\" -p hi -n 1 --trace-routing \"{}\"", dense, tmp("dense.jsonl")));
  CHECK(r.status != 0);
  CHECK(contains(r.output, "--trace-routing"));
  CHECK(contains(r.output, "dense"));
  r = test::run_strata(fmt::format("synth -o \"{}\" --routing sparse", tmp("never.gguf")));
  CHECK(r.status != 0);
  CHECK(contains(r.output, "--routing 'sparse'"));
  for (const auto& p : {model, dense, run_trace, bench_trace}) std::filesystem::remove(p);
}
