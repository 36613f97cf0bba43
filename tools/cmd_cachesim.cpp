// `strata cachesim`: replay a routing trace (`--trace-routing`) against expert caches of one or
// several sizes and print the hit rates of Belady's optimum, LRU and strata's residency policy
// (runtime/cache_simulator.h says what is modelled), and strata's rate over the optimum's.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "models/gguf/gguf.h"
#include "models/model.h"
#include "runtime/cache_simulator.h"
#include "runtime/routing_trace.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/units.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

using json = nlohmann::ordered_json;

struct CacheSimArgs {
  std::string trace, model;
  std::vector<int64_t> experts;
  std::vector<std::string> bytes;
  int64_t warmup = 0;
  bool json = false;
};

// What a model's weights take in the streaming provider's pool, as far as a budget goes.
struct ModelUnits {
  uint64_t expert_bytes = 0;      // the largest expert slot (gate + up + down)
  uint64_t non_expert_bytes = 0;  // everything else, assumed resident
};

constexpr uint64_t kAlign = 4096;  // O_DIRECT reads and the pool's slots are 4 KiB-aligned
uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// An expert's slot as the streaming provider sizes it: each of its three file ranges read as the
// 4 KiB-aligned span around it, the sum rounded to 4 KiB.
ModelUnits model_units(const gguf::GGUFFile& f, const models::HParams& hp) {
  ModelUnits m;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const bool expert = t.shape.size() == 3 && t.name.find("_exps.weight") != std::string::npos;
    if (!expert) m.non_expert_bytes += align_up(t.nbytes);
  }
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    std::vector<const gguf::TensorInfo*> parts;
    for (const char* p : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
      parts.push_back(&f.require_tensor(fmt::format("blk.{}.{}.weight", l, p), "an expert tensor"));
    for (int64_t e = 0; e < hp.n_expert; ++e) {
      uint64_t slot = 0;
      for (const gguf::TensorInfo* t : parts) {
        const uint64_t per = t->nbytes / uint64_t(hp.n_expert), begin = t->offset + uint64_t(e) * per;
        slot += align_up(begin + per) - begin / kAlign * kAlign;
      }
      m.expert_bytes = std::max(m.expert_bytes, align_up(slot));
    }
  }
  return m;
}

struct Point {
  int64_t capacity = 0;
  uint64_t budget = 0;  // --bytes only
  runtime::CacheSimResult r;
};

int run(const CacheSimArgs& a) {
  if (a.experts.empty() == a.bytes.empty())
    fail("give the cache size as --experts N (experts it holds) or as --bytes SIZE with -m MODEL, one of the two");
  if (!a.bytes.empty() && a.model.empty())
    fail("--bytes needs -m MODEL: the model's expert size turns bytes into experts");
  const runtime::RoutingTrace trace = runtime::read_routing_trace(a.trace);
  const runtime::RoutingTraceHeader& h = trace.header;
  if (trace.records.empty()) fail("{}: the trace holds no routing records (only its header)", a.trace);
  const int64_t steps = trace.records.back().step - trace.records.front().step + 1;
  if (a.warmup >= steps)
    fail("--warmup {} steps leaves nothing to count: {} holds {} steps", a.warmup, a.trace, steps);

  ModelUnits units;
  if (!a.model.empty()) {
    const gguf::GGUFFile f = gguf::GGUFFile::open(a.model);
    const models::Architecture* arch = models::find_architecture(f.architecture());
    if (!arch) fail("{}: architecture '{}' is not supported", a.model, f.architecture());
    const models::HParams hp = arch->read_hparams(f);
    if (hp.n_layer != h.n_layer || hp.n_expert != h.n_expert || hp.n_expert_used != h.n_expert_used)
      fail("{} ({} layers, {} experts, top-{}) is not the model {} was recorded from ({} layers, {} experts, top-{})",
           a.model, hp.n_layer, hp.n_expert, hp.n_expert_used, a.trace, h.n_layer, h.n_expert, h.n_expert_used);
    units = model_units(f, hp);
  }

  std::vector<Point> points;
  for (int64_t n : a.experts) points.push_back({n, 0, {}});
  for (const std::string& text : a.bytes) {
    const uint64_t budget = parse_size(text, "--bytes");
    if (budget < units.non_expert_bytes + units.expert_bytes)
      fail("--bytes {}: below the model's non-expert weights ({}) plus one expert ({})", text,
           format_bytes(double(units.non_expert_bytes)), format_bytes(double(units.expert_bytes)));
    points.push_back({int64_t((budget - units.non_expert_bytes) / units.expert_bytes), budget, {}});
  }
  const int64_t all = h.n_layer * h.n_expert;
  for (Point& p : points) {
    runtime::CacheSimOptions o;
    o.capacity = std::min(p.capacity, all);  // more slots than experts change nothing
    o.warmup_steps = a.warmup;
    if (units.expert_bytes) o.unit_bytes = units.expert_bytes;
    p.r = runtime::simulate_cache(trace, o);
  }

  auto ratio = [](const runtime::CacheSimResult& r) { return r.belady_hits ? double(r.policy_hits) / double(r.belady_hits) : 0.0; };
  if (a.json) {
    json j;
    j["trace"] = a.trace;
    j["steps"] = steps;
    j["warmup_steps"] = a.warmup;
    j["n_layer"] = h.n_layer;
    j["n_expert"] = h.n_expert;
    j["n_expert_used"] = h.n_expert_used;
    j["accesses"] = points.front().r.accesses;
    if (!a.model.empty()) {
      j["expert_bytes"] = units.expert_bytes;
      j["non_expert_bytes"] = units.non_expert_bytes;
    }
    json rows = json::array();
    for (const Point& p : points) {
      json r;
      r["capacity_experts"] = p.capacity;
      if (p.budget) r["budget_bytes"] = p.budget;
      r["belady_hit_rate"] = p.r.belady_rate();
      r["lru_hit_rate"] = p.r.lru_rate();
      r["strata_hit_rate"] = p.r.policy_rate();
      r["strata_over_belady"] = ratio(p.r);
      rows.push_back(r);
    }
    j["results"] = rows;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s: %lld steps (%lld counted), %lld MoE layers x %lld experts, top-%lld: %llu expert visits counted\n",
              a.trace.c_str(), static_cast<long long>(steps), static_cast<long long>(steps - a.warmup),
              static_cast<long long>(h.n_layer), static_cast<long long>(h.n_expert),
              static_cast<long long>(h.n_expert_used), static_cast<unsigned long long>(points.front().r.accesses));
  if (!a.bytes.empty())
    std::printf("budget = %s non-expert weights (assumed resident) + experts of %s each\n",
                format_bytes(double(units.non_expert_bytes)).c_str(), format_bytes(double(units.expert_bytes)).c_str());
  std::printf("%-30s %8s %8s %8s %14s\n", "cache", "Belady", "LRU", "strata", "strata/Belady");
  for (const Point& p : points) {
    std::string cache = fmt::format("{} experts ({:.0f}%)", p.capacity, 100.0 * double(std::min(p.capacity, all)) / double(all));
    if (p.budget) cache = format_bytes(double(p.budget)) + ": " + cache;
    std::printf("%-30s %7.1f%% %7.1f%% %7.1f%% %14.3f\n", cache.c_str(), 100 * p.r.belady_rate(), 100 * p.r.lru_rate(),
                100 * p.r.policy_rate(), ratio(p.r));
  }
  return 0;
}

}  // namespace

void add_cachesim_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<CacheSimArgs>();
  CLI::App* c = app.add_subcommand(
      "cachesim", "Replay a routing trace (--trace-routing) against expert caches: Belady's optimum, LRU and strata's policy");
  c->add_option("-t,--trace", a->trace, "Routing trace written by run or bench --trace-routing")->required();
  c->add_option("--experts", a->experts, "Cache sizes in experts, comma-separated list")
      ->delimiter(',')
      ->check(integer_at_least(1, int64_t(1) << 40));
  c->add_option("--bytes", a->bytes,
                "Cache sizes as memory budgets (512M, 4G; comma-separated list): what is left after the model's "
                "non-expert weights, in experts of the model's size (needs -m)")
      ->delimiter(',');
  c->add_option("-m,--model", a->model, "The GGUF model the trace was recorded from");
  c->add_option("--warmup", a->warmup, "Leading forward steps replayed but not counted (bench's untimed warm-up: 1)")
      ->check(integer_at_least(0, int64_t(1) << 40));
  c->add_flag("--json", a->json, "Print one JSON object");
  c->callback([a, &exit_code] { exit_code = run(*a); });
}

}  // namespace strata::tools
