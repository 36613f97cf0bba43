// The offline expert-cache simulator and the routing-trace format: Belady's counts on traces
// whose optimum is known or found by exhaustive search, Belady never beaten by LRU or strata's
// policy, the layer-distance term beating LRU on a cyclic trace, warm-up steps, and clear errors
// for malformed trace files.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "runtime/cache_simulator.h"
#include "runtime/routing_trace.h"
#include "storage/error.h"

using namespace strata::runtime;

namespace {

// A trace of one expert per visit: visit i is step i of layer 0 (one layer, one token).
RoutingTrace single_layer(const std::vector<int32_t>& experts, int64_t n_expert) {
  RoutingTrace t;
  t.header = {1, n_expert, 1};
  for (size_t i = 0; i < experts.size(); ++i) t.records.push_back({int64_t(i), 0, 1, {experts[i]}});
  return t;
}

CacheSimResult sim(const RoutingTrace& t, int64_t capacity, int64_t warmup = 0) {
  CacheSimOptions o;
  o.capacity = capacity;
  o.warmup_steps = warmup;
  return simulate_cache(t, o);
}

// Random routing: every MoE layer of every step, 1..3 tokens of n_used distinct experts drawn
// with a skew (lower ids more often), as a cache would see.
RoutingTrace random_trace(std::mt19937& rng, int64_t n_layer, int64_t n_expert, int64_t n_used, int64_t steps) {
  RoutingTrace t;
  t.header = {n_layer, n_expert, n_used};
  std::uniform_int_distribution<int> tokens(1, 3);
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t s = 0; s < steps; ++s)
    for (int64_t l = 0; l < n_layer; ++l) {
      RoutingRecord r{s, l, tokens(rng), {}};
      for (int64_t tok = 0; tok < r.n_tokens; ++tok) {
        std::vector<int32_t> chosen;
        while (int64_t(chosen.size()) < n_used) {
          const auto e = static_cast<int32_t>(double(n_expert) * u(rng) * u(rng));
          if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
        }
        r.experts.insert(r.experts.end(), chosen.begin(), chosen.end());
      }
      t.records.push_back(std::move(r));
    }
  return t;
}

// The most hits any eviction choices can get, by exhaustive search over what the cache holds
// between visits (units: layer * n_expert + expert, at most 16). The units in the cache when a
// visit starts are its hits; after it, the cache holds any `capacity` units (or all, if fewer)
// of those it held and those the visit needed.
uint64_t optimal_hits(const RoutingTrace& t, int64_t capacity) {
  std::vector<unsigned> visits;
  for (const RoutingRecord& r : t.records) {
    unsigned v = 0;
    for (int32_t e : r.experts) v |= 1u << (r.layer * t.header.n_expert + e);
    visits.push_back(v);
  }
  std::map<std::pair<size_t, unsigned>, uint64_t> memo;
  std::function<uint64_t(size_t, unsigned)> best = [&](size_t i, unsigned cache) -> uint64_t {
    if (i == visits.size()) return 0;
    if (auto it = memo.find({i, cache}); it != memo.end()) return it->second;
    const unsigned pool = cache | visits[i];
    const int keep = std::min(__builtin_popcount(pool), int(capacity));
    uint64_t after = 0;
    for (unsigned f = pool;; f = (f - 1) & pool) {  // every subset of the pool
      if (__builtin_popcount(f) == keep) after = std::max(after, best(i + 1, f));
      if (f == 0) break;
    }
    return memo[{i, cache}] = uint64_t(__builtin_popcount(visits[i] & cache)) + after;
  };
  return best(0, 0);
}

std::string tmp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("strata_cachesim_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = tmp_file(name);
  std::ofstream(path) << text;
  return path;
}

const std::string kHeader = R"({"format":"strata-routing-trace","version":1,"n_layer":2,"n_expert":4,"n_expert_used":2})";

}  // namespace

TEST_CASE("Belady on the classic reference string: 7 misses with 3 slots, where LRU has 10") {
  const RoutingTrace t = single_layer({1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5}, 6);
  const CacheSimResult r = sim(t, 3);
  CHECK(r.accesses == 12);
  CHECK(r.belady_hits == 5);
  CHECK(r.lru_hits == 2);
  CHECK(r.policy_hits <= r.belady_hits);
  // With 4 slots Belady misses only the 5 compulsory first uses and the one eviction forced by 5.
  CHECK(sim(t, 4).belady_hits == 6);
  // A cache that holds every unit misses only first uses.
  const CacheSimResult all = sim(t, 5);
  CHECK(all.belady_hits == 7);
  CHECK(all.lru_hits == 7);
  CHECK(all.policy_hits == 7);
}

TEST_CASE("Belady finds the optimum that exhaustive search finds, on small random traces") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t n_used = trial % 2 + 1;
    const RoutingTrace t = random_trace(rng, 2, 4, n_used, 5 + trial % 4);
    for (int64_t capacity = 1; capacity <= 6; ++capacity) {
      CAPTURE(trial);
      CAPTURE(capacity);
      const CacheSimResult r = sim(t, capacity);
      CHECK(r.belady_hits == optimal_hits(t, capacity));
      CHECK(r.lru_hits <= r.belady_hits);
      CHECK(r.policy_hits <= r.belady_hits);
    }
  }
}

TEST_CASE("no rule beats Belady, and more slots never lose Belady or LRU hits, on larger random traces") {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 6; ++trial) {
    const RoutingTrace t = random_trace(rng, 4, 16, 2, 120);
    uint64_t prev_belady = 0, prev_lru = 0;
    for (int64_t capacity : {2, 4, 8, 16, 24, 32, 48, 64}) {
      CAPTURE(trial);
      CAPTURE(capacity);
      const CacheSimResult r = sim(t, capacity);
      CHECK(r.belady_hits >= r.lru_hits);
      CHECK(r.belady_hits >= r.policy_hits);
      CHECK(r.belady_hits >= prev_belady);
      CHECK(r.lru_hits >= prev_lru);  // LRU is a stack algorithm
      prev_belady = r.belady_hits;
      prev_lru = r.lru_hits;
    }
    // Holding all 64 units, every rule misses only each unit's first use.
    const CacheSimResult all = sim(t, 64);
    CHECK(all.lru_hits == all.belady_hits);
    CHECK(all.policy_hits == all.belady_hits);
  }
}

TEST_CASE("strata's layer-distance term beats LRU where each layer reuses its experts every step") {
  // 4 layers, each choosing expert 0 at every step; 3 slots for 4 units. LRU evicts exactly the
  // layer needed next and never hits; keeping what comes sooner hits often.
  RoutingTrace t;
  t.header = {4, 8, 1};
  for (int64_t s = 0; s < 40; ++s)
    for (int64_t l = 0; l < 4; ++l) t.records.push_back({s, l, 1, {0}});
  const CacheSimResult r = sim(t, 3);
  CHECK(r.lru_hits == 0);
  CHECK(r.policy_hits > r.accesses / 2);
  CHECK(r.belady_hits >= r.policy_hits);
}

TEST_CASE("warm-up steps fill the cache but are not counted") {
  const RoutingTrace t = single_layer({1, 2, 1, 2, 1, 2}, 3);
  const CacheSimResult cold = sim(t, 2), warm = sim(t, 2, 2);
  CHECK(cold.accesses == 6);
  CHECK(cold.belady_hits == 4);
  CHECK(warm.accesses == 4);
  CHECK(warm.belady_hits == 4);
  CHECK(warm.lru_hits == 4);
  CHECK_THROWS_AS(sim(t, 0), strata::Error);
  CHECK_THROWS_AS(sim(t, 2, -1), strata::Error);
}

TEST_CASE("a written trace reads back: steps from the layer order, tokens best first") {
  const std::string path = tmp_file("roundtrip.jsonl");
  {
    RoutingTraceWriter w(path, {3, 8, 2});
    const int32_t a[] = {5, 1, 5, 2}, b[] = {7, 0}, c[] = {3, 4};
    w.record(0, 2, 2, a);  // step 0
    w.record(2, 1, 2, b);
    w.record(0, 1, 2, c);  // a lower layer: step 1
    w.record(0, 1, 2, c);  // the same layer again: step 2
    CHECK(w.steps() == 3);
    w.close();
  }
  const RoutingTrace t = read_routing_trace(path);
  CHECK(t.header.n_layer == 3);
  CHECK(t.header.n_expert == 8);
  CHECK(t.header.n_expert_used == 2);
  REQUIRE(t.records.size() == 4);
  CHECK(t.records[0].step == 0);
  CHECK(t.records[0].n_tokens == 2);
  CHECK(t.records[0].experts == std::vector<int32_t>{5, 1, 5, 2});
  CHECK(t.records[1].step == 0);
  CHECK(t.records[1].layer == 2);
  CHECK(t.records[2].step == 1);
  CHECK(t.records[3].step == 2);
  std::filesystem::remove(path);
}

TEST_CASE("malformed traces are errors naming the file, the line and what was expected") {
  struct Case {
    const char* name;
    std::string text;
    const char* says;
  };
  const std::string rec = R"({"step":0,"layer":0,"tokens":[[1,2]]})";
  const Case cases[] = {
      {"empty", "", "empty"},
      {"no_header", rec + "\n", "header"},
      {"not_json", kHeader + "\n{\"step\":0,\n", "not JSON"},
      {"not_object", kHeader + "\n[1,2]\n", "JSON object"},
      {"version", R"({"format":"strata-routing-trace","version":9,"n_layer":2,"n_expert":4,"n_expert_used":2})", "version 9"},
      {"used_above_experts", R"({"format":"strata-routing-trace","version":1,"n_layer":2,"n_expert":4,"n_expert_used":5})",
       "n_expert_used"},
      {"missing_step", kHeader + "\n" + R"({"layer":0,"tokens":[[1,2]]})", "'step' is missing"},
      {"layer_range", kHeader + "\n" + R"({"step":0,"layer":2,"tokens":[[1,2]]})", "'layer' = 2 is out of range"},
      {"expert_range", kHeader + "\n" + R"({"step":0,"layer":0,"tokens":[[1,4]]})", "expert 4"},
      {"expert_type", kHeader + "\n" + R"({"step":0,"layer":0,"tokens":[[1,"x"]]})", "expert \"x\""},
      {"too_few", kHeader + "\n" + R"({"step":0,"layer":0,"tokens":[[1]]})", "n_expert_used = 2"},
      {"twice", kHeader + "\n" + R"({"step":0,"layer":0,"tokens":[[3,3]]})", "twice"},
      {"no_tokens", kHeader + "\n" + R"({"step":0,"layer":0,"tokens":[]})", "'tokens'"},
      {"backwards", kHeader + "\n" + R"({"step":1,"layer":0,"tokens":[[1,2]]})" + "\n" + rec, "backwards"},
      {"layer_order", kHeader + "\n" + R"({"step":0,"layer":1,"tokens":[[1,2]]})" + "\n" + rec, "ascend"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const std::string path = write_file(std::string(c.name) + ".jsonl", c.text);
    try {
      read_routing_trace(path);
      FAIL("expected an error");
    } catch (const strata::Error& e) {
      const std::string msg = e.what();
      CAPTURE(msg);
      CHECK(msg.find(path) != std::string::npos);
      CHECK(msg.find(c.says) != std::string::npos);
    }
    std::filesystem::remove(path);
  }
  // The line is named: the bad record is on line 3.
  const std::string path = write_file("line.jsonl", kHeader + "\n" + rec + "\n" + R"({"step":0,"layer":1,"tokens":[[9,1]]})");
  CHECK_THROWS_WITH_AS(read_routing_trace(path), doctest::Contains((path + ":3:").c_str()), strata::Error);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH_AS(read_routing_trace(tmp_file("absent.jsonl")), doctest::Contains("cannot open"), strata::Error);
}
