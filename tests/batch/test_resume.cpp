// Exactly once under kill -9: `strata batch` on 60 requests is killed with SIGKILL at 10 random
// points (record writes are split in two halves 20 ms apart, so some kills tear a line), resumed
// each time, and finally run to the end. The output must hold every custom_id once, each record
// byte-identical to an uninterrupted run's, with no torn line.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "tests/batch/batch_test_util.h"

using namespace strata::test;

// Removes the temp folder (model included) when the test process ends.
static CliTempCleanup cleanup;

TEST_CASE("kill -9 at random points, resume, and every custom_id is answered once, as uninterrupted") {
  const std::string model = batch_model();
  const std::string dir = batch_dir("resume");
  const std::string input = dir + "/in.jsonl";
  write_text(input, valid_requests(60));

  const RunResult ref = run_batch(fmt::format("-m {} -i {} -o {}/ref.jsonl --max-batch 4 -t 1", model, input, dir));
  REQUIRE_MESSAGE(ref.status == 0, ref.output);
  const auto expected = records_by_id(read_text(dir + "/ref.jsonl"));
  REQUIRE(expected.size() == 60);

  const std::string out = dir + "/out.jsonl";
  const std::vector<std::string> args = {"-m", model, "-i", input, "-o", out, "--max-batch", "4", "-t", "1",
                                         "--created", "1700000000"};
  const std::vector<std::string> env = {"STRATA_PROGRESS=0", "STRATA_BATCH_SPLIT_WRITES=20"};
  std::mt19937 rng(20261202);
  // Kill points: the first during start-up; the others once the output has grown by 1 to 7
  // records since the last kill, plus 0-25 ms, so the ten spread over the whole job and many
  // land inside a record's split write.
  std::uniform_int_distribution<size_t> grow(1, 7);
  std::uniform_real_distribution<double> jitter(0.0, 0.025);
  auto complete_lines = [&] {
    const std::string t = read_text(out);
    return size_t(std::count(t.begin(), t.end(), '\n'));
  };
  int torn = 0, killed_running = 0;
  size_t before = 0;
  for (int k = 0; k < 10; ++k) {
    const pid_t pid = spawn_batch(args, dir + "/kills.log", env);
    if (k > 0) {
      const size_t target = before + grow(rng);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (complete_lines() < target && std::chrono::steady_clock::now() < deadline && ::waitpid(pid, nullptr, WNOHANG) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(jitter(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) ++killed_running;
    const std::string text = read_text(out);
    if (!text.empty() && text.back() != '\n') ++torn;
    // Everything complete so far is a record of the reference, once.
    auto lines = lines_of(text);
    if (!text.empty() && text.back() != '\n') lines.pop_back();
    std::set<std::string> seen;
    for (const std::string& l : lines) {
      const auto j = nlohmann::json::parse(l);
      const std::string id = j["custom_id"];
      CHECK_MESSAGE(seen.insert(id).second, "written twice after kill ", k, ": ", id);
      CHECK(expected.at(id) == l);
    }
    CHECK(seen.size() >= before);  // a resume keeps what was complete
    before = seen.size();
  }
  const RunResult last = run_batch(fmt::format("-m {} -i {} -o {} --max-batch 4 -t 1", model, input, out));
  REQUIRE_MESSAGE(last.status == 0, last.output);
  const std::string text = read_text(out);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  const auto got = records_by_id(text);
  CHECK(got.size() == 60);
  CHECK(lines_of(text).size() == 60);
  for (const auto& [id, line] : expected) CHECK_MESSAGE((got.contains(id) && got.at(id) == line), id);
  MESSAGE(fmt::format("{} of 10 kills hit a running batch, {} left a torn last line, {} records before the last run",
                      killed_running, torn, before));
  CHECK(killed_running >= 5);
  CHECK(torn >= 1);  // the cut of a torn line was exercised
  // A resumed run that had a torn line says so.
  CHECK(read_text(dir + "/kills.log").find("dropped an incomplete last line") != std::string::npos);
}
