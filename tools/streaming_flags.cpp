#include "tools/streaming_flags.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "runtime/streaming_provider.h"
#include "storage/error.h"
#include "tools/common.h"
#include "tools/progress.h"
#include "tools/units.h"
#include "tools/validators.h"

namespace strata::tools {

void add_streaming_flags(CLI::App* cmd, StreamingFlags& f) {
  f.budget_opt = cmd->add_option("--memory-budget", f.memory_budget,
                  "Stream weights from disk within this much pinned memory (e.g. 512M, 4G); default: load all into RAM");
  f.io_opt = cmd->add_option("--io", f.io, "Read backend when streaming: uring, pread or mmap")
      ->check(CLI::IsMember({"uring", "pread", "mmap"}));
  f.depth_opt = cmd->add_option("--queue-depth", f.queue_depth, "Reads in flight at once (streaming)")
                    ->check(integer_at_least(1, 4096));
  f.sqpoll_opt = cmd->add_flag("--sqpoll", f.sqpoll, "io_uring kernel submission thread (streaming)");
}

void check_streaming_flags(const StreamingFlags& f) {
  const bool budget = f.budget_opt && f.budget_opt->count() > 0;
  if (budget && f.memory_budget.empty())
    fail("--memory-budget '': expected a size such as 512M or 4G (leave the flag out to load the model into RAM)");
  if (budget) parse_size(f.memory_budget, "--memory-budget");
  if (budget) return;
  for (const CLI::Option* o : {f.io_opt, f.depth_opt, f.sqpoll_opt})
    if (o && o->count() > 0)
      fail("{} only applies when streaming: add --memory-budget SIZE (without it the model is read into RAM at load)",
           o->get_name());
}

std::unique_ptr<models::Model> load_model(const std::string& path, const StreamingFlags& f) {
  check_streaming_flags(f);
  models::LoadOptions o = load_options(f);
  std::unique_ptr<Progress> bar;
  if (!f.streamed()) {
    bar = std::make_unique<Progress>("loading", 0);
    o.progress = [p = bar.get()](uint64_t done, uint64_t total) {
      if (total) p->set_total(total);
      p->update(done);
    };
  }
  auto model = models::Model::load(path, std::move(o));
  if (bar) bar->finish();
  if (f.streamed()) {
    const runtime::ProviderStats st = model->provider().stats();
    if (st.requested_budget_bytes > st.budget_bytes)
      std::fprintf(stderr, "strata: --memory-budget %s is more than this model needs; using %s (all of its weights)\n",
                   format_bytes(double(st.requested_budget_bytes)).c_str(), format_bytes(double(st.budget_bytes)).c_str());
  }
  return model;
}

models::LoadOptions load_options(const StreamingFlags& f) {
  models::LoadOptions o;
  if (f.memory_budget.empty()) return o;
  runtime::StreamingOptions so;
  so.memory_budget = parse_size(f.memory_budget, "--memory-budget");
  so.io = f.io;
  so.backend.queue_depth = f.queue_depth;
  so.backend.sqpoll = f.sqpoll;
  o.provider = [so](const std::vector<std::string>& paths) { return runtime::make_weight_provider(paths, so); };
  return o;
}

uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      uint64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
    std::getline(in, key);
  }
  return 0;
}

namespace {
double ratio(uint64_t a, uint64_t b) { return a + b ? double(a) / double(a + b) : 0.0; }
}  // namespace

double StreamSummary::bytes_per_token() const {
  return tokens ? double(after.bytes_read - before.bytes_read) / double(tokens) : 0;
}
double StreamSummary::read_gbps() const {
  return seconds > 0 ? double(after.bytes_read - before.bytes_read) / seconds / 1e9 : 0;
}
double StreamSummary::disk_busy() const { return seconds > 0 ? (after.disk_busy_s - before.disk_busy_s) / seconds : 0; }
double StreamSummary::hit_rate_dense() const {
  return ratio(after.dense_hits - before.dense_hits, after.dense_misses - before.dense_misses);
}
double StreamSummary::hit_rate_expert() const {
  return ratio(after.expert_hits - before.expert_hits, after.expert_misses - before.expert_misses);
}
double StreamSummary::prefetch_accuracy() const { return routing.accuracy(); }

nlohmann::json StreamSummary::to_json() const {
  return {{"tokens", tokens},
          {"seconds", seconds},
          {"tokens_per_s", tokens_per_s()},
          {"bytes_read_per_token", bytes_per_token()},
          {"read_gbps", read_gbps()},
          {"hit_rate_dense", hit_rate_dense()},
          {"hit_rate_expert", hit_rate_expert()},
          {"prefetch_accuracy", prefetch_accuracy()},
          {"prefetch_issued", after.prefetch_issued - before.prefetch_issued},
          {"prefetch_used", after.prefetch_used - before.prefetch_used},
          {"evictions", after.evictions - before.evictions},
          {"disk_busy", disk_busy()},
          {"wait_s", after.wait_s - before.wait_s},
          // Rewriting freshly read units for the kernel (Q4_0 repack): compute the resident
          // run does once at load, and a streamed run after every read.
          {"transform_s", after.transform_s - before.transform_s},
          {"transforms", after.transforms - before.transforms},
          {"io", after.io},
          {"memory_budget", after.budget_bytes},
          {"pinned_bytes", after.pinned_bytes},
          {"pool_locked", after.locked},
          {"peak_resident_bytes", after.peak_resident_bytes},
          {"peak_rss_bytes", peak_rss},
          {"kv_cache_bytes", kv_cache_bytes},
          // Everything outside the pool: KV cache, activations, tokenizer, code, allocator.
          {"other_rss_bytes", peak_rss > after.budget_bytes ? peak_rss - after.budget_bytes : 0},
          {"drives", drives_json()}};
}

// Per drive over the run: what it read, the share of the run it was busy, and its speed while
// busy and over the run. A drive that first appears after `before` counts from zero.
nlohmann::json StreamSummary::drives_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < after.devices.size(); ++i) {
    const storage::DeviceStats& a = after.devices[i];
    const storage::IoStats b = i < before.devices.size() ? before.devices[i].io : storage::IoStats{};
    const double bytes = double(a.io.bytes - b.bytes), busy = a.io.busy_s - b.busy_s;
    out.push_back({{"device", a.device},
                   {"paths", a.paths},
                   {"bytes", a.io.bytes - b.bytes},
                   {"reads", a.io.ops - b.ops},
                   {"busy", seconds > 0 ? busy / seconds : 0.0},
                   {"gbps", seconds > 0 ? bytes / seconds / 1e9 : 0.0},
                   {"gbps_while_busy", busy > 0 ? bytes / busy / 1e9 : 0.0}});
  }
  return out;
}

std::string StreamSummary::line() const {
  return fmt::format(
      "decode: {:.2f} tok/s | read {}/token at {} | disk busy {:.0f}% | hit rate dense {:.0f}% "
      "expert {:.0f}% | prefetch accuracy {:.0f}% | io {} budget {}, peak RSS {}",
      tokens_per_s(), format_bytes(bytes_per_token()), format_rate(read_gbps() * 1e9), 100 * disk_busy(),
      100 * hit_rate_dense(), 100 * hit_rate_expert(), 100 * prefetch_accuracy(), after.io,
      format_bytes(double(after.budget_bytes)), format_bytes(double(peak_rss))) + drives_line();
}

// One more line when the model is spread over several drives: each drive's speed and busy share.
std::string StreamSummary::drives_line() const {
  if (after.devices.size() < 2) return {};
  std::string s = "\ndrives:";
  for (const auto& d : drives_json())
    s += fmt::format(" {} {} busy {:.0f}% |", d["device"].get<std::string>(), format_rate(d["gbps"].get<double>() * 1e9),
                     100 * d["busy"].get<double>());
  s.pop_back();
  s.pop_back();
  return s;
}

}  // namespace strata::tools
