// Routing traces: which experts each MoE layer chose for each token, forward step by forward
// step, as `strata run/bench --trace-routing FILE` record them and `strata cachesim` replays them.
//
// The file is JSON lines. The first line is the header:
//   {"format":"strata-routing-trace","version":1,"n_layer":8,"n_expert":64,"n_expert_used":4}
// then one line per MoE layer per forward step (one Model::forward call), layers ascending
// within a step, steps counted from 0:
//   {"step":0,"layer":3,"tokens":[[5,1,9,2],[5,2,7,1]]}
// `tokens` has one list per token of the step's batch (batch order): the n_expert_used experts
// the router chose for it, best first. Keys beyond these are ignored; anything else malformed is
// an error naming the file, the line and what was expected.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace strata::runtime {

struct RoutingTraceHeader {
  int64_t n_layer = 0;        // the model's block count (the residency policy's layer clock)
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;  // experts per token
};

// One MoE layer of one forward step.
struct RoutingRecord {
  int64_t step = 0;
  int64_t layer = 0;
  int64_t n_tokens = 0;
  std::vector<int32_t> experts;  // experts[t * n_expert_used + k]
};

struct RoutingTrace {
  RoutingTraceHeader header;
  std::vector<RoutingRecord> records;  // in file order: steps, then layers, ascending
};

// Reads and checks a whole trace (strata::Error naming the file and line when malformed).
RoutingTrace read_routing_trace(const std::string& path);

// Writes a trace as the model reports its routing. A record for a layer at or below the last
// one recorded starts the next step, since a forward call runs its layers in ascending order.
class RoutingTraceWriter {
 public:
  // Creates (or truncates) `path`; strata::Error naming it when that fails.
  RoutingTraceWriter(const std::string& path, const RoutingTraceHeader& header);
  ~RoutingTraceWriter();
  RoutingTraceWriter(const RoutingTraceWriter&) = delete;
  RoutingTraceWriter& operator=(const RoutingTraceWriter&) = delete;

  // Never throws, so it is safe inside the forward pass; a failed write is reported by close().
  void record(int64_t layer, int64_t n_tokens, int64_t n_used, const int32_t* experts);
  // Flushes and closes; strata::Error naming the file when any write failed (a full disk).
  void close();
  int64_t steps() const { return step_ + 1; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::string line_;
  int64_t step_ = -1;
  int64_t last_layer_ = INT64_MAX;
  bool failed_ = false;
};

}  // namespace strata::runtime
