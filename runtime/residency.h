// The residency policy: which unit to evict when the pool is full. It scores every evictable
// unit by how much keeping it is worth per byte of pool it holds, and evicts the lowest first.
//
//   keep = (w_freq * freq + w_recency * recency) * reload_cost / bytes / (1 + distance)
//
// - freq: accesses with exponential decay (half-life `freq_half_life` layers of the layer clock):
//   each access adds 1 after decaying the old value. Experts a router keeps choosing score high.
// - recency: 2^-(layers since the last access / recency_half_life), in (0, 1].
// - reload_cost: seconds to read the unit again = read latency + bytes / measured bandwidth.
//   Divided by bytes it is the cost per byte of pool, so small units (a fixed latency each) are
//   kept a little longer than big ones of equal use.
// - distance: layers until the unit's layer runs again on the layer clock (0 = the current layer;
//   embeddings and output count as the ends of the step). With a budget below the working set
//   this is what beats LRU: LRU evicts exactly the layer needed next, distance evicts the one
//   needed last.
// - pinned units, units leased to a job, loading units and units requested for the current step
//   are never candidates (the provider filters them before scoring).
//
// The layer clock counts layers passed since the start: step * (n_layer + 2) + layer + 1.
#pragma once
#include <cstdint>

namespace strata::runtime {

struct ResidencyParams {
  double w_freq = 1.0;
  double w_recency = 1.0;
  // 128 layers (about five decode steps of a 24-layer model), from `strata cachesim` replays of
  // skewed (zipf 0.5) traces: on the 11.1 GB 8-expert reference MoE with a quarter of the experts
  // cached, 64 reached 0.895 of Belady's optimum and 128 0.908 (LRU 0.860); 256 and more keep
  // yesterday's favourites too long (below LRU on a 64-expert model at 12% cached, and 1024 below
  // LRU at half cached); on the 64-expert model 64 and 128 tie.
  double freq_half_life = 128;    // layers
  double recency_half_life = 32;  // layers
  double read_latency_s = 200e-6;
};

// Per-unit access history.
struct UnitUsage {
  double freq = 0;          // decayed access count, as of last_clock
  int64_t last_clock = -1;  // -1: never accessed
};

class ResidencyPolicy {
 public:
  ResidencyPolicy(ResidencyParams p, int n_layers) : p_(p), n_layers_(n_layers) {}

  // The layer clock for (step, layer), layer in [-1, n_layers].
  int64_t clock(int64_t step, int layer) const { return step * (n_layers_ + 2) + layer + 1; }
  void on_access(UnitUsage& u, int64_t now) const;
  double freq(const UnitUsage& u, int64_t now) const;
  double recency(const UnitUsage& u, int64_t now) const;
  // Layers from `current` (the layer running now) until `unit_layer` runs next; both in
  // [-1, n_layers] (-1: embeddings, n_layers: output). 0 when they are equal.
  int distance(int unit_layer, int current) const;
  double reload_cost_s(uint64_t bytes, double bandwidth_bytes_per_s) const;
  // `distance` as distance() gives it, except that a unit already used in the current visit of
  // its layer (or an expert the router did not choose there) is a full period away.
  double keep_score(const UnitUsage& u, uint64_t bytes, int distance, int64_t now, double bandwidth_bytes_per_s) const;
  int period() const { return n_layers_ + 2; }
  const ResidencyParams& params() const { return p_; }

 private:
  ResidencyParams p_;
  int n_layers_;
};

}  // namespace strata::runtime
