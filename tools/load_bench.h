// `strata bench --load`: how fast a model loads into RAM (no --memory-budget) next to the raw
// O_DIRECT sequential read speed of its file(s), the two measured alternately in one process
// because this disk's speed drifts between runs.
#pragma once
#include <string>

namespace strata::tools {

struct LoadBenchArgs {
  std::string model;
  int reps = 3;
  int threads = 0;
  bool json = false;
};

int run_load_bench(const LoadBenchArgs& a);

}  // namespace strata::tools
