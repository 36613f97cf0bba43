// A batch job's main loop: read the input once (this shard's lines, duplicates found across the
// whole file), skip what an earlier run already wrote, write error lines for malformed ones, and
// keep the engine's batch full with the rest, writing each answer as it finishes (completion
// order). Killed at any point, the same call continues where it stopped (output_file.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "batch/shard.h"
#include "models/engine/engine.h"
#include "server/api_types.h"

namespace strata::batch {

struct RunOptions {
  std::string input, output;
  std::string errors;                  // empty: error lines go to `output`
  Shard shard;
  std::optional<int64_t> created;      // `created` of every body (absent: when it was made)
  double sync_interval_s = 1.0;        // fsync at most this long after a record is written
  size_t window = 0;                   // requests handed to the engine ahead (0: 2 x max_batch)
};

struct RunCounts {
  uint64_t requests = 0;               // this shard's lines (blank lines aside)
  uint64_t already = 0;                // answered by an earlier run (found in the output)
  uint64_t ok = 0, failed = 0;         // written by this run
  uint64_t prompt_tokens = 0, generated_tokens = 0;  // of this run's answers
  double seconds = 0;                  // since run_batch began
  bool stopped = false;                // `stop` ended the run early
  uint64_t done() const { return already + ok + failed; }
};

// `stop` (set from a signal handler) ends the run early: running requests are cancelled and
// not written. `progress` is called often from this thread (throttle it). Throws strata::Error
// for files it cannot read or write.
RunCounts run_batch(const RunOptions& o, engine::Engine& eng, const server::ModelContext& m,
                    const std::atomic<bool>& stop, const std::function<void(const RunCounts&)>& progress);

}  // namespace strata::batch
