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
// 3. Cache: capacity = budget - pinned - 2 x the largest streamed unit (one unit in use while
//    the next loads; everything fits when budget - pinned covers all streamed units). The non-
//    expert units (q = 1 for dense ones) take it first, highest q first, as the residency policy
//    keeps them (a static cache: expected bytes read = sum over uncached units of q * bytes).
//    What is left holds c = left / (one expert's slot bytes) / (MoE layers) experts per layer.
//    Experts (the reuse model, per MoE layer with K = sum of its per-step probabilities q and E
//    experts; runtime/README.md has its check against `strata bench`):
//    - Hit curve H(c): the share of a step's experts among the c experts of that layer used most
//      recently. With r = the share of a step's experts the previous step also used (a trace's,
//      or kDefaultReuse), the self-similar reuse curve: the K most recent hold r of the
//      references, the next K hold r of the rest, and so on, linearly within each group of K,
//      the last group reaching 1 at c = E:
//        j = floor(c / K):  H = 1 - (1 - r)^j + (1 - r)^j * r * (c - jK) / K.
//      Skewed routing: H = max(that, the static share of the c most popular experts' q / K).
//    - Misses per step: K (1 - H(min(c, D))), D the experts of the layer seen so far: a run of
//      `run_steps` steps after one untimed warm-up step (as `strata bench` runs) starts at D = 0
//      and grows by the first uses, D += K (1 - R(D)) with R the reuse curve alone (no
//      popularity); steady state (run_steps = 0): D = E. r is at least independent choices'
//      own sum q^2 / K.
//    - Speculative reads: every MoE layer after the first has its experts predicted by the
//      layer before (models/model.cpp predict_experts), K of them, of which `prefetch_accuracy`
//      a are right. A wrong guess is read unless resident; it is taken as uniform over the
//      W - K experts of the run's working set the step does not use (W = D at the end of the
//      run; E in the steady state), of which min(c, D) - K H(min(c, D)) are cached. Wasted
//      experts per step = K (1 - a) (1 - min(1, cached / (W - K))).
//    Expected bytes read per step = non-expert misses + (expert misses + wasted guesses) x one
//    expert's slot bytes.
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
  uint64_t expert_slot_bytes = 0;   // one expert's units together (the mean over MoE layers)
  uint32_t expert_spans = 0;        // the file ranges one expert reads
  int64_t moe_layers = 0;
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

// Reuse between consecutive steps without a trace: measured on the synthesized 8-expert top-2
// model (topo-moe-1024x16-e8, --routing uniform: 0.71 over 13 steps, 0.68 over 97); the
// synthesized mixtral-like and 64-expert zipf models measure 0.68 and 0.64 (runtime/README.md).
inline constexpr double kDefaultReuse = 0.70;
// The share of predicted experts the next layer uses (bench's prefetch_accuracy): 0.71 on the
// 8-expert synthesized model, 0.83 and 0.77 on the larger ones.
inline constexpr double kDefaultPrefetchAccuracy = 0.70;

// The share of a step's distinct experts (per layer) that the previous step also used, over
// the whole trace (strata::Error when no layer has two consecutive steps).
double reuse_from_trace(const RoutingTrace& trace);

// The hit curve H(c) of one layer (see 3.): q = each expert's per-step need probability.
double expert_hit_curve(const std::vector<double>& q, double reuse, double cache_experts);

// One layer's expected expert traffic per step, in experts: misses (chosen, not resident) and
// wasted speculative reads (prefetch_accuracy 1: none; `predicted` false: the layer is not
// predicted), averaged over `run_steps` steps after a warm-up step (0: steady state).
struct ExpertTraffic {
  double misses = 0, wasted = 0, needed = 0;  // needed = K
};
ExpertTraffic expert_traffic(const std::vector<double>& q, double cache_experts, double reuse, double prefetch_accuracy,
                             bool predicted, int64_t run_steps);

struct PlanInputs {
  uint64_t budget = 0;
  int batch = 1;
  std::vector<Drive> drives;
  double compute_s_per_token = 0;
  double reuse = kDefaultReuse;     // share of a step's experts the previous step used
  double prefetch_accuracy = kDefaultPrefetchAccuracy;  // 1: no wasted speculative reads
  int64_t run_steps = 0;            // steps after one warm-up step; 0: steady state
  uint64_t stripe_bytes = 1 << 20;  // RAID-0 stripe
};

struct PlanRow {
  uint64_t budget_bytes = 0;
  int batch = 1;
  int n_drives = 0;
  std::vector<double> drive_gbps;
  uint64_t cache_bytes = 0;        // what the cache holds
  double expert_cache = 0;         // experts cached per MoE layer (c)
  double hit_rate = 0;             // 1 - missed bytes / needed bytes, per step (speculative reads aside)
  double read_bytes_per_token = 0;  // misses and wasted speculative reads
  double wasted_bytes_per_token = 0;  // the wasted speculative reads alone
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
// of them (capacity / layers per layer), dense weights and speculative reads not counted; the
// expected share of (step, layer, expert) visits that hit over `run_steps` steps after a warm-up
// step (0: steady state). batch > 1 uses per-step need probabilities.
double model_expert_hit_rate(const RoutingStats& routing, double capacity, int batch = 1, double reuse = kDefaultReuse,
                             int64_t run_steps = 0);

}  // namespace strata::runtime
