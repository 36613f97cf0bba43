// Sharding: the shard selection (--shard, Kubernetes and Slurm variables), and 3 shards + merge
// equal the unsharded run merged, byte for byte; merge refuses a missing or doubled record.
#include <doctest/doctest.h>

#include <map>
#include <optional>

#include "batch/shard.h"
#include "storage/error.h"
#include "tests/batch/batch_test_util.h"

using namespace strata;
using namespace strata::test;

// Removes the temp folder (model included) when the test process ends.
static CliTempCleanup cleanup;

namespace {

batch::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

}  // namespace

TEST_CASE("shard selection") {
  const auto none = env_of({});
  batch::Shard s = batch::resolve_shard(std::string("1/3"), 0, none);
  CHECK(s.index == 1);
  CHECK(s.count == 3);
  CHECK_FALSE(s.takes(0));
  CHECK(s.takes(1));
  CHECK(s.takes(4));
  CHECK(batch::resolve_shard(std::nullopt, 0, none).count == 1);
  CHECK_THROWS_WITH_AS(batch::resolve_shard(std::string("3/3"), 0, none), doctest::Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(batch::resolve_shard(std::string("x"), 0, none), doctest::Contains("expected I/N"), Error);
  CHECK_THROWS_AS(batch::resolve_shard(std::string("1/0"), 0, none), Error);

  s = batch::resolve_shard(std::nullopt, 4, env_of({{"JOB_COMPLETION_INDEX", "2"}}));
  CHECK(s.index == 2);
  CHECK(s.count == 4);
  CHECK(s.source == "JOB_COMPLETION_INDEX");
  s = batch::resolve_shard(std::nullopt, 0, env_of({{"JOB_COMPLETION_INDEX", "2"}, {"STRATA_BATCH_SHARDS", "5"}}));
  CHECK(s.count == 5);
  CHECK_THROWS_WITH_AS(batch::resolve_shard(std::nullopt, 0, env_of({{"JOB_COMPLETION_INDEX", "2"}})),
                       doctest::Contains("STRATA_BATCH_SHARDS"), Error);
  s = batch::resolve_shard(std::nullopt, 0,
                           env_of({{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_COUNT", "3"}}));
  CHECK(s.index == 2);
  CHECK(s.count == 3);
  CHECK_THROWS_AS(batch::resolve_shard(std::nullopt, 0, env_of({{"SLURM_ARRAY_TASK_ID", "x"}, {"SLURM_ARRAY_TASK_COUNT", "3"}})),
                  Error);
  // The flag wins over the environment.
  CHECK(batch::resolve_shard(std::string("0/2"), 0, env_of({{"JOB_COMPLETION_INDEX", "1"}})).index == 0);
  CHECK(batch::shard_path("out-{shard}.jsonl", s) == "out-2.jsonl");
}

TEST_CASE("3 shards + merge equal the unsharded run, byte for byte") {
  const std::string model = batch_model();
  const std::string dir = batch_dir("shard");
  const std::string input = dir + "/in.jsonl";
  // A few bad lines among the good ones, a blank line too: shards and merge must place them.
  std::string text = valid_requests(22);
  text += "{broken\n\n" + valid_requests(1) /* req-0 again: a duplicate */ + "[]\n";
  write_text(input, text);
  const std::string common = fmt::format("-m {} -i {} --max-batch 4 -t 1", model, input);

  RunResult r = run_batch(common + fmt::format(" -o {}/all.jsonl", dir));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  r = run_shell(fmt::format("\"{}\" batch merge -i {} -o {}/all-merged.jsonl {}/all.jsonl 2>&1", strata_binary(), input,
                            dir, dir));
  REQUIRE_MESSAGE(r.status == 0, r.output);

  // Shard 0 by flag, 1 as a Kubernetes Indexed Job pod, 2 as a Slurm array task (ids 1..3).
  r = run_batch(common + fmt::format(" --shard 0/3 -o {}/part-{{shard}}.jsonl", dir));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  r = run_batch(common + fmt::format(" -o {}/part-{{shard}}.jsonl", dir), "JOB_COMPLETION_INDEX=1 STRATA_BATCH_SHARDS=3");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  r = run_batch(common + fmt::format(" -o {}/part-{{shard}}.jsonl", dir),
                "SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=3");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  for (int i = 0; i < 3; ++i) CHECK(!read_text(fmt::format("{}/part-{}.jsonl", dir, i)).empty());

  const std::string parts = fmt::format("{0}/part-2.jsonl {0}/part-0.jsonl {0}/part-1.jsonl", dir);
  r = run_shell(fmt::format("\"{}\" batch merge -i {} -o {}/merged.jsonl {} 2>&1", strata_binary(), input, dir, parts));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::string merged = read_text(dir + "/merged.jsonl");
  CHECK(lines_of(merged).size() == 25);  // 22 + the duplicate + 2 bad lines (the blank one has none)
  CHECK(merged == read_text(dir + "/all-merged.jsonl"));
  // In input order: the first record is req-0's, the last the "[]" line's error.
  const auto ls = lines_of(merged);
  CHECK(nlohmann::json::parse(ls.front())["custom_id"] == "req-0");
  CHECK(nlohmann::json::parse(ls.back())["error"]["code"] == "invalid_line");

  // Merge checks: a missing shard, a doubled one.
  r = run_shell(fmt::format("\"{}\" batch merge -i {} -o {}/bad.jsonl {}/part-0.jsonl {}/part-1.jsonl 2>&1",
                            strata_binary(), input, dir, dir, dir));
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.output.find("have no record") != std::string::npos, r.output);
  r = run_shell(fmt::format("\"{}\" batch merge -i {} -o {}/bad.jsonl {} {}/part-1.jsonl 2>&1", strata_binary(), input,
                            dir, parts, dir));
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.output.find("doubled") != std::string::npos, r.output);
  CHECK_FALSE(std::filesystem::exists(dir + "/bad.jsonl"));
}
