// `strata bench`: run the built binary on tiny reference models and check the rows it prints
// (llama-bench's fields and forms), its flag errors and the streamed mode's array.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "models/gguf/gguf.h"
#include "tests/shared_data.h"
#include "tests/tools/run_strata.h"

using nlohmann::json;

namespace {

using strata::test::RunResult;
using strata::test::run_strata;

std::string model_path(const std::filesystem::path& shared, const char* name) {
  return (shared / "models" / name).string();
}

json bench_json(const std::string& args) {
  RunResult r = run_strata("bench " + args, true);
  REQUIRE_MESSAGE(r.status == 0, run_strata("bench " + args).output);
  json j = json::parse(r.output);
  REQUIRE(j.is_array());
  return j;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// The cells of a markdown table line, trimmed.
std::vector<std::string> md_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::string cur;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '|') {
      const size_t b = cur.find_first_not_of(' '), e = cur.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cur.substr(b, e - b + 1));
      cur.clear();
    } else {
      cur += line[i];
    }
  }
  return cells;
}

// A CSV line whose every field is quoted ("" inside a field is one quote).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    REQUIRE(line[i] == '"');
    std::string f;
    for (++i; i < line.size(); ++i) {
      if (line[i] == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        f += '"';
        ++i;
      } else if (line[i] == '"') {
        break;
      } else {
        f += line[i];
      }
    }
    out.push_back(f);
    i += 2;  // closing quote and comma
  }
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("bench: comma lists give one row per test and thread count, in llama-bench's order") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string m = model_path(shared, "stories260K-w256-q4_0.gguf");
  json rows = bench_json(fmt::format("-m \"{}\" -p 8,16 -n 4,2 -t 1,2 -r 1 -o json", m));
  REQUIRE(rows.size() == 8);
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int expect_threads[] = {1, std::min(2, hw)};
  const int expect_prompt[] = {8, 16, 0, 0}, expect_gen[] = {0, 0, 4, 2};
  for (size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    CHECK(rows[i]["n_threads"] == expect_threads[i / 4]);
    CHECK(rows[i]["n_prompt"] == expect_prompt[i % 4]);
    CHECK(rows[i]["n_gen"] == expect_gen[i % 4]);
    CHECK(rows[i]["n_reps"] == 1);
    CHECK(rows[i]["samples_ns"].size() == 1);
  }

  // -p 0 drops the pp test; --json is -o json; -r counts the samples.
  json tg_only = bench_json(fmt::format("-m \"{}\" -p 0 -n 3 -r 2 -t 1 --json", m));
  REQUIRE(tg_only.size() == 1);
  CHECK(tg_only[0]["n_prompt"] == 0);
  CHECK(tg_only[0]["n_gen"] == 3);
  CHECK(tg_only[0]["samples_ts"].size() == 2);
  CHECK(tg_only[0]["n_reps"] == 2);
}

TEST_CASE("bench: every llama-bench field is present with its type") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string m = model_path(shared, "stories260K-w256-q4_0.gguf");
  json rows = bench_json(fmt::format("-m \"{}\" -p 8 -n 4 -r 2 -t 1 -o json", m));
  REQUIRE(rows.size() == 2);
  auto f = strata::gguf::GGUFFile::open(m);
  uint64_t size = 0, params = 0;
  for (const auto& t : f.tensors()) size += t.nbytes, params += uint64_t(t.n_elements);
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
  for (const json& r : rows) {
    CAPTURE(r.dump());
    for (const char* k : {"build_commit", "cpu_info", "backends", "model_filename", "model_type", "test_time"})
      CHECK_MESSAGE(r[k].is_string(), k);
    for (const char* k : {"build_number", "model_size", "model_n_params", "n_batch", "n_threads", "n_gpu_layers",
                          "n_prompt", "n_gen", "avg_ns", "stddev_ns", "n_reps"})
      CHECK_MESSAGE(r[k].is_number_integer(), k);
    for (const char* k : {"avg_ts", "stddev_ts", "median_ts"}) CHECK_MESSAGE(r[k].is_number(), k);
    for (const char* k : {"samples_ns", "samples_ts"}) {
      REQUIRE_MESSAGE(r[k].is_array(), k);
      CHECK(r[k].size() == 2);
    }
    for (const json& x : r["samples_ns"]) CHECK(x.is_number_integer());
    for (const json& x : r["samples_ts"]) CHECK(x.get<double>() > 0);
    CHECK(!r["build_commit"].get<std::string>().empty());
    CHECK(r["backends"] == "CPU");
    CHECK(r["n_gpu_layers"] == 0);
    CHECK(r["n_batch"] == 1);
    CHECK(r["model_filename"] == m);
    CHECK(r["model_size"] == size);
    CHECK(r["model_n_params"] == params);
    CHECK(std::regex_match(r["test_time"].get<std::string>(), iso));
    CHECK(r["avg_ns"].get<double>() > 0);
    // avg_ts is the mean of the per-run rates.
    const double mean_ts = (r["samples_ts"][0].get<double>() + r["samples_ts"][1].get<double>()) / 2;
    CHECK(r["avg_ts"].get<double>() == doctest::Approx(mean_ts));
  }
}

TEST_CASE("bench: model_type reads like llama-bench's") {
  STRATA_REQUIRE_SHARED(shared);
  struct Case {
    const char* file;
    const char* type;  // the file type part
  } cases[] = {{"stories260K-w256-q4_0.gguf", " Q4_0"},
               {"stories260K-w256-q4_k_m.gguf", " Q4_K - Medium"},
               {"stories260K-w256-moe8x2-q8_0.gguf", " Q8_0"},
               // No general.file_type: the tensor type with the most bytes.
               {"stories260K-f32.gguf", " F32"}};
  for (const Case& c : cases) {
    CAPTURE(c.file);
    json rows = bench_json(fmt::format("-m \"{}\" -p 0 -n 1 -r 1 -t 1 -o json", model_path(shared, c.file)));
    REQUIRE(rows.size() == 1);
    const std::string type = rows[0]["model_type"];
    CHECK(type.starts_with("llama "));
    CHECK(type.ends_with(c.type));
    if (std::string(c.file) == "stories260K-f32.gguf") CHECK(type == "llama 293K F32");  // 292800 parameters
  }
}

TEST_CASE("bench: md, csv and jsonl forms") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string m = model_path(shared, "stories260K-w256-q4_0.gguf");
  const std::string common = fmt::format("bench -m \"{}\" -p 8 -n 4,2 -r 1 -t 1", m);

  RunResult md = run_strata(common, true);
  REQUIRE_MESSAGE(md.status == 0, md.output);
  std::vector<std::string> table;
  for (const auto& l : lines_of(md.output))
    if (l.starts_with("|")) table.push_back(l);
  REQUIRE(table.size() == 5);  // header, separator, three tests
  CHECK(md_cells(table[0]) == std::vector<std::string>{"model", "size", "params", "backend", "threads", "test", "t/s"});
  for (const auto& cell : md_cells(table[1])) CHECK(cell.find_first_not_of("-:") == std::string::npos);
  const char* tests[] = {"pp8", "tg4", "tg2"};
  for (int i = 0; i < 3; ++i) {
    const auto cells = md_cells(table[2 + i]);
    REQUIRE(cells.size() == 7);
    CHECK(contains(cells[0], "Q4_0"));
    CHECK(contains(cells[1], "KiB"));
    CHECK(cells[3] == "CPU");
    CHECK(cells[4] == "1");
    CHECK(cells[5] == tests[i]);
    CHECK(contains(cells[6], " ± "));
  }
  CHECK(contains(md.output, "build: "));

  RunResult jsonl = run_strata(common + " -o jsonl", true);
  REQUIRE_MESSAGE(jsonl.status == 0, jsonl.output);
  const auto jl = lines_of(jsonl.output);
  REQUIRE(jl.size() == 3);
  for (int i = 0; i < 3; ++i) {
    json r = json::parse(jl[i]);
    CHECK(r.is_object());
    CHECK(r["n_gen"] == (i == 0 ? 0 : i == 1 ? 4 : 2));
  }

  RunResult csv = run_strata(common + " -o csv", true);
  REQUIRE_MESSAGE(csv.status == 0, csv.output);
  const auto cl = lines_of(csv.output);
  REQUIRE(cl.size() == 4);
  const auto head = csv_fields(cl[0]);
  CHECK(head.front() == "build_commit");
  const auto col = [&](const char* name) {
    const auto it = std::find(head.begin(), head.end(), name);
    REQUIRE_MESSAGE(it != head.end(), name);
    return size_t(it - head.begin());
  };
  for (int i = 1; i < 4; ++i) {
    const auto f = csv_fields(cl[i]);
    REQUIRE(f.size() == head.size());
    CHECK(f[col("n_prompt")] == (i == 1 ? "8" : "0"));
    CHECK(contains(f[col("model_type")], "Q4_0"));
    CHECK(std::stod(f[col("avg_ts")]) > 0);
  }
}

TEST_CASE("bench: flag errors name the flag and exit non-zero") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string m = model_path(shared, "stories260K-w256-q4_0.gguf");
  struct Case {
    const char* args;
    std::vector<const char*> say;
  } cases[] = {
      {"-r 0", {"--reps", "must be >= 1 (got 0)"}},
      {"-t 0", {"--threads", "must be >= 1 (got 0)"}},
      {"-t -3", {"--threads", "must be >= 1 (got -3)"}},
      {"-t 1,0", {"--threads", "must be >= 1 (got 0)"}},
      {"-p 64,x", {"--n-prompt", "must be a whole number (got 'x')"}},
      {"-n -1", {"--n-gen", "must be >= 0 (got -1)"}},
      {"-o xml", {"--output", "xml"}},
      {"-b 2", {"-b/--batch only applies when streaming: add --memory-budget SIZE"}},
      {"--io pread", {"--io only applies when streaming"}},
      {"-p 0 -n 0", {"nothing to measure"}},
      {"--json -o csv", {"--json and -o csv disagree"}},
      {"--memory-budget 4M -p 64", {"-p/--n-prompt", "decode only"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    // Each is refused before anything runs: no -r 1 needed to keep them fast.
    RunResult r = run_strata(fmt::format("bench -m \"{}\" {}", m, c.args));
    CHECK(r.status != 0);
    for (const char* s : c.say) CHECK_MESSAGE(contains(r.output, s), r.output);
    CHECK(!contains(r.output, "| model"));
  }
}

TEST_CASE("bench: --n-gpu-layers is accepted, said to do nothing, and rows record 0") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string m = model_path(shared, "stories260K-w256-q4_0.gguf");
  for (const char* flag : {"--n-gpu-layers 99", "-ngl 99"}) {
    CAPTURE(flag);
    RunResult both = run_strata(fmt::format("bench -m \"{}\" -p 0 -n 2 -r 1 -t 1 {} -o json", m, flag));
    REQUIRE_MESSAGE(both.status == 0, both.output);
    CHECK(contains(both.output, "strata: -ngl 99: "));
    CHECK(contains(both.output, "all layers run on the CPU\n"));
    json rows = bench_json(fmt::format("-m \"{}\" -p 0 -n 2 -r 1 -t 1 {} -o json", m, flag));
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["n_gpu_layers"] == 0);
  }
}

TEST_CASE("bench --memory-budget: a llama-bench array whose tg rows carry the streaming figures") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string m = model_path(shared, "stories260K-w256-moe8x2-q8_0.gguf");
  json rows = bench_json(fmt::format("-m \"{}\" --memory-budget 4M -n 2 -b 1,2 -r 2 -t 1 -o json", m));
  REQUIRE(rows.size() == 2);
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& r = rows[i];
    CAPTURE(r.dump());
    CHECK(r["n_batch"] == int(i) + 1);
    CHECK(r["n_prompt"] == 0);
    CHECK(r["n_gen"] == 2);
    CHECK(r["n_threads"] == 1);
    CHECK(r["model_type"].get<std::string>().ends_with(" Q8_0"));
    CHECK(r["samples_ns"].size() == 2);
    for (const char* k : {"build_commit", "build_number", "cpu_info", "backends", "model_size", "model_n_params",
                          "n_gpu_layers", "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ts",
                          "median_ts", "n_reps"})
      CHECK_MESSAGE(r.contains(k), k);
    for (const char* k : {"ratio_to_floor", "floor_s_per_token", "raw_gbps", "read_gbps", "hit_rate_expert",
                          "disk_busy", "memory_budget", "peak_rss_bytes"})
      CHECK_MESSAGE(r[k].is_number(), k);
    CHECK(r["bytes_read_per_token"].get<double>() > 0);
    CHECK(r["raw_gbps"].get<double>() > 0);
    CHECK(r["ratio_to_floor"].get<double>() > 0);
    CHECK(r["io"] == "uring");
    CHECK(r["memory_budget"].get<uint64_t>() <= 4u << 20);
    // Tokens of all timed repetitions: n_gen x batch x reps.
    CHECK(r["tokens"] == 2 * (int(i) + 1) * 2);
  }

  RunResult md = run_strata(fmt::format("bench -m \"{}\" --memory-budget 4M -n 2 -r 1 -t 1", m), true);
  REQUIRE_MESSAGE(md.status == 0, md.output);
  const auto head = md_cells(lines_of(md.output).at(0));
  for (const char* col : {"n_batch", "budget", "io", "test", "t/s", "read/token", "floor ratio", "roofline ratio"})
    CHECK_MESSAGE(std::find(head.begin(), head.end(), col) != head.end(), col);
  CHECK(contains(md.output, "raw O_DIRECT reads"));
  CHECK(contains(md.output, "the run's pattern (whole units, random order)"));

  // With the resident compute time given, the roofline is the slower of disk and CPU.
  RunResult rj = run_strata(
      fmt::format("bench -m \"{}\" --memory-budget 4M -n 2 -r 1 -t 1 -o json --compute-s-per-token 5", m), true);
  REQUIRE_MESSAGE(rj.status == 0, rj.output);
  const json row = json::parse(rj.output).at(0);
  CHECK(row["raw_unit_gbps"].get<double>() > 0);
  CHECK(row["compute_s_per_token"] == 5.0);
  CHECK(row["roofline_s_per_token"].get<double>() == doctest::Approx(std::max(5.0, row["floor_s_per_token"].get<double>())));
  CHECK(row["ratio_to_roofline"].get<double>() ==
        doctest::Approx(row["avg_ts"].get<double>() * row["roofline_s_per_token"].get<double>()).epsilon(0.05));
  // Without it there is no roofline to compare with, and the row says so.
  CHECK(json::parse(run_strata(fmt::format("bench -m \"{}\" --memory-budget 4M -n 2 -r 1 -t 1 -o json", m), true).output)
            .at(0)["ratio_to_roofline"]
            .is_null());
}
