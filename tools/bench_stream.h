// `strata bench --memory-budget SIZE`: decode speed while streaming weights from disk, next to
// the disk's raw sequential speed measured in the same run, and the floor that implies.
#pragma once
#include <string>

#include "tools/streaming_flags.h"

namespace strata::tools {

struct StreamBenchArgs {
  std::string model;
  StreamingFlags streaming;
  int n_gen = 32;
  int batch = 1;
  int threads = 0;
  bool json = false;
  bool raw = true;  // measure the raw sequential read speed too
};

int run_stream_bench(const StreamBenchArgs& a);

}  // namespace strata::tools
