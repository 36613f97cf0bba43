#include "runtime/throughput_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "storage/error.h"

namespace strata::runtime {
namespace {

constexpr uint64_t kAlign = 4096;  // O_DIRECT spans and pool slots
uint64_t round_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
// The 4 KiB-aligned span around [offset, offset + length).
uint64_t span(uint64_t offset, uint64_t length) { return round_up(offset + length) - offset / kAlign * kAlign; }

// Probability that at least one of `batch` independent tokens needs a unit one token needs
// with probability p.
double per_step(double p, int batch) { return 1.0 - std::pow(1.0 - std::clamp(p, 0.0, 1.0), batch); }

void check_routing(const ModelShape& shape, const RoutingStats& routing) {
  if (shape.n_expert == 0) return;
  for (const TensorShape& t : shape.tensors) {
    const bool expert = t.role == TensorRole::ExpertGate || t.role == TensorRole::ExpertUp || t.role == TensorRole::ExpertDown;
    if (!expert) continue;
    if (t.layer < 0 || size_t(t.layer) >= routing.p.size() || routing.p[size_t(t.layer)].size() != size_t(shape.n_expert))
      fail("routing statistics: no probabilities for the {} experts of layer {} (tensor '{}'); they cover {} layers",
           shape.n_expert, t.layer, t.name, routing.p.size());
  }
}

}  // namespace

RoutingStats uniform_routing(int64_t n_layer, int64_t n_expert, int64_t n_used) {
  return zipf_routing(n_layer, n_expert, n_used, 0.0);
}

RoutingStats zipf_routing(int64_t n_layer, int64_t n_expert, int64_t n_used, double s) {
  if (n_expert < 1 || n_used < 1 || n_used > n_expert)
    fail("routing: {} experts with {} used per token is not a routing to model", n_expert, n_used);
  if (!(s >= 0)) fail("routing: the zipf exponent must be >= 0 (got {})", s);
  std::vector<double> w(static_cast<size_t>(n_expert));
  for (int64_t r = 0; r < n_expert; ++r) w[size_t(r)] = std::pow(double(r + 1), -s);
  // Water-filling: experts that would exceed 1 are set to 1 and the rest rescaled.
  std::vector<double> p(w.size(), 0.0);
  std::vector<bool> full(w.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    double rest = double(n_used), sum = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      if (full[i]) rest -= 1;
      else sum += w[i];
    }
    for (size_t i = 0; i < w.size(); ++i) {
      p[i] = full[i] ? 1.0 : rest * w[i] / sum;
      if (!full[i] && p[i] > 1.0) full[i] = changed = true;
    }
  }
  RoutingStats r;
  r.p.assign(size_t(n_layer), p);
  return r;
}

RoutingStats routing_from_trace(const RoutingTrace& trace) {
  const RoutingTraceHeader& h = trace.header;
  if (trace.records.empty()) fail("routing trace: no routing records (only the header)");
  RoutingStats r;
  r.p.assign(size_t(h.n_layer), std::vector<double>(size_t(h.n_expert), 0.0));
  std::vector<double> tokens(size_t(h.n_layer), 0.0);
  for (const RoutingRecord& rec : trace.records) {
    tokens[size_t(rec.layer)] += double(rec.n_tokens);
    for (int32_t e : rec.experts) r.p[size_t(rec.layer)][size_t(e)] += 1.0;
  }
  for (int64_t l = 0; l < h.n_layer; ++l) {
    if (tokens[size_t(l)] == 0) fail("routing trace: layer {} has no records", l);
    for (double& v : r.p[size_t(l)]) v /= tokens[size_t(l)];
  }
  return r;
}

uint64_t max_unit_bytes_for_budget(uint64_t budget) {
  return std::clamp<uint64_t>(budget / 8, 64ull << 10, 256ull << 20);
}

UnitPlan plan_units(const ModelShape& shape, const RoutingStats& routing, uint64_t budget, int batch) {
  check_routing(shape, routing);
  UnitPlan plan;
  plan.max_unit_bytes = max_unit_bytes_for_budget(budget);
  const uint64_t max = plan.max_unit_bytes;
  auto add = [&](uint64_t slot, uint32_t spans, double q, bool expert) {
    slot = round_up(std::max<uint64_t>(slot, 1));
    plan.units.push_back({slot, spans, q, expert});
    plan.largest_unit_bytes = std::max(plan.largest_unit_bytes, slot);
    plan.streamed_bytes += slot;
  };
  int64_t vocab = 0;
  for (const TensorShape& t : shape.tensors)
    if (t.role == TensorRole::Embedding) vocab = t.rows;
  // Gate, up and down of each MoE layer, found by layer.
  struct Experts { const TensorShape *gate = nullptr, *up = nullptr, *down = nullptr; };
  std::vector<Experts> moe(size_t(std::max<int64_t>(shape.n_layer, 0) + 1));
  for (const TensorShape& t : shape.tensors) {
    switch (t.role) {
      case TensorRole::Pinned: plan.pinned_bytes += round_up(std::max<uint64_t>(span(t.offset, t.nbytes), 1)); break;
      case TensorRole::Dense:
      case TensorRole::Embedding: {
        const uint64_t stride = std::max<uint64_t>(t.row_stride, 1);
        const int64_t per = t.nbytes > max ? std::max<int64_t>(1, int64_t(max / stride)) : t.rows;
        for (int64_t r0 = 0; r0 < t.rows; r0 += per) {
          const int64_t n = std::min(per, t.rows - r0);
          const double q = t.role == TensorRole::Dense ? 1.0 : per_step(double(n) / double(std::max<int64_t>(vocab, 1)), batch);
          add(span(t.offset + uint64_t(r0) * stride, uint64_t(n) * stride), 1, q, false);
        }
        break;
      }
      default: {
        if (t.layer < 0 || t.layer >= shape.n_layer) fail("tensor '{}': expert layer {} out of range", t.name, t.layer);
        Experts& x = moe[size_t(t.layer)];
        (t.role == TensorRole::ExpertGate ? x.gate : t.role == TensorRole::ExpertUp ? x.up : x.down) = &t;
      }
    }
  }
  double expert_bytes = 0;
  for (size_t l = 0; l < moe.size(); ++l) {
    const Experts& x = moe[l];
    if (!x.gate && !x.up && !x.down) continue;
    if (!x.gate || !x.up || !x.down) fail("layer {}: expert gate, up and down tensors must all be given", l);
    const uint64_t E = uint64_t(shape.n_expert);
    const uint64_t g = x.gate->nbytes / E, u = x.up->nbytes / E, d = x.down->nbytes / E;
    const bool split = g + u + d > max;
    const int64_t gu_rows = std::max<int64_t>(1, int64_t(max / std::max<uint64_t>(x.gate->row_stride + x.up->row_stride, 1)));
    const int64_t d_rows = std::max<int64_t>(1, int64_t(max / std::max<uint64_t>(x.down->row_stride, 1)));
    ++plan.moe_layers;
    const uint64_t before = plan.streamed_bytes;
    const size_t units_before = plan.units.size();
    for (uint64_t e = 0; e < E; ++e) {
      const double q = per_step(routing.p[l][e], batch);
      const uint64_t go = x.gate->offset + g * e, uo = x.up->offset + u * e, dof = x.down->offset + d * e;
      if (!split) {
        add(span(go, g) + span(uo, u) + span(dof, d), 3, q, true);
        continue;
      }
      for (int64_t r0 = 0; r0 < x.gate->rows; r0 += gu_rows) {
        const int64_t n = std::min(gu_rows, x.gate->rows - r0);
        add(span(go + uint64_t(r0) * x.gate->row_stride, uint64_t(n) * x.gate->row_stride) +
                span(uo + uint64_t(r0) * x.up->row_stride, uint64_t(n) * x.up->row_stride), 2, q, true);
      }
      for (int64_t r0 = 0; r0 < x.down->rows; r0 += d_rows) {
        const int64_t n = std::min(d_rows, x.down->rows - r0);
        add(span(dof + uint64_t(r0) * x.down->row_stride, uint64_t(n) * x.down->row_stride), 1, q, true);
      }
    }
    expert_bytes += double(plan.streamed_bytes - before) / double(E);
    uint32_t spans = 0;
    for (size_t i = units_before; i < plan.units.size(); ++i) spans += plan.units[i].spans;
    plan.expert_spans = std::max<uint32_t>(plan.expert_spans, uint32_t(spans / E));
  }
  if (plan.moe_layers) plan.expert_slot_bytes = uint64_t(std::llround(expert_bytes / double(plan.moe_layers)));
  double needed = 0;
  for (const PlanUnit& u : plan.units) needed += u.q * double(u.bytes);
  plan.needed_bytes_per_step = uint64_t(std::llround(needed));
  plan.minimum_budget = plan.pinned_bytes + 2 * plan.largest_unit_bytes;
  return plan;
}

uint64_t active_bytes_per_token(const ModelShape& shape, const RoutingStats& routing) {
  check_routing(shape, routing);
  double bytes = 0;
  for (const TensorShape& t : shape.tensors) {
    if (t.role == TensorRole::Dense) bytes += double(t.nbytes);
    const bool expert = t.role == TensorRole::ExpertGate || t.role == TensorRole::ExpertUp || t.role == TensorRole::ExpertDown;
    if (!expert) continue;
    const auto& p = routing.p[size_t(t.layer)];
    bytes += double(t.nbytes) / double(shape.n_expert) * std::accumulate(p.begin(), p.end(), 0.0);
  }
  return uint64_t(std::llround(bytes));
}

double reuse_from_trace(const RoutingTrace& trace) {
  const RoutingTraceHeader& h = trace.header;
  std::vector<std::vector<int32_t>> prev(size_t(std::max<int64_t>(h.n_layer, 0)));
  std::vector<int64_t> prev_step(prev.size(), -2);
  double reused = 0, total = 0;
  for (const RoutingRecord& rec : trace.records) {
    if (rec.layer < 0 || size_t(rec.layer) >= prev.size()) continue;
    std::vector<int32_t> cur = rec.experts;
    std::sort(cur.begin(), cur.end());
    cur.erase(std::unique(cur.begin(), cur.end()), cur.end());
    const size_t l = size_t(rec.layer);
    if (prev_step[l] == rec.step - 1) {
      total += double(cur.size());
      for (int32_t e : cur) reused += std::binary_search(prev[l].begin(), prev[l].end(), e) ? 1.0 : 0.0;
    }
    prev[l] = std::move(cur);
    prev_step[l] = rec.step;
  }
  if (total == 0) fail("routing trace: no layer has two consecutive steps to measure reuse between");
  return reused / total;
}

namespace {

// The self-similar reuse curve alone (expert_hit_curve without popularity).
double recency_curve(double E, double K, double r, double c) {
  if (K <= 0 || c >= E) return 1.0;
  if (c <= 0) return 0.0;
  double left = 1.0, at = 0, h = 0;
  for (;;) {
    if (at + K >= E) return h + left * (c - at) / (E - at);  // the last group reaches 1 at E
    if (c <= at + K) return h + left * r * (c - at) / K;
    h += left * r;
    left *= 1 - r;
    at += K;
  }
}

}  // namespace

double expert_hit_curve(const std::vector<double>& q, double reuse, double c) {
  const double K = std::accumulate(q.begin(), q.end(), 0.0);
  const double h = recency_curve(double(q.size()), K, std::clamp(reuse, 0.0, 1.0), c);
  if (K <= 0 || h >= 1.0) return 1.0;
  // Popularity: the c most popular experts' share, cached statically.
  std::vector<double> s = q;
  std::sort(s.begin(), s.end(), std::greater<>());
  double stat = 0, room = std::max(c, 0.0);
  for (double v : s) {
    const double part = std::min(room, 1.0);
    if (part <= 0) break;
    stat += part * v;
    room -= part;
  }
  return std::clamp(std::max(h, stat / K), 0.0, 1.0);
}

ExpertTraffic expert_traffic(const std::vector<double>& q, double c, double reuse, double accuracy, bool predicted,
                             int64_t steps) {
  const double E = double(q.size());
  const double K = std::accumulate(q.begin(), q.end(), 0.0);
  // Independent choices reuse sum q^2 / K: the floor for any routing.
  const double r = std::clamp(std::max(reuse, K > 0 ? std::inner_product(q.begin(), q.end(), q.begin(), 0.0) / K : 0.0), 0.0, 1.0);
  const double wrong = predicted ? K * (1 - std::clamp(accuracy, 0.0, 1.0)) : 0.0;
  // The experts seen after t steps: D(0) = 0, D += K (1 - recency(D)) (the first uses).
  const auto grow = [&](double D) { return std::min(E, D + K * (1 - recency_curve(E, K, r, D))); };
  // The run's working set W (all E in the steady state): the experts a wrong guess is drawn from.
  double W = E;
  if (steps > 0) {
    W = 0;
    for (int64_t t = 0; t <= steps; ++t) {
      const double next = grow(W);
      if (next - W < 1e-12) break;
      W = next;
    }
  }
  // One step with D experts seen so far: misses of the chosen, and guesses not resident.
  const auto step = [&](double D) {
    const double cc = std::min(c, D), h = expert_hit_curve(q, r, cc);
    const double cached = std::max(cc - K * h, 0.0);  // cached experts the step does not use
    const double resident = W - K > 1e-9 ? std::min(cached / (W - K), 1.0) : 1.0;
    return ExpertTraffic{K * (1 - h), wrong * (1 - resident), K};
  };
  if (steps <= 0) return step(E);
  ExpertTraffic sum{0, 0, K};
  double D = 0;
  for (int64_t t = 0; t <= steps; ++t) {
    const ExpertTraffic s = step(D);
    const double next = grow(D);
    if (t > 0) {
      sum.misses += s.misses;
      sum.wasted += s.wasted;
      if (next - D < 1e-12) {  // nothing new from here on: the rest of the run repeats this step
        sum.misses += s.misses * double(steps - t);
        sum.wasted += s.wasted * double(steps - t);
        break;
      }
    }
    D = next;
  }
  sum.misses /= double(steps);
  sum.wasted /= double(steps);
  return sum;
}

namespace {

// Share of a non-expert unit (need probability q per step) read per step for first uses over
// `steps` steps after a warm-up step (0: steady state, none).
double cold_share(double q, int64_t steps) {
  return steps > 0 ? (1.0 - q) * (1.0 - std::pow(1.0 - q, double(steps))) / double(steps) : 0.0;
}

struct Misses {
  double bytes = 0, requests = 0, wasted = 0, expert_cache = 0;
};

// The non-expert units take the cache first (highest q first, among equals smaller ones first),
// the rest holds experts: the reuse model per MoE layer.
Misses cache_misses(const UnitPlan& plan, const RoutingStats& routing, const PlanInputs& in, double capacity) {
  std::vector<const PlanUnit*> order;
  for (const PlanUnit& u : plan.units)
    if (!u.expert) order.push_back(&u);
  std::stable_sort(order.begin(), order.end(), [](const PlanUnit* a, const PlanUnit* b) {
    return a->q != b->q ? a->q > b->q : a->bytes < b->bytes;
  });
  Misses m;
  double left = capacity;
  for (const PlanUnit* u : order) {
    const double cached = std::clamp(left / double(u->bytes), 0.0, 1.0);
    left -= cached * double(u->bytes);
    const double miss = (1 - cached) * u->q + cached * cold_share(u->q, in.run_steps);
    m.bytes += miss * double(u->bytes);
    m.requests += miss * (double(u->spans) + double(u->bytes) / double(in.stripe_bytes));
  }
  if (plan.moe_layers == 0 || plan.expert_slot_bytes == 0) return m;
  m.expert_cache = std::max(left, 0.0) / double(plan.expert_slot_bytes) / double(plan.moe_layers);
  bool first = true;
  for (const auto& layer : routing.p) {
    std::vector<double> q;
    for (double p : layer) q.push_back(per_step(p, in.batch));
    const ExpertTraffic t = expert_traffic(q, m.expert_cache, in.reuse, in.prefetch_accuracy, !first, in.run_steps);
    first = false;
    const double n = t.misses + t.wasted;
    m.bytes += n * double(plan.expert_slot_bytes);
    m.wasted += t.wasted * double(plan.expert_slot_bytes);
    m.requests += n * (double(plan.expert_spans) + double(plan.expert_slot_bytes) / double(in.stripe_bytes));
  }
  return m;
}

}  // namespace

std::string PlanRow::bound() const {
  if (!drives_bound) return "compute";
  if (drives_equal || slowest_drive < 0) return "drives";
  return slowest_name + " (slowest drive)";
}

PlanRow predict(const ModelShape& shape, const RoutingStats& routing, const PlanInputs& in) {
  if (in.batch < 1) fail("batch must be >= 1 (got {})", in.batch);
  if (in.drives.empty()) fail("no drives: give at least one drive's read speed");
  for (size_t i = 0; i < in.drives.size(); ++i) {
    const Drive& d = in.drives[i];
    if (!(d.read_gbps > 0)) fail("drive {}: read speed must be > 0 GB/s (got {})", i + 1, d.read_gbps);
    if (!(d.latency_us >= 0)) fail("drive {}: latency must be >= 0 us (got {})", i + 1, d.latency_us);
    if (!(d.queue_depth >= 1)) fail("drive {}: queue depth must be >= 1 (got {})", i + 1, d.queue_depth);
  }
  if (!(in.compute_s_per_token >= 0)) fail("compute time per token must be >= 0 s (got {})", in.compute_s_per_token);
  if (!(in.reuse >= 0 && in.reuse <= 1)) fail("reuse must be in [0, 1] (got {})", in.reuse);
  if (!(in.prefetch_accuracy >= 0 && in.prefetch_accuracy <= 1))
    fail("prefetch accuracy must be in [0, 1] (got {})", in.prefetch_accuracy);
  if (in.stripe_bytes == 0) fail("stripe size must be > 0");

  const UnitPlan plan = plan_units(shape, routing, in.budget, in.batch);
  if (in.budget < plan.minimum_budget)
    fail("memory budget {} bytes is below this model's minimum {} bytes ({} pinned + 2 x {} for the largest streamed unit)",
         in.budget, plan.minimum_budget, plan.pinned_bytes, plan.largest_unit_bytes);
  PlanRow row;
  row.budget_bytes = in.budget;
  row.batch = in.batch;
  row.n_drives = int(in.drives.size());
  const uint64_t room = in.budget - plan.pinned_bytes;
  const uint64_t capacity = room >= plan.streamed_bytes ? plan.streamed_bytes : room - 2 * plan.largest_unit_bytes;
  row.cache_bytes = capacity;
  const Misses m = cache_misses(plan, routing, in, double(capacity));
  row.expert_cache = m.expert_cache;
  row.hit_rate = plan.needed_bytes_per_step ? 1.0 - (m.bytes - m.wasted) / double(plan.needed_bytes_per_step) : 1.0;
  row.read_bytes_per_token = m.bytes / in.batch;
  row.wasted_bytes_per_token = m.wasted / in.batch;
  row.requests_per_step = m.requests;
  const double n = double(in.drives.size());
  for (size_t i = 0; i < in.drives.size(); ++i) {
    const Drive& d = in.drives[i];
    row.drive_gbps.push_back(d.read_gbps);
    if (d.read_gbps != in.drives.front().read_gbps || d.latency_us != in.drives.front().latency_us) row.drives_equal = false;
    const double t = m.bytes / n / (d.read_gbps * 1e9) + m.requests / n * d.latency_us * 1e-6 / d.queue_depth;
    if (row.slowest_drive < 0 || t > row.read_s) {
      row.read_s = t;
      row.slowest_drive = int(i);
    }
  }
  const Drive& slow = in.drives[size_t(row.slowest_drive)];
  row.slowest_name = slow.name.empty() ? "drive " + std::to_string(row.slowest_drive + 1) : slow.name;
  row.compute_s = in.compute_s_per_token * in.batch;
  const double step = std::max(row.read_s, row.compute_s);
  row.drives_bound = row.read_s > row.compute_s;
  row.tokens_per_s = step > 0 ? in.batch / step : 0;
  return row;
}

double model_expert_hit_rate(const RoutingStats& routing, double capacity, int batch, double reuse, int64_t run_steps) {
  if (routing.p.empty()) return 1.0;
  const double c = std::max(capacity, 0.0) / double(routing.p.size());
  double missed = 0, needed = 0;
  for (const auto& layer : routing.p) {
    std::vector<double> q;
    for (double p : layer) q.push_back(per_step(p, batch));
    const ExpertTraffic t = expert_traffic(q, c, reuse, 1.0, false, run_steps);
    missed += t.misses;
    needed += t.needed;
  }
  return needed > 0 ? 1.0 - missed / needed : 1.0;
}

}  // namespace strata::runtime
