// The CPU's decode compute rate for `strata plan`: how many weight bytes of one type a
// one-token matrix-vector product gets through per second, measured once per CPU, weight type
// and thread count and kept in ~/.cache/strata/compute-<type>-<threads>.json.
#pragma once
#include <cstdint>
#include <string>

#include "compute/quant.h"

namespace strata::tools {

struct ComputeRate {
  double bytes_per_s = 0;
  bool cached = false;  // read from the cache file, not measured now
  std::string cache_path;  // empty when there is no cache directory ($HOME unset)
  std::string cpu;
};

// Times compute::matmul with one token over a 256 MiB matrix of `type` with rows of `cols`
// elements (repacked as the model repacks it), 5 repetitions, the median; threads as oneTBB
// allows now. A cache file for this CPU model string is used unless `remeasure`.
ComputeRate measure_compute_rate(compute::DType type, int64_t cols, int threads, bool remeasure);

}  // namespace strata::tools
