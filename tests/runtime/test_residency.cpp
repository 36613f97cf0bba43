// The eviction score and the pool allocator: each term of the documented score moves it the
// way the documentation says, and the allocator never hands out overlapping space.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "runtime/pinned_pool.h"
#include "runtime/residency.h"

using namespace strata::runtime;

TEST_CASE("distance counts layers until the unit's layer runs again, around the step") {
  ResidencyPolicy p({}, 10);  // period 12: embeddings (-1), layers 0..9, output (10)
  CHECK(p.period() == 12);
  CHECK(p.distance(5, 5) == 0);
  CHECK(p.distance(6, 5) == 1);
  CHECK(p.distance(4, 5) == 11);
  CHECK(p.distance(-1, 10) == 1);  // next step's embeddings right after the output
  CHECK(p.distance(10, -1) == 11);
}

TEST_CASE("frequency decays with its half-life and each access adds one") {
  ResidencyParams prm;
  prm.freq_half_life = 10;
  ResidencyPolicy p(prm, 4);
  UnitUsage u;
  CHECK(p.freq(u, 100) == 0);
  p.on_access(u, 0);
  p.on_access(u, 0);
  CHECK(p.freq(u, 0) == doctest::Approx(2.0));
  CHECK(p.freq(u, 10) == doctest::Approx(1.0));
  p.on_access(u, 10);
  CHECK(p.freq(u, 10) == doctest::Approx(2.0));
  CHECK(p.recency(u, 10) == doctest::Approx(1.0));
  CHECK(p.recency(u, 10 + static_cast<int64_t>(prm.recency_half_life)) == doctest::Approx(0.5));
}

TEST_CASE("keep score: more use, nearer next use, and costlier reloads keep a unit longer") {
  ResidencyPolicy p({}, 24);
  UnitUsage often, once, never;
  for (int i = 0; i < 8; ++i) p.on_access(often, i * 26);
  p.on_access(once, 0);
  const int64_t now = 8 * 26;
  const double bw = 1e9;
  const uint64_t mb = 1 << 20;
  // Frequency.
  CHECK(p.keep_score(often, mb, 5, now, bw) > p.keep_score(once, mb, 5, now, bw));
  // Never used (a speculative load not yet consumed) scores zero: evicted first.
  CHECK(p.keep_score(never, mb, 5, now, bw) == 0);
  // Distance: the same unit is worth more when its layer comes sooner.
  CHECK(p.keep_score(often, mb, 1, now, bw) > p.keep_score(often, mb, 20, now, bw));
  // Reload cost per byte: a small unit (latency-dominated) beats a large one of equal use.
  CHECK(p.keep_score(often, 64 << 10, 5, now, bw) > p.keep_score(often, 64 * mb, 5, now, bw));
  // A slower disk makes every reload costlier.
  CHECK(p.keep_score(often, mb, 5, now, 1e8) > p.keep_score(often, mb, 5, now, 1e9));
  // Recency: with equal counts, the more recent use wins.
  UnitUsage old_use, new_use;
  p.on_access(old_use, 0);
  p.on_access(new_use, now - 1);
  CHECK(p.keep_score(new_use, mb, 5, now, bw) > p.keep_score(old_use, mb, 5, now, bw));
}

TEST_CASE("the range allocator hands out disjoint aligned ranges and coalesces frees") {
  RangeAllocator a(1 << 20, 4096);
  auto x = a.allocate(5000);
  auto y = a.allocate(4096);
  auto z = a.allocate(100000);
  REQUIRE(x);
  REQUIRE(y);
  REQUIRE(z);
  CHECK(*x % 4096 == 0);
  CHECK(*y >= *x + 8192);
  CHECK(a.free_bytes() == (1 << 20) - 8192 - 4096 - a.round_up(100000));
  CHECK_FALSE(a.allocate(2 << 20));
  a.free(*y, 4096);
  a.free(*x, 5000);
  a.free(*z, 100000);
  CHECK(a.free_bytes() == (1 << 20));
  CHECK(a.largest_free() == (1 << 20));  // fully coalesced again

  // Random allocate/free: never overlapping, accounting exact.
  std::mt19937 rng(3);
  std::vector<std::pair<uint64_t, uint64_t>> live;
  for (int i = 0; i < 5000; ++i) {
    if (live.empty() || rng() % 2) {
      const uint64_t n = 1 + rng() % 60000;
      if (auto off = a.allocate(n)) {
        for (auto& [o, l] : live) CHECK((*off + a.round_up(n) <= o || o + a.round_up(l) <= *off));
        live.emplace_back(*off, n);
      }
    } else {
      const size_t k = rng() % live.size();
      a.free(live[k].first, live[k].second);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
  uint64_t used = 0;
  for (auto& [o, l] : live) used += a.round_up(l);
  CHECK(a.free_bytes() == (1 << 20) - used);
}

TEST_CASE("the pinned pool maps the budget page-aligned") {
  PinnedPool p(3 << 20);
  CHECK(p.size() == (3 << 20));
  CHECK(reinterpret_cast<uintptr_t>(p.base()) % 4096 == 0);
  p.base()[p.size() - 1] = std::byte{7};  // writable to the end
  CHECK(p.base()[p.size() - 1] == std::byte{7});
}
