// Which lines of the input this process answers: shard I of N takes line i (0-based, blank lines
// counted) when i mod N == I. Given by --shard I/N, else by the array-job index of the scheduler
// that started the process: Kubernetes Indexed Jobs (JOB_COMPLETION_INDEX, with the count from
// --shards or STRATA_BATCH_SHARDS) or Slurm job arrays (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN
// of SLURM_ARRAY_TASK_COUNT). Pure apart from the environment lookup passed in, for tests.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace strata::batch {

struct Shard {
  int64_t index = 0;
  int64_t count = 1;
  std::string source;  // "--shard", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", or "" (no sharding)
  bool takes(int64_t line_index) const { return line_index % count == index; }
};

// "I/N" with 0 <= I < N; strata::Error naming `flag` otherwise.
Shard parse_shard(std::string_view text, const char* flag = "--shard");

using EnvLookup = std::function<const char*(const char*)>;

// --shard when given (`shard_flag`), else the environment as above, else the whole file.
// `shards_flag`: --shards N (the count for Kubernetes; 0 when not given).
Shard resolve_shard(const std::optional<std::string>& shard_flag, int64_t shards_flag, const EnvLookup& env);

// `pattern` with every "{shard}" replaced by the shard index (one command line for every
// pod of an Indexed Job: -o out-{shard}.jsonl).
std::string shard_path(std::string pattern, const Shard& s);

}  // namespace strata::batch
