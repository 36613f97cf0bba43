// The throughput model's arithmetic (runtime/throughput_model.h) on small hand-computed cases:
// unit sizes, the static cache's hit rate, striping over equal and unequal drives, and which
// resource binds.
#include <doctest/doctest.h>

#include <numeric>
#include <string>

#include "runtime/throughput_model.h"
#include "storage/error.h"

using namespace strata;
using namespace strata::runtime;

namespace {

constexpr uint64_t KiB = 1024;

// One MoE layer of 8 experts, top-2; each expert's gate, up and down slices are 16 KiB (16 rows of
// 1 KiB), 4 KiB-aligned, so an expert's slot is 48 KiB. One 4 KiB norm is pinned.
ModelShape tiny_moe() {
  ModelShape s;
  s.n_layer = 1;
  s.n_expert = 8;
  s.n_expert_used = 2;
  s.tensors.push_back({"blk.0.attn_norm.weight", TensorRole::Pinned, 0, 0, 4 * KiB, 1, 4 * KiB});
  uint64_t at = 4 * KiB;
  for (TensorRole r : {TensorRole::ExpertGate, TensorRole::ExpertUp, TensorRole::ExpertDown}) {
    s.tensors.push_back({"blk.0.exps", r, 0, at, 8 * 16 * KiB, 16, 1 * KiB});
    at += 8 * 16 * KiB;
  }
  return s;
}

constexpr uint64_t kExpert = 48 * KiB;
// Pinned + 2 in-flight slots + n experts of cache.
uint64_t budget_for(int n) { return 4 * KiB + 2 * kExpert + uint64_t(n) * kExpert; }

PlanInputs inputs(uint64_t budget, std::vector<double> gbps, double compute_s = 1e-9) {
  PlanInputs in;
  in.budget = budget;
  for (double g : gbps) in.drives.push_back({"", g, 0.0, 16});
  in.compute_s_per_token = compute_s;
  in.reuse = 0;                // independent choices: a static cache of the most popular
  in.prefetch_accuracy = 1.0;  // no wasted speculative reads
  return in;
}

}  // namespace

TEST_CASE("units are sized as the streaming provider sizes them") {
  const ModelShape s = tiny_moe();
  const RoutingStats r = uniform_routing(1, 8, 2);
  const UnitPlan p = plan_units(s, r, budget_for(4), 1);
  CHECK(p.max_unit_bytes == 64 * KiB);  // budget / 8 is below the 64 KiB floor
  CHECK(p.pinned_bytes == 4 * KiB);
  REQUIRE(p.units.size() == 8);
  CHECK(p.largest_unit_bytes == kExpert);
  CHECK(p.minimum_budget == 4 * KiB + 2 * kExpert);
  CHECK(p.needed_bytes_per_step == 2 * kExpert);  // top-2: two experts per token

  // A dense matrix above the unit cap becomes row blocks; a misaligned range takes its aligned span.
  ModelShape d;
  d.n_layer = 1;
  d.tensors.push_back({"blk.0.attn_q.weight", TensorRole::Dense, 0, 0, 256 * KiB, 256, 1 * KiB});
  d.tensors.push_back({"blk.0.attn_k.weight", TensorRole::Dense, 0, 256 * KiB + 100, 8 * KiB, 8, 1 * KiB});
  const UnitPlan q = plan_units(d, {}, 512 * KiB, 1);
  REQUIRE(q.units.size() == 5);
  for (int i = 0; i < 4; ++i) CHECK(q.units[size_t(i)].bytes == 64 * KiB);
  CHECK(q.units[4].bytes == 12 * KiB);  // [256 KiB + 100, 264 KiB + 100) spans three pages
  CHECK(q.needed_bytes_per_step == 268 * KiB);

  // Batch 2: an expert a token picks with p = 1/4 is needed by a step with 1 - (3/4)^2.
  CHECK(plan_units(s, r, budget_for(4), 2).needed_bytes_per_step == 8 * uint64_t(0.4375 * kExpert));
}

TEST_CASE("uniform experts with half of them cached hit half the time") {
  // Independent choices (reuse 0 is raised to their own k/E): any 4 of 8 hold half.
  CHECK(model_expert_hit_rate(uniform_routing(1, 8, 2), 4, 1, 0.0) == doctest::Approx(0.5));
  CHECK(model_expert_hit_rate(uniform_routing(2, 8, 2), 8, 3, 0.0) == doctest::Approx(0.5));
  CHECK(model_expert_hit_rate(uniform_routing(1, 8, 2), 0, 1, 0.0) == doctest::Approx(0.0));
  CHECK(model_expert_hit_rate(uniform_routing(1, 8, 2), 8, 1, 0.0) == doctest::Approx(1.0));
  // One step after the warm-up step: only what the warm-up step used is there to hit (r of it).
  CHECK(model_expert_hit_rate(uniform_routing(1, 8, 2), 8, 1, 0.7, 1) == doctest::Approx(0.7));

  const PlanRow row = predict(tiny_moe(), uniform_routing(1, 8, 2), inputs(budget_for(4), {1.0}));
  CHECK(row.cache_bytes == 4 * kExpert);
  CHECK(row.hit_rate == doctest::Approx(0.5));
  CHECK(row.read_bytes_per_token == doctest::Approx(double(kExpert)));  // 4 uncached x 1/4 x 48 KiB
  CHECK(row.read_s == doctest::Approx(double(kExpert) / 1e9));
  CHECK(row.drives_bound);
  CHECK(row.bound() == "drives");
  CHECK(row.tokens_per_s == doctest::Approx(1e9 / double(kExpert)));
}

TEST_CASE("reuse between consecutive steps: the self-similar recency curve") {
  const std::vector<double> q(8, 0.25);  // top-2 of 8, uniform
  // The 2 most recent hold r = 0.7 of the references, the next 2 hold 0.7 of the rest, the last
  // group (the 2 that reach E = 8) the rest, linearly.
  CHECK(expert_hit_curve(q, 0.7, 1) == doctest::Approx(0.35));
  CHECK(expert_hit_curve(q, 0.7, 2) == doctest::Approx(0.7));
  CHECK(expert_hit_curve(q, 0.7, 3) == doctest::Approx(0.805));
  CHECK(expert_hit_curve(q, 0.7, 4) == doctest::Approx(0.91));
  CHECK(expert_hit_curve(q, 0.7, 6) == doctest::Approx(0.973));
  CHECK(expert_hit_curve(q, 0.7, 7) == doctest::Approx(0.9865));
  CHECK(expert_hit_curve(q, 0.7, 8) == doctest::Approx(1.0));
  // Below independent reuse the static share of the most popular binds.
  CHECK(expert_hit_curve(q, 0.1, 4) == doctest::Approx(0.5));

  // Steady state, 4 cached: misses 2 x (1 - 0.91); half of the 2 predicted are wrong, each read
  // unless among the 4 - 2 x 0.91 cached experts the step does not use, of the 6 it does not use.
  const ExpertTraffic t = expert_traffic(q, 4, 0.7, 0.5, true, 0);
  CHECK(t.needed == doctest::Approx(2.0));
  CHECK(t.misses == doctest::Approx(0.18));
  CHECK(t.wasted == doctest::Approx(1.0 * (1 - (4 - 1.82) / 6)));
  CHECK(expert_traffic(q, 4, 0.7, 0.5, false, 0).wasted == 0);  // the first MoE layer is not predicted
  CHECK(expert_traffic(q, 4, 0.7, 1.0, true, 0).wasted == 0);
  CHECK(expert_traffic(q, 8, 0.7, 0.5, true, 0).misses == 0);   // all fit

  // A run from a cold cache with room for all: every miss is a first use, and the experts seen
  // grow by 2 x (1 - H(D)) a step: 2 after the warm-up step, 2.6 after one more.
  const ExpertTraffic one = expert_traffic(q, 8, 0.7, 1.0, true, 1);
  CHECK(one.misses == doctest::Approx(0.6));
  const ExpertTraffic two = expert_traffic(q, 8, 0.7, 1.0, true, 2);
  CHECK(two.misses == doctest::Approx((0.6 + 2 * (1 - expert_hit_curve(q, 0.7, 2.6))) / 2));
  // Longer runs average the cold start away, toward the steady state.
  CHECK(expert_traffic(q, 4, 0.7, 0.5, true, 1000000).misses == doctest::Approx(t.misses).epsilon(0.01));
  CHECK(expert_traffic(q, 3, 0.7, 0.5, true, 12).misses > expert_traffic(q, 3, 0.7, 0.5, true, 0).misses);

  // The prediction: two MoE layers, the second predicted; reuse 0.7, accuracy 0.5, 4 cached.
  ModelShape s = tiny_moe();
  s.n_layer = 2;
  for (int i = 1; i <= 3; ++i) {
    TensorShape t = s.tensors[size_t(i)];
    t.layer = 1;
    t.offset += 3 * 8 * 16 * KiB;
    s.tensors.push_back(t);
  }
  PlanInputs in = inputs(budget_for(8), {1.0});
  in.reuse = 0.7;
  in.prefetch_accuracy = 0.5;
  const PlanRow row = predict(s, uniform_routing(2, 8, 2), in);
  CHECK(row.expert_cache == doctest::Approx(4.0));
  CHECK(row.read_bytes_per_token == doctest::Approx((2 * 0.18 + t.wasted) * double(kExpert)));
  CHECK(row.wasted_bytes_per_token == doctest::Approx(t.wasted * double(kExpert)));
  CHECK(row.hit_rate == doctest::Approx(0.91));

  RoutingTrace tr;
  tr.header = {1, 4, 2};
  tr.records.push_back({0, 0, 1, {0, 1}});
  tr.records.push_back({1, 0, 1, {1, 2}});
  tr.records.push_back({2, 0, 1, {2, 1}});
  CHECK(reuse_from_trace(tr) == doctest::Approx(0.75));  // 1 of 2, then 2 of 2
  tr.records.resize(1);
  CHECK_THROWS_WITH_AS(reuse_from_trace(tr), doctest::Contains("two consecutive steps"), strata::Error);
}

TEST_CASE("the most popular experts are cached first") {
  RoutingStats r;
  r.p = {{1.0, 0.5, 0.25, 0.25, 0, 0, 0, 0}};  // sums to 2
  CHECK(model_expert_hit_rate(r, 1, 1, 0.0) == doctest::Approx(0.5));
  CHECK(model_expert_hit_rate(r, 2, 1, 0.0) == doctest::Approx(0.75));
  const PlanRow row = predict(tiny_moe(), r, inputs(budget_for(2), {1.0}));
  CHECK(row.hit_rate == doctest::Approx(0.75));
  CHECK(row.read_bytes_per_token == doctest::Approx(0.5 * double(kExpert)));
}

TEST_CASE("striping: two equal drives halve the read time, unequal ones wait for the slowest") {
  const ModelShape s = tiny_moe();
  const RoutingStats r = uniform_routing(1, 8, 2);
  const PlanRow one = predict(s, r, inputs(budget_for(2), {0.5}));
  const PlanRow two = predict(s, r, inputs(budget_for(2), {0.5, 0.5}));
  CHECK(two.read_s == doctest::Approx(one.read_s / 2));
  CHECK(two.tokens_per_s == doctest::Approx(one.tokens_per_s * 2));
  CHECK(two.bound() == "drives");

  const PlanRow mixed = predict(s, r, inputs(budget_for(2), {1.0, 0.25}));
  CHECK(mixed.read_s == doctest::Approx(one.read_bytes_per_token / 2 / 0.25e9));
  CHECK(mixed.slowest_drive == 1);
  CHECK(!mixed.drives_equal);
  CHECK(mixed.bound() == "drive 2 (slowest drive)");

  // Latency: each read waits latency / queue depth on its drive; a 48 KiB unit is 3 spans.
  PlanInputs in = inputs(budget_for(2), {1.0});
  in.drives[0].latency_us = 160;
  const PlanRow lat = predict(s, r, in);
  CHECK(lat.requests_per_step == doctest::Approx(6 * 0.25 * (3 + 48.0 / 1024)));  // 3 spans each
  CHECK(lat.read_s == doctest::Approx(lat.read_bytes_per_token / 1e9 + lat.requests_per_step * 160e-6 / 16));
}

TEST_CASE("compute binds when reads are faster, and batches share reads") {
  const ModelShape s = tiny_moe();
  const RoutingStats r = uniform_routing(1, 8, 2);
  const PlanRow row = predict(s, r, inputs(budget_for(2), {1.0}, 0.01));
  CHECK(row.bound() == "compute");
  CHECK(!row.drives_bound);
  CHECK(row.tokens_per_s == doctest::Approx(100.0));

  PlanInputs in = inputs(budget_for(8), {1.0}, 0.01);
  in.batch = 4;
  const PlanRow all = predict(s, r, in);  // everything fits: nothing read
  CHECK(all.hit_rate == doctest::Approx(1.0));
  CHECK(all.read_bytes_per_token == 0);
  CHECK(all.compute_s == doctest::Approx(0.04));
  CHECK(all.tokens_per_s == doctest::Approx(100.0));
}

TEST_CASE("routing distributions") {
  const RoutingStats z = zipf_routing(2, 8, 2, 1.0);
  REQUIRE(z.p.size() == 2);
  CHECK(std::accumulate(z.p[0].begin(), z.p[0].end(), 0.0) == doctest::Approx(2.0));
  CHECK(z.p[0][0] > z.p[0][1]);
  CHECK(z.p[0][0] / z.p[0][3] == doctest::Approx(4.0));
  const RoutingStats steep = zipf_routing(1, 4, 2, 8.0);  // would exceed 1: capped, the rest refilled
  CHECK(steep.p[0][0] == doctest::Approx(1.0));
  CHECK(std::accumulate(steep.p[0].begin(), steep.p[0].end(), 0.0) == doctest::Approx(2.0));
  const RoutingStats u = uniform_routing(1, 8, 2);
  for (double p : u.p[0]) CHECK(p == doctest::Approx(0.25));

  RoutingTrace t;
  t.header = {2, 4, 1};
  t.records.push_back({0, 0, 2, {0, 0}});
  t.records.push_back({0, 1, 2, {1, 2}});
  const RoutingStats fromt = routing_from_trace(t);
  CHECK(fromt.p[0] == std::vector<double>{1.0, 0, 0, 0});
  CHECK(fromt.p[1] == std::vector<double>{0, 0.5, 0.5, 0});
}

TEST_CASE("bad inputs are refused by name") {
  const ModelShape s = tiny_moe();
  const RoutingStats r = uniform_routing(1, 8, 2);
  CHECK_THROWS_WITH_AS(predict(s, r, inputs(budget_for(0) - 1, {1.0})), doctest::Contains("below this model's minimum"),
                       strata::Error);
  CHECK_THROWS_WITH_AS(predict(s, r, inputs(budget_for(2), {})), doctest::Contains("no drives"), strata::Error);
  CHECK_THROWS_WITH_AS(predict(s, r, inputs(budget_for(2), {1.0, 0.0})), doctest::Contains("drive 2: read speed"),
                       strata::Error);
  CHECK_THROWS_WITH_AS(plan_units(s, uniform_routing(1, 4, 2), budget_for(2), 1), doctest::Contains("routing statistics"),
                       strata::Error);
  CHECK_THROWS_WITH_AS(zipf_routing(1, 4, 5, 1.0), doctest::Contains("4 experts with 5 used"), strata::Error);
}
