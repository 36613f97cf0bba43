// An offline expert-cache simulator: replays a routing trace (routing_trace.h) against a cache
// of a fixed number of experts and counts hits for three eviction rules, to see how far strata's
// residency policy is from the best any rule could do on that trace.
//
// The model of the cache:
// - The unit is one expert of one layer, (layer, expert); all are the same size, so the cache
//   holds `capacity` of them. Dense weights are assumed to stay resident and are not modelled.
// - A visit is one MoE layer of one forward step. It needs every distinct expert any token of
//   the batch chose there; each counts a hit when it is in the cache as the layer starts, and a
//   miss is read in, evicting one unit when the cache is full.
// - Belady: after each visit the cache keeps the units whose next use comes soonest, among
//   those it held and those the visit read: the unit whose next use is farthest in the future
//   (never used again first) goes, even one just read. For equal-size units this is the
//   optimum of a cache that may drop what it just read, so no rule hits more often on the
//   trace; LRU and strata must keep each read unit until a later read evicts it, so Belady is
//   an upper bound for them.
// - LRU: evicts the unit whose last use is oldest.
// - strata: runtime/residency.h's ResidencyPolicy, driven as runtime/streaming_provider.cpp
//   drives it: the layer clock advances per step and layer (the output matrix's layer n_layer
//   included in the period), the misses of a visit are made room for while the visit's own
//   experts are still protected (requested, not yet used), the lowest keep_score is evicted
//   (ties to the lower layer and expert, the provider's unit order), with the distance of an
//   expert of the current layer counted as a full period, and every expert of the visit is then
//   accessed (on_access) at the visit's clock. What it leaves out: prefetch and prediction (the
//   real provider may read an expert before the router asks), dense units competing for the
//   pool, and read timing (in the provider a used expert may be evicted within its own layer).
// Steps before `warmup_steps` are replayed (they fill the cache) but not counted.
#pragma once
#include <cstdint>

#include "runtime/residency.h"
#include "runtime/routing_trace.h"

namespace strata::runtime {

struct CacheSimOptions {
  int64_t capacity = 0;      // experts the cache holds, at least 1
  int64_t warmup_steps = 0;  // leading steps replayed but not counted
  ResidencyParams residency;
  uint64_t unit_bytes = 1 << 20;  // one expert's size: the policy's reload cost per byte
};

struct CacheSimResult {
  uint64_t accesses = 0;  // (step, layer, distinct expert) visits counted
  uint64_t belady_hits = 0, lru_hits = 0, policy_hits = 0;
  static double rate(uint64_t hits, uint64_t accesses) { return accesses ? double(hits) / double(accesses) : 0.0; }
  double belady_rate() const { return rate(belady_hits, accesses); }
  double lru_rate() const { return rate(lru_hits, accesses); }
  double policy_rate() const { return rate(policy_hits, accesses); }
};

// strata::Error when the capacity is below 1 or the warm-up is negative.
CacheSimResult simulate_cache(const RoutingTrace& trace, const CacheSimOptions& opts);

}  // namespace strata::runtime
