// `strata bench --memory-budget SIZE`: decode speed while streaming weights from disk, next to
// the disk's raw sequential speed measured in the same run, and the floor that implies.
#pragma once
#include <string>
#include <vector>

#include "tools/bench_report.h"
#include "tools/streaming_flags.h"

namespace strata::tools {

struct StreamBenchArgs {
  std::string model;
  StreamingFlags streaming;
  // One tg row per combination (threads x batch x n_gen), as llama-bench's lists give.
  std::vector<int> n_gen{32};
  std::vector<int> batch{1};   // sequences decoded together
  std::vector<int> threads{0}; // 0: all cores
  int reps = 5;
  bool raw = true;  // measure the raw sequential read speed too
};

// Rows in llama-bench's fields; each tg row adds the streaming figures (StreamSummary's, over
// all timed repetitions) and raw_gbps, raw_bytes, floor_s_per_token, ratio_to_floor.
BenchReport run_stream_bench(const StreamBenchArgs& a);

}  // namespace strata::tools
