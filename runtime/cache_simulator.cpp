#include "runtime/cache_simulator.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "storage/error.h"

namespace strata::runtime {
namespace {

// One MoE layer of one step: the distinct units (layer * n_expert + expert) it needs, ascending.
struct Visit {
  int64_t step = 0;
  int layer = 0;
  bool counted = false;
  std::vector<int64_t> units;
};

std::vector<Visit> visits_of(const RoutingTrace& trace, int64_t warmup_steps) {
  std::vector<Visit> out;
  if (trace.records.empty()) return out;
  const int64_t first_counted = trace.records.front().step + warmup_steps;
  const int64_t n_expert = trace.header.n_expert;
  for (const RoutingRecord& r : trace.records) {
    Visit v;
    v.step = r.step;
    v.layer = static_cast<int>(r.layer);
    v.counted = r.step >= first_counted;
    for (int32_t e : r.experts) v.units.push_back(r.layer * n_expert + e);
    std::sort(v.units.begin(), v.units.end());
    v.units.erase(std::unique(v.units.begin(), v.units.end()), v.units.end());
    out.push_back(std::move(v));
  }
  return out;
}

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// After each visit the cache keeps the `capacity` units needed soonest among those it held and
// those the visit needed: Belady's farthest-next-use rule, applied to what the visit just read
// too. A cache that must keep what it reads until the next read evicts it can lose hits to the
// order in which a visit reads its misses (the last one read stays), and then no simple rule is
// optimal; letting the optimum drop a read unit makes this one exactly optimal (the tests check
// it against exhaustive search), and only raises the bound. Next uses are compared by visit:
// units needed by the same later visit are worth the same.
uint64_t belady_hits(const std::vector<Visit>& visits, int64_t n_units, int64_t capacity) {
  // next[i][j]: the first visit after i that needs visits[i].units[j] (kNever: none).
  std::vector<std::vector<int64_t>> next(visits.size());
  std::vector<int64_t> seen(static_cast<size_t>(n_units), kNever);
  for (size_t i = visits.size(); i-- > 0;) {
    for (int64_t u : visits[i].units) next[i].push_back(seen[u]);
    for (int64_t u : visits[i].units) seen[u] = static_cast<int64_t>(i);
  }
  std::set<std::pair<int64_t, int64_t>> cache;  // (next use, unit); the largest goes first
  std::vector<int64_t> key(static_cast<size_t>(n_units), -1);  // -1: not cached
  uint64_t hits = 0;
  for (size_t i = 0; i < visits.size(); ++i) {
    const Visit& v = visits[i];
    for (size_t j = 0; j < v.units.size(); ++j) {
      const int64_t u = v.units[j];
      if (key[u] >= 0) {
        if (v.counted) ++hits;
        cache.erase({key[u], u});
      }
      key[u] = next[i][j];
      cache.insert({key[u], u});
    }
    while (static_cast<int64_t>(cache.size()) > capacity) {
      const auto victim = std::prev(cache.end());
      key[victim->second] = -1;
      cache.erase(victim);
    }
  }
  return hits;
}

uint64_t lru_hits(const std::vector<Visit>& visits, int64_t n_units, int64_t capacity) {
  std::set<std::pair<int64_t, int64_t>> cache;  // (last use, unit); the smallest is the victim
  std::vector<int64_t> last(static_cast<size_t>(n_units), -1);  // -1: not cached
  int64_t tick = 0;
  uint64_t hits = 0;
  for (const Visit& v : visits) {
    std::vector<int64_t> misses;
    for (int64_t u : v.units) {
      if (last[u] < 0) {
        misses.push_back(u);
        continue;
      }
      if (v.counted) ++hits;
      cache.erase({last[u], u});
      last[u] = tick++;
      cache.insert({last[u], u});
    }
    for (int64_t u : misses) {
      if (static_cast<int64_t>(cache.size()) == capacity) {
        last[cache.begin()->second] = -1;
        cache.erase(cache.begin());
      }
      last[u] = tick++;
      cache.insert({last[u], u});
    }
  }
  return hits;
}

uint64_t policy_hits(const std::vector<Visit>& visits, const RoutingTraceHeader& h, const CacheSimOptions& o) {
  // The provider's policy counts every layer that has units: the blocks and, last, the output
  // matrix at layer n_layer (a model with its own output.weight, as synthesized ones have).
  const ResidencyPolicy policy(o.residency, static_cast<int>(h.n_layer + 1));
  constexpr double kBandwidth = 1.5e9;  // the provider's figure before it has measured one
  const int64_t n_units = h.n_layer * h.n_expert;
  std::vector<UnitUsage> usage(static_cast<size_t>(n_units));
  std::vector<char> cached(static_cast<size_t>(n_units), 0), wanted(static_cast<size_t>(n_units), 0);
  std::vector<int64_t> cache;  // the cached units, in no order
  uint64_t hits = 0;
  for (const Visit& v : visits) {
    const int64_t now = policy.clock(v.step + 1, v.layer);  // the provider's first step is 1
    std::vector<int64_t> misses;
    for (int64_t u : v.units) {
      wanted[u] = 1;
      if (!cached[u]) misses.push_back(u);
      else if (v.counted) ++hits;
    }
    for (int64_t u : misses) {
      if (static_cast<int64_t>(cache.size()) == o.capacity) {
        // The lowest keep score among units this visit does not need; only a cache smaller
        // than the visit gives up one of the visit's own.
        size_t best = cache.size();
        double best_score = 0;
        bool best_wanted = true;
        for (size_t i = 0; i < cache.size(); ++i) {
          const int64_t c = cache[i];
          int d = policy.distance(static_cast<int>(c / h.n_expert), v.layer);
          if (d == 0) d = policy.period();  // an expert of this layer: used here or not chosen
          const double s = policy.keep_score(usage[c], o.unit_bytes, d, now, kBandwidth);
          const bool w = wanted[c] != 0;
          const bool better = best == cache.size() || (w != best_wanted ? !w
                                                       : s != best_score ? s < best_score
                                                                         : c < cache[best]);
          if (better) {
            best = i;
            best_score = s;
            best_wanted = w;
          }
        }
        cached[cache[best]] = 0;
        cache[best] = cache.back();
        cache.pop_back();
      }
      cached[u] = 1;
      cache.push_back(u);
    }
    for (int64_t u : v.units) {
      policy.on_access(usage[u], now);
      wanted[u] = 0;
    }
  }
  return hits;
}

}  // namespace

CacheSimResult simulate_cache(const RoutingTrace& trace, const CacheSimOptions& opts) {
  if (opts.capacity < 1) fail("cache capacity {} experts: expected at least 1", opts.capacity);
  if (opts.warmup_steps < 0) fail("warm-up {} steps: expected 0 or more", opts.warmup_steps);
  const std::vector<Visit> visits = visits_of(trace, opts.warmup_steps);
  const int64_t n_units = trace.header.n_layer * trace.header.n_expert;
  CacheSimResult r;
  for (const Visit& v : visits)
    if (v.counted) r.accesses += v.units.size();
  r.belady_hits = belady_hits(visits, n_units, opts.capacity);
  r.lru_hits = lru_hits(visits, n_units, opts.capacity);
  r.policy_hits = policy_hits(visits, trace.header, opts);
  return r;
}

}  // namespace strata::runtime
