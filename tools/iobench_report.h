// `strata iobench`'s outputs: each job in fio's --output-format=json job shape, a together
// group's aggregate, the one-screen table and the drive profile `strata plan` reads (its
// format is in storage/README.md).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "storage/io_benchmark.h"

namespace strata::tools {

// One measured job (or a together group's aggregate), reduced to what is reported.
struct IoBenchRow {
  int drive = -1;  // -1: the aggregate of a together group
  bool together = false;
  storage::IoPattern rw = storage::IoPattern::random;
  uint64_t bs = 0;
  unsigned qd = 0;
  double bw = 0, iops = 0;  // bytes/s, reads/s
  uint64_t p50 = 0, p99 = 0;  // completion latency, ns
  nlohmann::ordered_json job;  // "85 us", "1.2 ms".
std::string latency_label(uint64_t ns);

// fio's job object
};

// "4K", "1M", "5636K", "1000": a block size in job names (fio's bs option, lower-cased).
std::string size_label(uint64_t bytes);

// "85 us", "1.2 ms".
std::string latency_label(uint64_t ns);

// fio's job object for `r` (keys as fio 3.33 prints them, plus "strata"). group_bw: the bytes/s
// of its whole group, for bw_agg.
nlohmann::ordered_json fio_job_json(const storage::IoJobResult& r, const std::string& name, int group,
                                    double group_bw, double runtime_opt);

// Several drives' results as one job (fio's group_reporting): sums, merged latencies.
storage::IoJobResult aggregate_jobs(const std::vector<storage::IoJobResult>& rs);

IoBenchRow make_row(const storage::IoJobResult& r, int drive, bool together, nlohmann::ordered_json job);

// The drive profile (storage/README.md); the caller sets each drive's "path".
nlohmann::ordered_json drive_profile(const std::vector<IoBenchRow>& rows, size_t n_drives,
                                     const std::vector<uint64_t>& unit_sizes, bool together_run, const std::string& io);

// The table (drive, rw, bs, qd, throughput, IOPS, p50/p99) and a summary line per drive.
void print_iobench_table(const std::vector<IoBenchRow>& rows, const std::vector<std::string>& paths,
                         const std::vector<uint64_t>& unit_sizes);

}  // namespace strata::tools
