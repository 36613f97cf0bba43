#include "batch/shard.h"

#include <fmt/format.h>

#include <charconv>

#include "storage/error.h"

namespace strata::batch {
namespace {

std::optional<int64_t> number(std::string_view s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

int64_t env_number(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  const auto n = number(v ? v : "");
  if (!n || *n < 0) fail("{}={}: expected a whole number >= 0", name, v ? v : "");
  return *n;
}

Shard checked(int64_t index, int64_t count, std::string source) {
  if (count < 1) fail("{}: the shard count must be >= 1 (got {})", source, count);
  if (index < 0 || index >= count)
    fail("{}: shard index {} is out of range for {} shards (expected 0 to {})", source, index, count, count - 1);
  return Shard{index, count, std::move(source)};
}

}  // namespace

Shard parse_shard(std::string_view text, const char* flag) {
  const auto slash = text.find('/');
  const auto i = number(text.substr(0, slash));
  const auto n = slash == std::string_view::npos ? std::nullopt : number(text.substr(slash + 1));
  if (!i || !n) fail("{} {}: expected I/N, such as 0/4 (shard I of N, counted from 0)", flag, text);
  return checked(*i, *n, flag);
}

Shard resolve_shard(const std::optional<std::string>& shard_flag, int64_t shards_flag, const EnvLookup& env) {
  if (shard_flag) return parse_shard(*shard_flag);
  if (env("JOB_COMPLETION_INDEX")) {
    int64_t count = shards_flag;
    if (count == 0) {
      if (!env("STRATA_BATCH_SHARDS"))
        fail("JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the number of shards: pass --shards N "
             "or set STRATA_BATCH_SHARDS to the Job's completions");
      count = env_number(env, "STRATA_BATCH_SHARDS");
    }
    return checked(env_number(env, "JOB_COMPLETION_INDEX"), count, "JOB_COMPLETION_INDEX");
  }
  if (env("SLURM_ARRAY_TASK_ID")) {
    if (!env("SLURM_ARRAY_TASK_COUNT"))
      fail("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard I/N");
    // Arrays may start anywhere (--array=1-8): the index counts from the lowest task id.
    const int64_t min = env("SLURM_ARRAY_TASK_MIN") ? env_number(env, "SLURM_ARRAY_TASK_MIN") : 0;
    return checked(env_number(env, "SLURM_ARRAY_TASK_ID") - min, env_number(env, "SLURM_ARRAY_TASK_COUNT"),
                   "SLURM_ARRAY_TASK_ID");
  }
  if (shards_flag > 1) fail("--shards {} needs a shard index: --shard I/N or JOB_COMPLETION_INDEX", shards_flag);
  return Shard{};
}

std::string shard_path(std::string pattern, const Shard& s) {
  const std::string idx = std::to_string(s.index);
  for (size_t p = pattern.find("{shard}"); p != std::string::npos; p = pattern.find("{shard}", p + idx.size()))
    pattern.replace(p, 7, idx);
  return pattern;
}

}  // namespace strata::batch
