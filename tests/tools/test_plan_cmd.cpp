// `strata plan` on a tiny synthesized MoE: the table, --json's keys and arithmetic, drives from a
// profile, and clear errors for what cannot be planned. --compute-s-per-token everywhere, so no
// test measures this CPU.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/tools/run_strata.h"

using namespace strata;
using nlohmann::json;

namespace {

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("strata_plan_cmd_" + std::to_string(::getpid()) + "_" + name)).string();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("strata plan predicts tokens/s and refuses what it cannot plan") {
  if (!std::filesystem::exists(test::strata_binary())) {
    MESSAGE("skipped: the strata binary is not built (", test::strata_binary(), ")");
    return;
  }
  const std::string model = tmp("moe.gguf");
  test::RunResult r = test::run_strata(fmt::format(
      "synth -o \"{}\" --arch mixtral --layers 2 --dim 256 --heads 4 --kv-heads 2 --experts 8 --used 2 --ffn 512 "
      "--vocab 300 --type q8_0",
      model));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::string base = fmt::format("plan -m \"{}\" --compute-s-per-token 0.001", model);

  // The JSON rows: one per budget and drive set, with every key the issue lists.
  r = test::run_strata(base + " --memory-budget 1M,2M,64M --drives 0.1 --sweep-drives 2 --json", true);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const json j = json::parse(r.output);
  CHECK(j["inputs"]["batch"] == 1);
  CHECK(j["inputs"]["compute_s_per_token"].get<double>() == doctest::Approx(0.001));
  REQUIRE(j["rows"].size() == 6);
  for (const char* k : {"budget_bytes", "n_drives", "drive_gbps", "batch", "cache_bytes", "hit_rate",
                        "read_bytes_per_token", "read_s", "compute_s", "tokens_per_s", "bound"})
    CHECK_MESSAGE(j["rows"][0].contains(k), k);
  const json& small = j["rows"][0];
  CHECK(small["budget_bytes"] == 1 << 20);
  CHECK(small["n_drives"] == 1);
  CHECK(small["read_bytes_per_token"].get<double>() > 0);
  CHECK(small["read_s"].get<double>() == doctest::Approx(small["read_bytes_per_token"].get<double>() / 0.1e9).epsilon(0.05));
  CHECK(small["bound"] == "drives");
  // 64M holds the whole model: nothing is read, compute binds.
  CHECK(j["rows"][2]["hit_rate"].get<double>() == doctest::Approx(1.0));
  CHECK(j["rows"][2]["bound"] == "compute");
  CHECK(j["rows"][2]["tokens_per_s"].get<double>() == doctest::Approx(1000.0));
  // More budget never reads more; two drives read in half the time.
  CHECK(j["rows"][1]["read_bytes_per_token"].get<double>() <= small["read_bytes_per_token"].get<double>());
  CHECK(j["rows"][3]["n_drives"] == 2);
  CHECK(j["rows"][3]["read_s"].get<double>() == doctest::Approx(small["read_s"].get<double>() / 2));

  // The table, and a batch that shares each read among its sequences.
  r = test::run_strata(base + " --memory-budget 1M --drives 0.1,0.05 --batch 4");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(contains(r.output, "tok/s"));
  CHECK(contains(r.output, "drive 2 (slowest drive)"));

  // Drives from a profile (strata iobench --save-profile's format).
  const std::string profile = tmp("profile.json");
  write(profile, R"({"format":"strata-drive-profile","version":1,"drives":[
    {"path":"/mnt/a","read_gbps":0.3,"latency_us":120,"queue_depth":16},
    {"path":"/mnt/b","read_gbps":0.1,"latency_us":90,"queue_depth":32}],"together_gbps":0.38})");
  r = test::run_strata(base + " --memory-budget 1M --profile \"" + profile + "\" --json", true);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const json p = json::parse(r.output);
  CHECK(p["rows"][0]["n_drives"] == 2);
  CHECK(p["rows"][0]["bound"] == "/mnt/b (slowest drive)");

  // The reuse model's inputs and outputs: more reuse reads less, exact predictions waste nothing,
  // a short run from a cold cache misses more than the steady state.
  auto row = [&](const std::string& flags) {
    const std::string budget = flags.find("--memory-budget") == std::string::npos ? " --memory-budget 2M" : "";
    test::RunResult x = test::run_strata(base + budget + " --drives 0.1 --json " + flags, true);
    REQUIRE_MESSAGE(x.status == 0, x.output);
    return json::parse(x.output);
  };
  const json d = row("");
  CHECK(d["inputs"]["reuse"].get<double>() == doctest::Approx(0.70));
  CHECK(d["inputs"]["reuse_source"] == "default");
  CHECK(d["inputs"]["prefetch_accuracy"].get<double>() == doctest::Approx(0.70));
  const json& d0 = d["rows"][0];
  CHECK(d0["expert_cache_per_layer"].get<double>() > 0);
  CHECK(d0["expert_cache_per_layer"].get<double>() < 8);
  CHECK(d0["wasted_bytes_per_token"].get<double>() > 0);
  CHECK(d0["wasted_bytes_per_token"].get<double>() < d0["read_bytes_per_token"].get<double>());
  CHECK(row("--reuse 0.9")["rows"][0]["read_bytes_per_token"].get<double>() < d0["read_bytes_per_token"].get<double>());
  CHECK(row("--reuse 0.3")["rows"][0]["read_bytes_per_token"].get<double>() > d0["read_bytes_per_token"].get<double>());
  CHECK(row("--prefetch-accuracy 1")["rows"][0]["wasted_bytes_per_token"].get<double>() == 0);
  // First uses only add misses (speculative reads aside: a short run guesses among fewer experts).
  // (At 4M a layer caches 3 of its 8 experts, more than a step uses: the cold start shows.)
  CHECK(row("--memory-budget 4M --tokens 12 --prefetch-accuracy 1")["rows"][0]["read_bytes_per_token"].get<double>() >
        1.05 * row("--memory-budget 4M --prefetch-accuracy 1")["rows"][0]["read_bytes_per_token"].get<double>());
  CHECK(row("--reuse 0.5")["inputs"]["reuse_source"] == "--reuse");

  // zipf routing is accepted.
  r = test::run_strata(base + " --memory-budget 1M --drives 0.1 --routing zipf:0.8");
  CHECK_MESSAGE(r.status == 0, r.output);

  SUBCASE("bad input") {
    r = test::run_strata(base + " --memory-budget 1M");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(r.output, "no drives: give --drives"), r.output);

    r = test::run_strata(base + " --memory-budget 64K --drives 0.1");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(r.output, "--memory-budget 64.0 KiB: below this model's minimum"), r.output);

    r = test::run_strata(base + " --memory-budget 1M --profile /nonexistent/profile.json");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(r.output, "--profile /nonexistent/profile.json: cannot open"), r.output);

    const std::string bad = tmp("bad.json");
    write(bad, "{\"format\":\"strata-drive-profile\",\"version\":1,\"drives\":[{\"path\":\"/a\",\"latency_us\":5}]}");
    r = test::run_strata(base + " --memory-budget 1M --profile \"" + bad + "\"");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(r.output, "drives[0].read_gbps is missing"), r.output);
    write(bad, "not json");
    r = test::run_strata(base + " --memory-budget 1M --profile \"" + bad + "\"");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(r.output, "not a drive profile"), r.output);
    std::filesystem::remove(bad);

    r = test::run_strata(base + " --memory-budget 1M --drives 0.1 --reuse 1.5");
    CHECK(r.status != 0);
    CHECK_MESSAGE(contains(r.output, "--reuse"), r.output);

    r = test::run_strata(base + " --memory-budget 1M --drives 0.1 --routing pareto");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(r.output, "--routing must be uniform or zipf:S"), r.output);

    r = test::run_strata(base + " --memory-budget 1M --drives 0.1 --profile \"" + profile + "\"");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(r.output, "not both"), r.output);
  }

  SUBCASE("png") {
    const std::string png = tmp("plan.png");
    r = test::run_strata(base + " --memory-budget 1M,2M,4M --drives 0.1 --png \"" + png + "\"");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    if (contains(r.output, "gnuplot is not installed")) {
      CHECK(!std::filesystem::exists(png));
    } else {
      REQUIRE(std::filesystem::exists(png));
      CHECK(std::filesystem::file_size(png) > 1000);
      std::filesystem::remove(png);
    }
  }
  std::filesystem::remove(profile);
  std::filesystem::remove(model);
}
