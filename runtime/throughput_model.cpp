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
  for (size_t l = 0; l < moe.size(); ++l) {
    const Experts& x = moe[l];
    if (!x.gate && !x.up && !x.down) continue;
    if (!x.gate || !x.up || !x.down) fail("layer {}: expert gate, up and down tensors must all be given", l);
    const uint64_t E = uint64_t(shape.n_expert);
    const uint64_t g = x.gate->nbytes / E, u = x.up->nbytes / E, d = x.down->nbytes / E;
    const bool split = g + u + d > max;
    const int64_t gu_rows = std::max<int64_t>(1, int64_t(max / std::max<uint64_t>(x.gate->row_stride + x.up->row_stride, 1)));
    const int64_t d_rows = std::max<int64_t>(1, int64_t(max / std::max<uint64_t>(x.down->row_stride, 1)));
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
  }
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

namespace {

// First-use misses per step of a unit needed with probability q per step, over a run of
// `steps` steps from a cold cache (0: steady state).
double cold_share(double q, int64_t steps) { return steps > 0 ? (1.0 - std::pow(1.0 - q, double(steps))) / double(steps) : 0.0; }

// The static cache over items of (q, bytes): capacity beyond the items with q = 1 counts
// `factor` times; the highest q first (among equals, smaller items first: a fixed latency each
// makes them cost more per byte to reload, as in the residency score). Calls miss(item, share
// missed per step) for every item.
template <typename Item, typename Miss>
void static_cache(std::vector<const Item*> order, double capacity, double factor, int64_t steps, Miss miss) {
  std::stable_sort(order.begin(), order.end(), [](const Item* a, const Item* b) {
    return a->q != b->q ? a->q > b->q : a->bytes < b->bytes;
  });
  double left = capacity;
  bool certain = true;
  for (const Item* u : order) {
    if (certain && u->q < 1.0) {
      certain = false;
      left *= factor;
    }
    const double cached = std::clamp(left / double(u->bytes), 0.0, 1.0);
    left -= cached * double(u->bytes);
    miss(*u, (1 - cached) * u->q + cached * cold_share(u->q, steps));
  }
}

// Expected bytes per step read from disk, and reads (spans cut at stripe boundaries).
struct Misses {
  double bytes = 0, requests = 0;
};
Misses static_cache_misses(const UnitPlan& plan, const PlanInputs& in, double capacity) {
  std::vector<const PlanUnit*> order;
  for (const PlanUnit& u : plan.units) order.push_back(&u);
  Misses m;
  static_cache<PlanUnit>(order, capacity, in.capacity_factor, in.run_steps, [&](const PlanUnit& u, double miss) {
    m.bytes += miss * double(u.bytes);
    m.requests += miss * (double(u.spans) + double(u.bytes) / double(in.stripe_bytes));
  });
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
  if (!(in.capacity_factor > 0)) fail("capacity factor must be > 0 (got {})", in.capacity_factor);
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
  const Misses m = static_cache_misses(plan, in, double(capacity));
  row.hit_rate = plan.needed_bytes_per_step ? 1.0 - m.bytes / double(plan.needed_bytes_per_step) : 1.0;
  row.read_bytes_per_token = m.bytes / in.batch;
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

double model_expert_hit_rate(const RoutingStats& routing, double capacity, int batch, double capacity_factor,
                             int64_t run_steps) {
  struct Item {
    double q;
    double bytes = 1;
  };
  std::vector<Item> items;
  for (const auto& layer : routing.p)
    for (double p : layer) items.push_back({per_step(p, batch)});
  std::vector<const Item*> order;
  for (const Item& i : items) order.push_back(&i);
  double hit = 0, total = 0;
  static_cache<Item>(order, std::max(capacity, 0.0), capacity_factor, run_steps, [&](const Item& i, double miss) {
    hit += i.q - miss;
    total += i.q;
  });
  return total > 0 ? hit / total : 1.0;
}

}  // namespace strata::runtime
