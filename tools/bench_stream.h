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
  bool raw = true;  // measure the raw read speeds too
  // The all-resident compute time per token (0: unknown, and no ratio_to_roofline).
  double compute_s_per_token = 0;
  std::string trace_routing;  // --trace-routing: every forward step's routing, warm-ups included
};

// Rows in llama-bench's fields; each tg row adds the streaming figures (StreamSummary's, over
// all timed repetitions) and the read floor and roofline:
//  - raw_gbps: sequential O_DIRECT speed of the file's prefix; raw_unit_gbps: the speed of the
//    run's own pattern, the streamed units read whole in random order at the provider's queue
//    depth (what the drive gives for these reads);
//  - floor_s_per_token = bytes read per token / raw_unit_gbps (sequential: floor_seq_s_per_token);
//  - roofline_s_per_token = max(floor, compute_s_per_token), the time per token the slower of
//    disk and CPU allows; ratio_to_floor and ratio_to_roofline = achieved speed / that bound's.
BenchReport run_stream_bench(const StreamBenchArgs& a);

}  // namespace strata::tools
