// The flags every model-running command shares for where weights come from: --memory-budget
// (streaming from SSD into a pinned pool of that size; absent = everything resident) and
// --io (the read backend). Also the end-of-run streaming summary.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "models/model.h"

namespace strata::tools {

struct StreamingFlags {
  std::string memory_budget;  // "" = resident
  std::string io = "uring";
  unsigned queue_depth = 64;
  bool sqpoll = false;
  // The options themselves, to tell "given" from "default" (set by add_streaming_flags).
  CLI::Option *budget_opt = nullptr, *io_opt = nullptr, *depth_opt = nullptr, *sqpoll_opt = nullptr;
  bool streamed() const { return !memory_budget.empty(); }
};

void add_streaming_flags(CLI::App* cmd, StreamingFlags& f);
// strata::Error for flags that mean nothing together: an empty --memory-budget, or --io,
// --queue-depth, --sqpoll without a budget (without one the model is read into RAM at load).
void check_streaming_flags(const StreamingFlags& f);
models::LoadOptions load_options(const StreamingFlags& f);

// Loads the model as the flags say (after check_streaming_flags): read into RAM with a progress
// bar, or streamed within the budget, saying in one line on stderr when the budget was more
// than the model needs and was trimmed to it.
std::unique_ptr<models::Model> load_model(const std::string& path, const StreamingFlags& f);

// Figures of one timed phase (decode): what `strata run` prints and `strata bench` reports.
struct StreamSummary {
  double seconds = 0;
  int64_t tokens = 0;
  runtime::ProviderStats before, after;  // provider counters at the phase's start and end
  models::RoutingStats routing;
  uint64_t peak_rss = 0;
  uint64_t kv_cache_bytes = 0;  // accounted apart from the weight budget
  double tokens_per_s() const { return seconds > 0 ? tokens / seconds : 0; }
  double bytes_per_token() const;
  double read_gbps() const;
  double disk_busy() const;  // share of the phase's wall time with a read in flight
  double hit_rate_dense() const;
  double hit_rate_expert() const;
  double prefetch_accuracy() const;
  nlohmann::json to_json() const;
  std::string line() const;  // one human-readable line (a second with per-drive figures on several drives)
  nlohmann::json drives_json() const;
  std::string drives_line() const;
};

// VmHWM of this process in bytes (0 where /proc is unavailable).
uint64_t peak_rss_bytes();

}  // namespace strata::tools
