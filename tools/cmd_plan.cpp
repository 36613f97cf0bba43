// `strata plan`: predicted decode tokens/s of a model streamed from a set of drives under memory
// budgets (runtime/throughput_model.h has the model). This file reads the GGUF into plain
// shapes, the drives from a profile or from --drives, the routing from a trace or a named
// distribution, the compute time per token from the flag or a one-time measurement
// (plan_compute.h), and prints a table, JSON, and optionally a gnuplot PNG.
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compute/quant.h"
#include "models/gguf/gguf.h"
#include "models/model.h"
#include "runtime/cache_simulator.h"
#include "runtime/routing_trace.h"
#include "runtime/throughput_model.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/plan_compute.h"
#include "tools/units.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

using json = nlohmann::ordered_json;
using runtime::TensorRole;

struct PlanArgs {
  std::string model, profile, trace, routing = "uniform", png;
  std::vector<std::string> budgets;
  std::vector<double> drives;
  std::vector<int> sweep;
  double latency_us = 100, queue_depth = 16, compute_s = 0;
  double reuse = -1;  // < 0: the trace's, else runtime::kDefaultReuse
  double prefetch_accuracy = runtime::kDefaultPrefetchAccuracy;
  int batch = 1, threads = 0;
  int64_t tokens = 0;
  bool remeasure = false, json = false, check_trace = false;
};

struct Shape {
  runtime::ModelShape shape;
  compute::DType dtype = compute::DType::F32;  // the type holding most weight bytes
  int64_t n_embd = 0;
};

Shape read_shape(const gguf::GGUFFile& f, const std::string& path) {
  const models::Architecture* arch = models::find_architecture(f.architecture());
  if (!arch) fail("{}: architecture '{}' is not supported", path, f.architecture());
  const models::HParams hp = arch->read_hparams(f);
  Shape s;
  s.shape.n_layer = hp.n_layer;
  s.shape.n_expert = hp.n_expert;
  s.shape.n_expert_used = hp.n_expert_used;
  s.n_embd = hp.n_embd;
  const bool tied = f.find_tensor("output.weight") == nullptr;
  std::map<compute::DType, uint64_t> by_type;
  for (const gguf::TensorInfo& t : f.tensors()) {
    runtime::TensorShape x;
    x.name = t.name;
    x.offset = t.offset;
    x.nbytes = t.nbytes;
    x.rows = t.shape.size() > 1 ? t.shape[1] : 1;
    x.row_stride = t.shape.size() > 1 ? compute::row_bytes(t.type, t.shape[0]) : t.nbytes;
    if (t.name.starts_with("blk.")) x.layer = std::atoi(t.name.c_str() + 4);
    if (t.name == "output.weight") x.layer = int(hp.n_layer);
    const auto ends = [&](const char* s) { return t.name.ends_with(s); };
    if (t.shape.size() == 3 && ends("ffn_gate_exps.weight")) x.role = TensorRole::ExpertGate;
    else if (t.shape.size() == 3 && ends("ffn_up_exps.weight")) x.role = TensorRole::ExpertUp;
    else if (t.shape.size() == 3 && ends("ffn_down_exps.weight")) x.role = TensorRole::ExpertDown;
    else if (t.shape.size() < 2 || ends("ffn_gate_inp.weight")) x.role = TensorRole::Pinned;
    else if (t.name == "token_embd.weight" && !tied) x.role = TensorRole::Embedding;
    else if (t.shape.size() == 2) x.role = TensorRole::Dense;
    else fail("{}: tensor '{}' has {} dimensions; strata plan knows 1-D, 2-D and expert tensors", path, t.name, t.shape.size());
    if (x.role != TensorRole::Pinned) by_type[t.type] += t.nbytes;
    s.shape.tensors.push_back(std::move(x));
  }
  if (!by_type.empty())
    s.dtype = std::max_element(by_type.begin(), by_type.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  return s;
}

std::vector<runtime::Drive> read_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("--profile {}: cannot open the file", path);
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("format", "") != "strata-drive-profile")
    fail("--profile {}: not a drive profile (expected a JSON object with \"format\":\"strata-drive-profile\", "
         "as strata iobench --save-profile writes)", path);
  if (!j.contains("drives") || !j["drives"].is_array() || j["drives"].empty())
    fail("--profile {}: \"drives\" must be a non-empty array", path);
  std::vector<runtime::Drive> out;
  for (size_t i = 0; i < j["drives"].size(); ++i) {
    const json& d = j["drives"][i];
    auto number = [&](const char* key, bool required, double dflt) {
      if (!d.is_object() || !d.contains(key)) {
        if (required) fail("--profile {}: drives[{}].{} is missing (expected a number)", path, i, key);
        return dflt;
      }
      if (!d[key].is_number() || !(d[key].get<double>() > 0))
        fail("--profile {}: drives[{}].{} must be a number > 0 (got {})", path, i, key, d[key].dump());
      return d[key].get<double>();
    };
    runtime::Drive drive;
    drive.read_gbps = number("read_gbps", true, 0);
    drive.latency_us = number("latency_us", false, 100);
    drive.queue_depth = number("queue_depth", false, 16);
    drive.name = d.value("path", fmt::format("drive {}", i + 1));
    out.push_back(drive);
  }
  return out;
}

runtime::RoutingStats read_routing(const PlanArgs& a, const runtime::ModelShape& s, const runtime::RoutingTrace* trace) {
  if (s.n_expert == 0) return {};
  if (trace) {
    const runtime::RoutingTraceHeader& h = trace->header;
    if (h.n_layer != s.n_layer || h.n_expert != s.n_expert || h.n_expert_used != s.n_expert_used)
      fail("--trace {} was recorded from a model of {} layers, {} experts, top-{}; {} has {}, {}, top-{}", a.trace,
           h.n_layer, h.n_expert, h.n_expert_used, a.model, s.n_layer, s.n_expert, s.n_expert_used);
    return runtime::routing_from_trace(*trace);
  }
  if (a.routing == "uniform") return runtime::uniform_routing(s.n_layer, s.n_expert, s.n_expert_used);
  if (a.routing.starts_with("zipf:")) {
    char* end = nullptr;
    const double z = std::strtod(a.routing.c_str() + 5, &end);
    if (end != a.routing.c_str() + 5 && *end == 0 && z >= 0)
      return runtime::zipf_routing(s.n_layer, s.n_expert, s.n_expert_used, z);
  }
  fail("--routing must be uniform or zipf:S with S >= 0 (got '{}')", a.routing);
}

struct DriveSet {
  std::string label;
  std::vector<runtime::Drive> drives;
};

std::string drives_text(const std::vector<double>& g) {
  std::string s;
  for (double v : g) s += fmt::format("{}{:.3g}", s.empty() ? "" : "+", v);
  return s + " GB/s";
}

void write_png(const PlanArgs& a, const std::vector<DriveSet>& sets, const std::vector<runtime::PlanRow>& rows) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "plan: gnuplot is not installed, no plot written (--png %s)\n", a.png.c_str());
    return;
  }
  std::error_code ec;
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("strata-plan-{}", ::getpid());
  std::filesystem::create_directories(dir, ec);
  const std::string dat = (dir / "plan.dat").string(), gp = (dir / "plan.gp").string();
  std::ofstream d(dat), g(gp);
  std::string plot;
  const size_t per_set = rows.size() / sets.size();  // rows are set-major
  for (size_t i = 0; i < sets.size(); ++i) {
    d << "# " << sets[i].label << "\n";
    for (size_t k = i * per_set; k < (i + 1) * per_set; ++k)
      d << double(rows[k].budget_bytes) / double(1ull << 30) << " " << rows[k].tokens_per_s << "\n";
    d << "\n\n";
    plot += fmt::format("{}'{}' index {} with linespoints title '{}'", plot.empty() ? "plot " : ", ", dat, i, sets[i].label);
  }
  g << "set terminal png size 900,600 noenhanced\nset output '" << a.png << "'\n"
    << "set title 'strata plan: predicted decode tokens/s (" << std::filesystem::path(a.model).filename().string()
    << ", batch " << a.batch << ")'\n"
    << "set xlabel 'memory budget (GiB)'\nset ylabel 'tokens/s'\nset key top left\nset grid\n" << plot << "\n";
  d.close();
  g.close();
  if (!d || !g) fail("--png: cannot write the plot's data in {}", dir.string());
  const int rc = std::system(fmt::format("gnuplot '{}'", gp).c_str());
  if (rc != 0) fail("--png {}: gnuplot failed (exit status {}); its script is {}", a.png, rc, gp);
  std::filesystem::remove_all(dir, ec);
}

// The hit-rate model against `strata cachesim`'s replay of the same trace, cache by cache: each
// budget's cache less the non-expert units, in experts (dense assumed resident, as cachesim does).
void check_trace(const PlanArgs& a, const Shape& shape, const runtime::RoutingStats& routing, double reuse,
                 const runtime::RoutingTrace& trace, const std::vector<uint64_t>& budgets) {
  const int64_t steps = trace.records.back().step - trace.records.front().step + 1, warmup = steps > 1 ? 1 : 0;
  std::printf("hit-rate model vs strata cachesim on %s (%lld steps, the first not counted, as bench's warm-up):\n",
              a.trace.c_str(), static_cast<long long>(steps));
  std::printf("%-10s %9s %8s %8s %8s %8s %8s\n", "budget", "experts", "model", "Belady", "LRU", "strata", "model-strata");
  for (uint64_t b : budgets) {
    const runtime::UnitPlan p = runtime::plan_units(shape.shape, routing, b, 1);
    double expert = 0, other = 0;
    for (const runtime::PlanUnit& u : p.units) (u.expert ? expert : other) += double(u.bytes);
    const double per_expert = expert / double(shape.shape.n_layer * shape.shape.n_expert);
    const double cache = double(b - p.pinned_bytes) - 2.0 * double(p.largest_unit_bytes);
    const int64_t cap = std::max<int64_t>(1, int64_t((cache - other) / per_expert));
    runtime::CacheSimOptions o;
    o.capacity = std::min(cap, trace.header.n_layer * trace.header.n_expert);
    o.warmup_steps = warmup;
    o.unit_bytes = uint64_t(per_expert);
    const runtime::CacheSimResult r = runtime::simulate_cache(trace, o);
    const double m = runtime::model_expert_hit_rate(routing, double(cap), 1, reuse, steps - warmup);
    std::printf("%-10s %9lld %7.1f%% %7.1f%% %7.1f%% %7.1f%% %+8.3f\n", format_bytes(double(b)).c_str(),
                static_cast<long long>(cap), 100 * m, 100 * r.belady_rate(), 100 * r.lru_rate(), 100 * r.policy_rate(),
                m - r.policy_rate());
  }
}

int run(PlanArgs& a) {
  if (a.budgets.empty()) fail("--memory-budget: give at least one budget (2G or 2G,4G,8G)");
  if (!a.profile.empty() && !a.drives.empty()) fail("give the drives either as --profile FILE or as --drives GBPS,..., not both");
  if (a.profile.empty() && a.drives.empty())
    fail("no drives: give --drives GBPS,... (each drive's read speed in GB/s) or --profile FILE (strata iobench --save-profile)");
  if (!a.trace.empty() && a.routing != "uniform") fail("give the routing either as --trace FILE or as --routing, not both");
  if (a.check_trace && a.trace.empty()) fail("--check-trace needs --trace FILE");
  const gguf::GGUFFile f = gguf::GGUFFile::open(a.model);
  const Shape shape = read_shape(f, a.model);
  std::unique_ptr<runtime::RoutingTrace> trace;
  if (!a.trace.empty()) trace = std::make_unique<runtime::RoutingTrace>(runtime::read_routing_trace(a.trace));
  const runtime::RoutingStats routing = read_routing(a, shape.shape, trace.get());
  double reuse = a.reuse;
  std::string reuse_source = "--reuse";
  if (reuse < 0 && trace && shape.shape.n_expert > 0) {
    reuse = runtime::reuse_from_trace(*trace);
    reuse_source = "trace";
  } else if (reuse < 0) {
    reuse = runtime::kDefaultReuse;
    reuse_source = "default";
  }

  std::vector<DriveSet> sets;
  if (!a.profile.empty()) {
    sets.push_back({"profile " + std::filesystem::path(a.profile).filename().string(), read_profile(a.profile)});
  } else {
    DriveSet s{"given drives", {}};
    for (double g : a.drives) s.drives.push_back({"", g, a.latency_us, a.queue_depth});
    sets.push_back(s);
  }
  std::vector<int> sweep = a.sweep;
  if (sweep.empty() && !a.png.empty()) sweep = {1, 2, 4, 8};
  const std::vector<runtime::Drive>& given = sets.front().drives;
  const bool uniform_given = std::all_of(given.begin(), given.end(), [&](const runtime::Drive& d) {
    return d.read_gbps == given[0].read_gbps && d.latency_us == given[0].latency_us && d.queue_depth == given[0].queue_depth;
  });
  for (int n : sweep) {
    if (uniform_given && size_t(n) == given.size()) continue;  // the given set already
    DriveSet s{fmt::format("{} x {:.3g} GB/s", n, sets.front().drives.front().read_gbps), {}};
    for (int i = 0; i < n; ++i) s.drives.push_back(sets.front().drives.front());
    for (auto& d : s.drives) d.name.clear();
    sets.push_back(s);
  }

  const uint64_t active = runtime::active_bytes_per_token(shape.shape, routing);
  std::string compute_note;
  double compute_s = a.compute_s;
  if (compute_s <= 0) {
    auto tc = limit_threads(a.threads);
    const int n = int(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
    const ComputeRate r = measure_compute_rate(shape.dtype, shape.n_embd, n, a.remeasure);
    compute_s = double(active) / r.bytes_per_s;
    compute_note = fmt::format("{} {} matrix-vector rate {} at {} threads; {}", r.cached ? "cached" : "measured",
                               compute::type_name(shape.dtype), format_rate(r.bytes_per_s), n,
                               r.cache_path.empty() ? "not cached" : (r.cached ? "from " : "kept in ") + r.cache_path);
  }

  std::vector<uint64_t> budgets;
  for (const std::string& b : a.budgets) budgets.push_back(parse_size(b, "--memory-budget"));
  std::vector<runtime::PlanRow> rows;
  for (uint64_t b : budgets) {
    const runtime::UnitPlan p = runtime::plan_units(shape.shape, routing, b, a.batch);
    if (b < p.minimum_budget)
      fail("--memory-budget {}: below this model's minimum {} ({} pinned + 2 x {} for the largest streamed unit)",
           format_bytes(double(b)), format_bytes(double(p.minimum_budget)), format_bytes(double(p.pinned_bytes)),
           format_bytes(double(p.largest_unit_bytes)));
  }
  for (const DriveSet& s : sets)
    for (uint64_t b : budgets) {
      runtime::PlanInputs in;
      in.budget = b;
      in.batch = a.batch;
      in.drives = s.drives;
      in.compute_s_per_token = compute_s;
      in.reuse = reuse;
      in.prefetch_accuracy = a.prefetch_accuracy;
      in.run_steps = a.tokens;
      rows.push_back(runtime::predict(shape.shape, routing, in));
    }

  const std::string routing_text = trace ? "trace " + a.trace : a.routing;
  if (a.json) {
    json j;
    j["model"] = a.model;
    j["inputs"] = {{"batch", a.batch}, {"routing", routing_text}, {"compute_s_per_token", compute_s},
                   {"compute_source", a.compute_s > 0 ? "--compute-s-per-token" : compute_note},
                   {"active_bytes_per_token", active}, {"reuse", reuse}, {"reuse_source", reuse_source},
                   {"prefetch_accuracy", a.prefetch_accuracy}, {"run_tokens", a.tokens},
                   {"budgets", budgets}};
    json out = json::array();
    for (const runtime::PlanRow& r : rows)
      out.push_back({{"budget_bytes", r.budget_bytes}, {"n_drives", r.n_drives}, {"drive_gbps", r.drive_gbps},
                     {"batch", r.batch}, {"cache_bytes", r.cache_bytes}, {"expert_cache_per_layer", r.expert_cache},
                     {"hit_rate", r.hit_rate}, {"read_bytes_per_token", r.read_bytes_per_token},
                     {"wasted_bytes_per_token", r.wasted_bytes_per_token}, {"read_s", r.read_s}, {"compute_s", r.compute_s},
                     {"tokens_per_s", r.tokens_per_s}, {"bound", r.bound()}});
    j["rows"] = out;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s: routing %s, batch %d, %s multiplied per token, compute %.4g s/token (%s)\n", a.model.c_str(),
                routing_text.c_str(), a.batch, format_bytes(double(active)).c_str(), compute_s,
                a.compute_s > 0 ? "--compute-s-per-token" : compute_note.c_str());
    std::printf("expert reuse %.3f (%s), prefetch accuracy %.2f, %s\n", reuse, reuse_source.c_str(), a.prefetch_accuracy,
                a.tokens > 0 ? fmt::format("{} steps after a warm-up step", a.tokens).c_str() : "steady state");
    std::printf("%-10s %-22s %10s %8s %12s %9s %9s %9s  %s\n", "budget", "drives", "cache", "hit", "read/token",
                "read s", "compute s", "tok/s", "bound by");
    for (const runtime::PlanRow& r : rows)
      std::printf("%-10s %-22s %10s %7.1f%% %12s %9.4f %9.4f %9.3f  %s\n", format_bytes(double(r.budget_bytes)).c_str(),
                  fmt::format("{} ({})", r.n_drives, drives_text(r.drive_gbps)).c_str(),
                  format_bytes(double(r.cache_bytes)).c_str(), 100 * r.hit_rate,
                  format_bytes(r.read_bytes_per_token).c_str(), r.read_s, r.compute_s, r.tokens_per_s, r.bound().c_str());
  }
  if (a.check_trace) check_trace(a, shape, routing, reuse, *trace, budgets);
  if (!a.png.empty()) write_png(a, sets, rows);
  return 0;
}

}  // namespace

void add_plan_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* c = app.add_subcommand("plan", "Predict streamed decode tokens/s for memory budgets, batch size and drives");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("--memory-budget", a->budgets, "Memory budgets, comma-separated list (2G,4G)")->delimiter(',')->required();
  c->add_option("-b,--batch", a->batch, "Sequences decoded together")->check(integer_at_least(1, 4096));
  c->add_option("--profile", a->profile, "Drive profile written by strata iobench --save-profile");
  c->add_option("--drives", a->drives, "Each drive's read speed in GB/s (1e9 bytes/s), comma-separated; the model is striped over them")
      ->delimiter(',')
      ->check(at_least(1e-6));
  c->add_option("--latency-us", a->latency_us, "Read latency of each --drives drive, microseconds")->check(at_least(0));
  c->add_option("--queue-depth", a->queue_depth, "Reads in flight per --drives drive")->check(at_least(1));
  c->add_option("--trace", a->trace, "Routing trace (run/bench --trace-routing): per-layer expert probabilities");
  c->add_option("--routing", a->routing, "Without --trace: uniform (top-k of E equally) or zipf:S");
  c->add_option("--compute-s-per-token", a->compute_s, "Compute time per token (default: measured once on this CPU)")
      ->check(at_least(0));
  c->add_option("-t,--threads", a->threads, "Threads for the compute measurement (default: all cores)")->check(integer_at_least(1));
  c->add_flag("--remeasure", a->remeasure, "Measure the compute rate again instead of using the cached figure");
  c->add_option("--tokens", a->tokens, "Decode steps the prediction averages over, after one warm-up step from a cold cache "
                                       "(strata bench: n_gen x reps; 0: steady state)")
      ->check(integer_at_least(0, int64_t(1) << 40));
  c->add_option("--reuse", a->reuse, "Share of a step's experts the previous step also used (default: the --trace's, else 0.70)")
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--prefetch-accuracy", a->prefetch_accuracy,
                "Share of predicted experts the next layer uses (bench's prefetch_accuracy; 1: no wasted reads)")
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--sweep-drives", a->sweep, "Also predict for N copies of the first drive, comma-separated counts")
      ->delimiter(',')
      ->check(integer_at_least(1, 1024));
  c->add_option("--png", a->png, "Plot tokens/s against budget, one line per drive set (gnuplot)");
  c->add_flag("--json", a->json, "Print one JSON object");
  c->add_flag("--check-trace", a->check_trace, "With --trace: compare the hit-rate model with strata cachesim's replay");
  c->callback([a, &exit_code] { exit_code = run(*a); });
}

}  // namespace strata::tools
