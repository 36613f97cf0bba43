#include "tools/load_bench.h"

#include <fcntl.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

#include "models/gguf/gguf.h"
#include "models/model.h"
#include "storage/error.h"
#include "storage/file.h"
#include "storage/placement.h"
#include "storage/sequential_read.h"
#include "tools/common.h"
#include "tools/units.h"

namespace strata::tools {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Drops the file's pages from the page cache (no root needed), so a load that reads through it
// (a filesystem without O_DIRECT, the pread fallback) cannot profit from the previous rep.
void evict_from_page_cache(const std::string& path) {
  for (const std::string& part : storage::Placement::open(path).parts()) {  // every drive's part of a placed model
    storage::File f = storage::File::open_read(part);
    (void)::posix_fadvise(f.fd(), 0, 0, POSIX_FADV_DONTNEED);
  }
}

}  // namespace

int run_load_bench(const LoadBenchArgs& a) {
  if (a.reps < 1) fail("--reps must be at least 1, got {}", a.reps);
  auto tc = limit_threads(a.threads);
  const int threads = static_cast<int>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  // Every split part, as the load reads them all.
  const std::vector<std::string> paths = gguf::GGUFFile::open(a.model).paths();

  std::vector<double> raw_gbps, load_gbps, load_s, ratios;
  uint64_t file_bytes = 0, weight_bytes = 0;
  for (int rep = 0; rep < a.reps; ++rep) {
    // O_DIRECT both times, so neither leaves the other a warm page cache.
    storage::SequentialReadResult raw;
    for (const std::string& p : paths) {
      const auto r = storage::measure_sequential_read(p, "uring", 1 << 20, 32, UINT64_MAX);
      raw.bytes += r.bytes;
      raw.seconds += r.seconds;
    }
    file_bytes = raw.bytes;

    for (const std::string& p : paths) evict_from_page_cache(p);
    const auto t0 = std::chrono::steady_clock::now();
    auto model = models::Model::load(a.model);
    // Until the first weight is usable: a provider may finish work (transforms) after load().
    if (model->provider().unit_count() > 0) runtime::UnitLease first(model->provider(), 0);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    weight_bytes = model->provider().resident_bytes();
    model.reset();

    raw_gbps.push_back(raw.gbps());
    load_s.push_back(s);
    load_gbps.push_back(s > 0 ? weight_bytes / s / 1e9 : 0);
    ratios.push_back(raw_gbps.back() > 0 ? load_gbps.back() / raw_gbps.back() : 0);
  }

  nlohmann::json j;
  j["model"] = a.model;
  j["bytes"] = weight_bytes;
  j["file_bytes"] = file_bytes;
  j["n_threads"] = threads;
  j["raw_gbps"] = raw_gbps;
  j["load_gbps"] = load_gbps;
  j["load_s"] = load_s;
  j["ratio"] = ratios;
  j["median_raw_gbps"] = median(raw_gbps);
  j["median_load_gbps"] = median(load_gbps);
  j["ratio_median"] = median(ratios);
  if (a.json) {
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::printf("%s: %s of weights in %s of files, %d threads\n", a.model.c_str(), format_bytes(double(weight_bytes)).c_str(),
              format_bytes(double(file_bytes)).c_str(), threads);
  std::printf("%-6s %-14s %-14s %-10s %s\n", "rep", "raw O_DIRECT", "load", "load time", "load/raw");
  for (size_t i = 0; i < ratios.size(); ++i)
    std::printf("%-6zu %-14s %-14s %-10s %.2f\n", i + 1, format_rate(raw_gbps[i] * 1e9).c_str(),
                format_rate(load_gbps[i] * 1e9).c_str(), format_duration(load_s[i]).c_str(), ratios[i]);
  std::printf("%-6s %-14s %-14s %-10s %.2f\n", "median", format_rate(median(raw_gbps) * 1e9).c_str(),
              format_rate(median(load_gbps) * 1e9).c_str(), format_duration(median(load_s)).c_str(), median(ratios));
  return 0;
}

}  // namespace strata::tools
