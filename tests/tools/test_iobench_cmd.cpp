// `strata iobench` through the command line: fio-shaped JSON whose job and read keys include
// every key fio itself prints (compared with a real fio run when fio is installed), the table,
// directory targets, drives together, the model's unit sizes, the drive profile, and bad input
// refused by name.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/storage/read_test_support.h"
#include "tests/tools/run_strata.h"

using namespace strata;
using nlohmann::json;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Every key of `want` is in `have`, recursively into objects (not into "job options", which
// echoes the options each tool was given). Missing keys are listed as "path.key".
void missing_keys(const json& want, const json& have, const std::string& at, std::vector<std::string>& out) {
  for (auto it = want.begin(); it != want.end(); ++it) {
    if (!have.contains(it.key())) {
      out.push_back(at + it.key());
      continue;
    }
    if (it.value().is_object() && it.key() != "job options" && it.key() != "percentile")
      missing_keys(it.value(), have[it.key()], at + it.key() + ".", out);
  }
}

// The keys fio 3.33 prints (fio --output-format=json), for machines without fio.
json fio_reference_job() {
  json lat = {{"min", 0}, {"max", 0}, {"mean", 0}, {"stddev", 0}, {"N", 0}};
  json dir = {{"io_bytes", 0}, {"io_kbytes", 0}, {"bw_bytes", 0}, {"bw", 0}, {"iops", 0}, {"runtime", 0},
              {"total_ios", 0}, {"short_ios", 0}, {"drop_ios", 0}, {"slat_ns", lat}, {"clat_ns", lat},
              {"lat_ns", lat}, {"bw_min", 0}, {"bw_max", 0}, {"bw_agg", 0}, {"bw_mean", 0}, {"bw_dev", 0},
              {"bw_samples", 0}, {"iops_min", 0}, {"iops_max", 0}, {"iops_mean", 0}, {"iops_stddev", 0},
              {"iops_samples", 0}};
  return {{"jobname", ""}, {"groupid", 0}, {"error", 0}, {"eta", 0}, {"elapsed", 0}, {"job options", json::object()},
          {"read", dir}, {"write", dir}, {"trim", dir}, {"sync", {{"total_ios", 0}, {"lat_ns", lat}}},
          {"job_runtime", 0}, {"usr_cpu", 0}, {"sys_cpu", 0}, {"ctx", 0}, {"majf", 0}, {"minf", 0},
          {"iodepth_level", {{"1", 0}, {"2", 0}, {"4", 0}, {"8", 0}, {"16", 0}, {"32", 0}, {">=64", 0}}},
          {"iodepth_submit", json::object()}, {"iodepth_complete", json::object()},
          {"latency_ns", json::object()}, {"latency_us", json::object()}, {"latency_ms", json::object()},
          {"latency_depth", 0}, {"latency_target", 0}, {"latency_percentile", 0}, {"latency_window", 0}};
}

}  // namespace

TEST_CASE("iobench: fio's JSON keys, the table, the profile") {
  if (!std::filesystem::exists(test::strata_binary())) {
    MESSAGE("skipped: the strata binary is not built (", test::strata_binary(), ")");
    return;
  }
  test::ScratchDir dir;
  const std::string f = dir.pattern_file("drive.bin", 16 << 20);
  test::RunResult r = test::run_strata(
      fmt::format("iobench \"{}\" --bs 4K,1M --qd 1,4 --runtime 0.3 --json", f), true);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const json j = json::parse(r.output);
  CHECK(j["fio version"].get<std::string>().starts_with("strata-iobench-"));
  REQUIRE(j["jobs"].size() == 2 * 2 * 2);  // read, randread x 4K, 1M x qd 1, 4
  CHECK(j["jobs"][0]["jobname"] == "d0-read-4K-qd1");
  CHECK(j["jobs"][7]["jobname"] == "d0-randread-1M-qd4");

  // fio's own output on the same file, when fio is installed.
  json fio_top = {{"fio version", ""}, {"timestamp", 0}, {"timestamp_ms", 0}, {"time", ""}, {"jobs", 0},
                  {"disk_util", 0}};
  json fio_job = fio_reference_job();
  const test::RunResult which = test::run_shell("command -v fio");
  if (which.status == 0) {
    const test::RunResult fio = test::run_shell(fmt::format(
        "fio --name=t --filename=\"{}\" --rw=randread --bs=4k --size=4M --direct=1 --output-format=json 2>/dev/null", f));
    REQUIRE_MESSAGE(fio.status == 0, fio.output);
    const json fj = json::parse(fio.output);
    fio_top = fj;
    fio_job = fj["jobs"][0];
    MESSAGE("compared with ", fj["fio version"].get<std::string>(), "'s JSON keys");
  } else {
    MESSAGE("fio is not installed: compared with the keys fio 3.33 prints");
  }
  std::vector<std::string> missing;
  missing_keys(fio_top, j, "", missing);
  for (const json& job : j["jobs"]) missing_keys(fio_job, job, job["jobname"].get<std::string>() + ".", missing);
  CHECK_MESSAGE(missing.empty(), "keys fio prints that iobench lacks: ", json(missing).dump());

  for (const json& job : j["jobs"]) {
    CAPTURE(job["jobname"]);
    const json& rd = job["read"];
    const uint64_t bs = job["strata"]["block_size"];
    CHECK(rd["io_bytes"].get<uint64_t>() == rd["total_ios"].get<uint64_t>() * bs);
    CHECK(rd["bw_bytes"].get<double>() == doctest::Approx(rd["iops"].get<double>() * double(bs)).epsilon(0.01));
    CHECK(rd["clat_ns"]["N"] == rd["total_ios"]);
    CHECK(rd["clat_ns"]["percentile"].size() == 17);
    CHECK(rd["clat_ns"]["percentile"]["50.000000"].get<uint64_t>() <= rd["clat_ns"]["percentile"]["99.000000"].get<uint64_t>());
    CHECK(job["write"]["io_bytes"] == 0);
    CHECK(job["job options"]["ioengine"].get<std::string>().starts_with("strata-"));
    CHECK(job["job options"]["direct"] == "1");
  }

  // The table, the JSON file and the profile in one run.
  const std::string out = dir.file("out.json"), prof = dir.file("profile.json");
  r = test::run_strata(fmt::format("iobench \"{}\" --bs 4K,1M --qd 1,2 --rw randread --runtime 0.2 -o \"{}\" "
                                   "--save-profile \"{}\"", f, out, prof));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(contains(r.output, "throughput"));
  CHECK(contains(r.output, "d0: random 1M reads at best"));
  CHECK(contains(r.output, "[4/4] d0-randread-1M-qd2"));
  CHECK(json::parse(std::ifstream(out))["jobs"].size() == 4);
  const json p = json::parse(std::ifstream(prof));
  CHECK(p["format"] == "strata-drive-profile");
  CHECK(p["version"] == 1);
  REQUIRE(p["drives"].size() == 1);
  CHECK(p["drives"][0]["path"] == f);
  CHECK(p["drives"][0]["read_gbps"].get<double>() > 0);
  CHECK(p["drives"][0]["latency_us"].get<double>() > 0);
  CHECK(p["drives"][0]["latency_bs"] == 4096);
  CHECK(p["drives"][0]["latency_qd"] == 1);
  CHECK(p["drives"][0]["read_bs"] == 1 << 20);
  CHECK(p["drives"][0]["rand_gbps"].contains("4096"));
  CHECK(p["drives"][0]["rand_gbps"]["1048576"] == p["drives"][0]["read_gbps"]);
  CHECK(p["together_gbps"] == p["drives"][0]["read_gbps"]);
}

TEST_CASE("iobench: directory targets, drives together, a model's unit sizes") {
  if (!std::filesystem::exists(test::strata_binary())) return;
  test::ScratchDir dir;
  const std::string d0 = dir.file("d0"), d1 = dir.file("d1"), model = dir.file("moe.gguf");
  std::filesystem::create_directories(d0);
  std::filesystem::create_directories(d1);
  test::RunResult r = test::run_strata(fmt::format(
      "iobench \"{}\" \"{}\" --size 8M --bs 1M --qd 2 --rw randread --runtime 0.2 --json", d0, d1), true);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  json j = json::parse(r.output);
  REQUIRE(j["jobs"].size() == 2 + 3);  // each alone, then d0, d1 and their sum together
  CHECK(j["jobs"][0]["job options"]["filename"] == d0 + "/strata-iobench.dat");
  CHECK(j["jobs"][2]["jobname"] == "together-d0-randread-1M-qd2");
  CHECK(j["jobs"][4]["jobname"] == "together-all-randread-1M-qd2");
  CHECK(j["jobs"][2]["groupid"] == j["jobs"][4]["groupid"]);
  CHECK(j["jobs"][4]["read"]["io_bytes"].get<uint64_t>() ==
        j["jobs"][2]["read"]["io_bytes"].get<uint64_t>() + j["jobs"][3]["read"]["io_bytes"].get<uint64_t>());
  CHECK(!std::filesystem::exists(d0 + "/strata-iobench.dat"));  // removed unless --keep

  r = test::run_strata(fmt::format("iobench \"{}\" --size 4M --bs 1M --qd 1 --rw read --runtime 0.1 --keep", d0));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(std::filesystem::file_size(d0 + "/strata-iobench.dat") == 4u << 20);

  r = test::run_strata(fmt::format(
      "synth -o \"{}\" --arch mixtral --layers 2 --dim 128 --heads 4 --kv-heads 2 --experts 4 --used 2 --ffn 256 "
      "--vocab 300 --type q8_0",
      model));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  r = test::run_strata(fmt::format("iobench \"{}\" -m \"{}\" --bs 4K --qd 1 --rw randread --runtime 0.1 --json",
                                   d0 + "/strata-iobench.dat", model), true);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  j = json::parse(r.output);
  // 4K plus the largest expert (3 slices of 256x128 q8_0: 34816 bytes each, 4 KiB-aligned) and
  // the largest matrix (the 300x128 embedding, 40800 bytes -> 40960).
  REQUIRE(j["jobs"].size() == 3);
  CHECK(j["jobs"][1]["strata"]["block_size"] == 40960);
  CHECK(j["jobs"][2]["strata"]["block_size"] == 3 * 36864);
}

TEST_CASE("iobench: bad input is refused by name") {
  if (!std::filesystem::exists(test::strata_binary())) return;
  test::ScratchDir dir;
  const std::string f = dir.pattern_file("small.bin", 256 << 10);
  struct Case {
    std::string args, message;
  };
  const Case cases[] = {
      {fmt::format("\"{}\"", dir.file("missing.bin")), "missing.bin: no such file or directory"},
      {fmt::format("\"{}\" --bs 0", f), "--bs '0': expected a positive size"},
      {fmt::format("\"{}\" --bs 4K,lots", f), "--bs 'lots'"},
      {fmt::format("\"{}\" --qd 0", f), "--qd must be >= 1 (got 0)"},
      {fmt::format("\"{}\" --rw write", f), "--rw"},
      {fmt::format("\"{}\" --runtime 0", f), "--runtime must be between"},
      {fmt::format("\"{}\" --bs 1M", f), "small.bin: 262144 bytes, smaller than one 1048576-byte block"},
      {fmt::format("\"{}\" --bs 6000,4K", f), "block size 6000 is not a multiple of the file's O_DIRECT alignment"},
      {fmt::format("\"{}\" --bs 1G --qd 4096", f), "more than half of this machine's memory"},
      {fmt::format("\"{}\" --size 0", dir.file("")), "--size '0'"},
      {fmt::format("\"{}\" -m \"{}\"", f, dir.file("none.gguf")), "none.gguf"},
      {"", "targets"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    const test::RunResult r = test::run_strata("iobench " + c.args);
    CHECK(r.status != 0);
    CHECK_MESSAGE(contains(r.output, c.message), r.output);
  }
}
