// The throughput model behind `strata plan`: predicted decode tokens/s of a streamed MoE model
// for a memory budget, a batch size and a set of drives, from the model's tensor shapes, its
// routing statistics and the CPU's compute time per token. Pure arithmetic: the caller fills
// the plain structs below (tools/cmd_plan.cpp does it from a GGUF file).
//
// 1. Units. The tensors are cut into units as the streaming provider cuts them (models/
//    weights.cpp, runtime/streaming_provider.cpp): norms and routers are pinned (one unit each,
//    resident always); a matrix above max_unit_bytes = clamp(budget / 8, 64 KiB, 256 MiB) is
//    split into row blocks; an expert is one unit of its gate, up and down slices, or gate+up
//    and down row blocks when it is above max_unit_bytes. Each file range takes its 4 KiB-
//    aligned span; a unit's slot is the sum, rounded to 4 KiB.
// 2. Need probability per forward step of b tokens: dense units 1; an expert chosen by a token
//    with probability p (routing statistics) 1 - (1 - p)^b; an embedding row block holding r of
//    the V vocabulary rows 1 - (1 - r / V)^b.
// 3. Cache (the hit-rate model; runtime/README.md has its check against `strata cachesim`):
//    capacity = budget - pinned - 2 x the largest streamed unit (one unit in use while the next
//    loads; everything fits when budget - pinned covers all streamed units). The cache is
//    static: it holds the units with the highest need probability q (caching a unit saves q
//    bytes per step per byte of cache, so q is the value per byte), filled greedily, the last
//    one fractionally. Expected bytes read per step = sum over uncached units of q * slot bytes
//    (independent references). Two corrections: the capacity beyond the units every step needs
//    counts `capacity_factor` times (consecutive tokens reuse experts, which a static cache of
//    average probabilities does not see; fitted on one trace, checked on another), and a run
//    of `run_steps` steps from a cold cache also misses each cached unit's first use:
//    (1 - (1 - q)^steps) / steps of its bytes per step.
// 4. Read time per step: the model is striped RAID-0 over the drives in `stripe_bytes` stripes,
//    so each drive serves 1/N of the bytes: read_s = max over drives of
//    bytes / N / speed_d + requests / N * latency_d / queue_depth_d, where requests counts
//    every missed unit's spans cut at stripe boundaries. Unequal drives: the slowest binds.
// 5. Compute time per step = b * compute_s_per_token. Step time = max(read_s, compute_s)
//    (reads overlap compute in strata's pipeline); tokens/s = b / step time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/routing_trace.h"

namespace strata::runtime {

enum class TensorRole { Pinned, Dense, Embedding, ExpertGate, ExpertUp, ExpertDown };

struct TensorShape {
  std::string name;
  TensorRole role = TensorRole::Dense;
  int layer = -1;           // -1: embeddings; n_layer: output
  uint64_t offset = 0;      // byte offset in its file
  uint64_t nbytes = 0;      // the whole tensor (all experts for an expert tensor)
  int64_t rows = 0;         // rows (of one expert, for expert tensors)
  uint64_t row_stride = 0;  // bytes per row
};

struct ModelShape {
  std::vector<TensorShape> tensors;
  int64_t n_layer = 0;
  int64_t n_expert = 0;  // 0: dense model
  int64_t n_expert_used = 0;
};

// Routing statistics: p[layer][expert] = probability that one token chooses the expert there.
// Each layer sums to n_expert_used.
struct RoutingStats {
  std::vector<std::vector<double>> p;
};
RoutingStats uniform_routing(int64_t n_layer, int64_t n_expert, int64_t n_used);
// Expert of rank r (0-based) chosen with probability proportional to (r + 1)^-s, scaled to sum
// to n_used, no expert above 1 (water-filling). s = 0 is uniform.
RoutingStats zipf_routing(int64_t n_layer, int64_t n_expert, int64_t n_used, double s);
// The share of tokens choosing each expert in each layer, counted over the whole trace
// (strata::Error when the trace has no records or a layer has none).
RoutingStats routing_from_trace(const RoutingTrace& trace);

struct PlanUnit {
  uint64_t bytes = 0;  // pool slot
  uint32_t spans = 0;  // file ranges read
  double q = 0;        // probability a step needs it
  bool expert = false;
};

struct UnitPlan {
  uint64_t max_unit_bytes = 0;
  uint64_t pinned_bytes = 0;
  uint64_t largest_unit_bytes = 0;  // the largest streamed unit's slot
  uint64_t streamed_bytes = 0;      // all streamed slots
  uint64_t minimum_budget = 0;      // pinned + 2 x largest: below it the provider refuses to start
  uint64_t needed_bytes_per_step = 0;  // sum of q * bytes over streamed units (expected)
  std::vector<PlanUnit> units;      // streamed units
};

uint64_t max_unit_bytes_for_budget(uint64_t budget);
// strata::Error naming the tensor when the routing statistics do not match the shape.
UnitPlan plan_units(const ModelShape& shape, const RoutingStats& routing, uint64_t budget, int batch);

// Bytes the CPU multiplies per token: every dense matrix (not the embedding, read a row at a
// time) plus each expert weighted by how often a token chooses it.
uint64_t active_bytes_per_token(const ModelShape& shape, const RoutingStats& routing);

struct Drive {
  std::string name;
  double read_gbps = 0;     // 1e9 bytes/s
  double latency_us = 100;  // per read
  double queue_depth = 16;  // reads in flight on this drive
};

// Fitted on a recorded trace of the 8-expert top-2 reference model and checked on the
// 64-expert top-4 zipf one (runtime/README.md).
inline constexpr double kCapacityFactor = 1.3;

struct PlanInputs {
  uint64_t budget = 0;
  int batch = 1;
  std::vector<Drive> drives;
  double compute_s_per_token = 0;
  double capacity_factor = kCapacityFactor;  // see above; 1 = the plain static cache
  int64_t run_steps = 0;            // 0: steady state (no first-use misses)
  uint64_t stripe_bytes = 1 << 20;  // RAID-0 stripe
};

struct PlanRow {
  uint64_t budget_bytes = 0;
  int batch = 1;
  int n_drives = 0;
  std::vector<double> drive_gbps;
  uint64_t cache_bytes = 0;        // what the cache holds (after capacity_factor)
  double hit_rate = 0;             // 1 - read bytes / needed bytes, per step
  double read_bytes_per_token = 0;
  double requests_per_step = 0;
  double read_s = 0;     // per step
  double compute_s = 0;  // per step
  double tokens_per_s = 0;
  bool drives_bound = false;  // else compute binds
  int slowest_drive = -1;     // the drive whose time is read_s (0-based)
  std::string slowest_name;   // its Drive::name, or "drive N" (1-based) when unnamed
  bool drives_equal = true;
  std::string bound() const;  // "drives", "<name> (slowest drive)", "compute"
};

// strata::Error naming the field when an input is out of range or the budget is below the
// model's minimum.
PlanRow predict(const ModelShape& shape, const RoutingStats& routing, const PlanInputs& in);

// The hit-rate model in `strata cachesim`'s terms: equal-size experts, a cache of `capacity`
// of them, dense weights not counted; the expected share of (step, layer, expert) visits that
// hit. batch > 1 uses per-step need probabilities.
double model_expert_hit_rate(const RoutingStats& routing, double capacity, int batch = 1,
                             double capacity_factor = kCapacityFactor, int64_t run_steps = 0);

}  // namespace strata::runtime
