#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "models/sampling.h"
#include "storage/error.h"

using strata::models::apply_penalties;
using strata::models::Sampler;
using strata::models::SamplingParams;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 4.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

int32_t reference_argmax(const std::vector<float>& v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[best]) best = int32_t(i);
  }
  return best;
}

// Logits whose softmax at temperature 1 is `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> v;
  for (double p : probs) v.push_back(float(std::log(p)));
  return v;
}

std::vector<int> histogram(SamplingParams p, const std::vector<float>& logits, int draws) {
  Sampler s(p, int32_t(logits.size()));
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[size_t(s.sample(logits.data(), {}))];
  return counts;
}

std::set<int32_t> drawn(const std::vector<int>& counts) {
  std::set<int32_t> ids;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > 0) ids.insert(int32_t(i));
  }
  return ids;
}

// Pearson chi-square of observed counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& probs) {
  const double n = std::accumulate(counts.begin(), counts.end(), 0.0);
  double chi = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = n * probs[i];
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi;
}

std::string error_of(const SamplingParams& p) {
  try {
    Sampler s(p, 10);
  } catch (const strata::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("greedy is the raw argmax whatever the seed and filters") {
  for (uint32_t trial = 0; trial < 20; ++trial) {
    const auto logits = random_logits(5000, trial);
    const int32_t expected = reference_argmax(logits);
    for (float temperature : {0.0f, -1.0f}) {
      for (uint64_t seed : {0ull, 1ull, 12345ull}) {
        for (int top_k : {0, 1, 7}) {
          for (float top_p : {1.0f, 0.1f}) {
            for (float min_p : {0.0f, 0.9f}) {
              SamplingParams p{.temperature = temperature, .top_k = top_k, .top_p = top_p,
                               .min_p = min_p, .seed = seed};
              Sampler s(p, 5000);
              const std::vector<int32_t> history = {int32_t(expected), 3, 3};
              REQUIRE(s.sample(logits.data(), history) == expected);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("ties go to the lowest id, greedy and top_k = 1 alike") {
  const std::vector<float> logits = {1.0f, 5.0f, 2.0f, 5.0f, 5.0f, -3.0f};
  CHECK(Sampler(SamplingParams{}, 6).sample(logits.data(), {}) == 1);
  Sampler top1(SamplingParams{.temperature = 1.0f, .top_k = 1}, 6);
  for (int i = 0; i < 50; ++i) CHECK(top1.sample(logits.data(), {}) == 1);
}

TEST_CASE("top_k = 1 equals greedy for any temperature and seed") {
  for (uint32_t trial = 0; trial < 30; ++trial) {
    auto logits = random_logits(20000, 100 + trial);
    logits[777] = logits[reference_argmax(logits)];  // a tie; the lower id must win
    const int32_t expected = reference_argmax(logits);
    Sampler s(SamplingParams{.temperature = 0.3f + trial, .top_k = 1, .seed = trial}, 20000);
    CHECK(s.sample(logits.data(), {}) == expected);
  }
}

TEST_CASE("the same seed gives the same sequence; other seeds differ") {
  const auto logits = random_logits(1000, 7, 1.0f);
  auto sequence = [&](uint64_t seed, SamplingParams p) {
    p.seed = seed;
    Sampler s(p, 1000);
    std::vector<int32_t> out;
    for (int i = 0; i < 300; ++i) out.push_back(s.sample(logits.data(), out));
    return out;
  };
  for (SamplingParams p : {SamplingParams{.temperature = 1.0f},
                           SamplingParams{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f,
                                          .min_p = 0.01f, .repeat_penalty = 1.1f,
                                          .frequency_penalty = 0.2f}}) {
    const auto a = sequence(42, p);
    CHECK(a == sequence(42, p));
    // Several hundred draws over many likely tokens: a collision means the seed is unused.
    CHECK(a != sequence(43, p));
    CHECK(a != sequence(0, p));
    std::set<int32_t> distinct(a.begin(), a.end());
    CHECK(distinct.size() > 20);
  }
}

TEST_CASE("reset restarts the random stream") {
  const auto logits = random_logits(500, 9, 1.0f);
  Sampler s(SamplingParams{.temperature = 1.0f, .seed = 5}, 500);
  std::vector<int32_t> first, second;
  for (int i = 0; i < 100; ++i) first.push_back(s.sample(logits.data(), {}));
  s.reset();
  for (int i = 0; i < 100; ++i) second.push_back(s.sample(logits.data(), {}));
  CHECK(first == second);
}

TEST_CASE("top_p keeps the smallest most-likely set reaching p") {
  // Ids deliberately not in probability order: 1 (0.5), 3 (0.25), 2 (0.15), 0 (0.1).
  const auto logits = logits_of({0.1, 0.5, 0.15, 0.25});
  SUBCASE("p = 0.7 -> {1, 3}") {
    const auto counts = histogram({.temperature = 1.0f, .top_p = 0.7f}, logits, 6000);
    CHECK(drawn(counts) == std::set<int32_t>{1, 3});
    CHECK(chi_square({counts[1], counts[3]}, {2.0 / 3, 1.0 / 3}) < 13.8);
  }
  SUBCASE("p = 0.75, reached exactly -> {1, 3}") {
    CHECK(drawn(histogram({.temperature = 1.0f, .top_p = 0.75f}, logits, 6000)) ==
          std::set<int32_t>{1, 3});
  }
  SUBCASE("p = 0.76 -> {1, 3, 2}") {
    CHECK(drawn(histogram({.temperature = 1.0f, .top_p = 0.76f}, logits, 6000)) ==
          std::set<int32_t>{1, 2, 3});
  }
  SUBCASE("tiny p keeps the single best") {
    CHECK(drawn(histogram({.temperature = 1.0f, .top_p = 0.01f}, logits, 2000)) ==
          std::set<int32_t>{1});
  }
  SUBCASE("p = 1 keeps all") {
    CHECK(drawn(histogram({.temperature = 1.0f}, logits, 6000)) ==
          std::set<int32_t>{0, 1, 2, 3});
  }
}

// The kept set by the definition, with a full sort in double precision: top-k, softmax at
// temperature t, top-p, min-p, ties to the lower id.
std::set<int32_t> reference_set(const std::vector<float>& logits, float t, int top_k,
                                float top_p, float min_p) {
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  if (top_k > 0 && size_t(top_k) < order.size()) order.resize(size_t(top_k));
  std::vector<double> probs;
  for (int32_t id : order) probs.push_back(std::exp((double(logits[size_t(id)]) - logits[size_t(order[0])]) / t));
  const double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  std::set<int32_t> kept;
  double cumulative = 0.0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (probs[i] < min_p * probs[0]) break;
    kept.insert(order[i]);
    cumulative += probs[i] / total;
    if (cumulative >= top_p) break;
  }
  return kept;
}

TEST_CASE("a top_p equal to a prefix's mass keeps exactly that prefix") {
  // Probabilities are exact fractions; top_p is their partial sum rounded to float, which
  // may land a hair above or below. Both must count as reaching it.
  std::mt19937 rng(23);
  std::uniform_int_distribution<int> weight(1, 9);
  for (size_t n = 3; n <= 8; ++n) {
    std::vector<double> probs(n);
    for (auto& q : probs) q = weight(rng);
    const double sum = std::accumulate(probs.begin(), probs.end(), 0.0);
    for (auto& q : probs) q /= sum;
    const auto logits = logits_of(probs);
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
    double prefix = 0.0;
    std::set<int32_t> expected;
    for (size_t i = 0; i + 1 < n; ++i) {
      prefix += probs[size_t(order[i])];
      expected.insert(order[i]);
      CAPTURE(n);
      CAPTURE(i);
      CHECK(drawn(histogram({.temperature = 1.0f, .top_p = float(prefix)}, logits, 3000)) ==
            expected);
    }
  }
}

TEST_CASE("random configurations keep exactly the reference set") {
  // 60 tokens within 3 nats of each other: every kept token is likely enough to show up.
  // top_k below 8 takes the short-list path, larger ones the whole-vocabulary path.
  struct Config {
    float t;
    int top_k;
    float top_p;
    float min_p;
  };
  const Config configs[] = {
      {1.0f, 0, 1.0f, 0.0f},  {0.7f, 5, 0.8f, 0.0f},   {1.5f, 7, 1.0f, 0.3f},
      {1.0f, 20, 0.7f, 0.1f}, {1.0f, 0, 0.5f, 0.0f},   {0.7f, 0, 1.0f, 0.2f},
      {1.5f, 0, 0.9f, 0.4f},  {0.5f, 30, 0.95f, 0.0f}, {2.0f, 3, 0.5f, 0.0f},
  };
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> dist(-3.0f, 0.0f);
  for (const auto& c : configs) {
    std::vector<float> logits(60);
    for (auto& l : logits) l = dist(rng);
    logits[13] = logits[41];  // a tie that may sit on a boundary
    const auto expected = reference_set(logits, c.t, c.top_k, c.top_p, c.min_p);
    CAPTURE(c.t);
    CAPTURE(c.top_k);
    CAPTURE(c.top_p);
    CAPTURE(c.min_p);
    CAPTURE(expected.size());
    const auto counts = histogram(
        {.temperature = c.t, .top_k = c.top_k, .top_p = c.top_p, .min_p = c.min_p}, logits,
        20000);
    CHECK(drawn(counts) == expected);
  }
}

// Plausible tokens at shuffled ids among many negligible ones, in pairs of equal logits, so
// the top-p bound falls among ties.
void check_large_vocab_top_p(float step, float top_p) {
  const size_t n = 5000;
  std::vector<float> logits(n, -40.0f);
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(3));
  for (int rank = 0; rank < 300; ++rank) logits[size_t(ids[size_t(rank)])] = -step * (rank / 2);
  const auto expected = reference_set(logits, 1.0f, 0, top_p, 0.0f);
  CAPTURE(step);
  CAPTURE(expected.size());
  REQUIRE(expected.size() > 64);
  REQUIRE(expected.size() < 300);
  CHECK(drawn(histogram({.temperature = 1.0f, .top_p = top_p}, logits, 8000)) == expected);
}

TEST_CASE("top_p on a large vocabulary matches a full sort") {
  SUBCASE("logits spread over many histogram buckets") { check_large_vocab_top_p(0.01f, 0.5f); }
  SUBCASE("logits packed into one bucket") { check_large_vocab_top_p(1e-5f, 0.51f); }
}

TEST_CASE("min_p drops tokens below min_p times the top probability") {
  // Ids: 2 (0.4), 0 (0.3), 4 (0.2), 1 (0.06), 3 (0.04).
  const auto logits = logits_of({0.3, 0.06, 0.4, 0.04, 0.2});
  SUBCASE("bound 0.05 drops only id 3") {
    CHECK(drawn(histogram({.temperature = 1.0f, .min_p = 0.125f}, logits, 8000)) ==
          std::set<int32_t>{0, 1, 2, 4});
  }
  SUBCASE("bound 0.24 keeps ids 2 and 0") {
    const auto counts = histogram({.temperature = 1.0f, .min_p = 0.6f}, logits, 8000);
    CHECK(drawn(counts) == std::set<int32_t>{0, 2});
    CHECK(chi_square({counts[2], counts[0]}, {4.0 / 7, 3.0 / 7}) < 13.8);
  }
  SUBCASE("min_p = 1 keeps the best only") {
    CHECK(drawn(histogram({.temperature = 1.0f, .min_p = 1.0f}, logits, 2000)) ==
          std::set<int32_t>{2});
  }
  SUBCASE("with top_p the shorter set wins") {
    // top_p 0.95 alone keeps {2, 0, 4, 1}; min_p 0.6 alone keeps {2, 0}.
    CHECK(drawn(histogram({.temperature = 1.0f, .top_p = 0.95f, .min_p = 0.6f}, logits,
                          4000)) == std::set<int32_t>{0, 2});
    // top_p 0.5 alone keeps {2, 0}; min_p 0.125 alone keeps four.
    CHECK(drawn(histogram({.temperature = 1.0f, .top_p = 0.5f, .min_p = 0.125f}, logits,
                          4000)) == std::set<int32_t>{0, 2});
  }
  SUBCASE("on the short-list path (small top_k) too") {
    std::vector<float> wide(100, -30.0f);
    for (size_t i = 0; i < logits.size(); ++i) wide[i * 20] = logits[i];
    CHECK(drawn(histogram({.temperature = 1.0f, .top_k = 5, .min_p = 0.125f}, wide, 8000)) ==
          std::set<int32_t>{0, 20, 40, 80});
    CHECK(drawn(histogram({.temperature = 1.0f, .top_k = 5, .top_p = 0.95f, .min_p = 0.6f},
                          wide, 4000)) == std::set<int32_t>{0, 40});
  }
  SUBCASE("top_k applies first") {
    CHECK(drawn(histogram({.temperature = 1.0f, .top_k = 3}, logits, 6000)) ==
          std::set<int32_t>{0, 2, 4});
  }
}

TEST_CASE("temperature reshapes the distribution as softmax(logits / t)") {
  const std::vector<float> logits = {0.0f, float(std::log(2.0)), float(std::log(4.0))};
  for (float t : {0.5f, 1.0f, 2.0f, 5.0f}) {
    std::vector<double> probs;
    for (float l : logits) probs.push_back(std::exp(double(l) / t));
    const double sum = std::accumulate(probs.begin(), probs.end(), 0.0);
    for (auto& q : probs) q /= sum;
    const auto counts = histogram({.temperature = t, .seed = 11}, logits, 30000);
    // Two degrees of freedom: 13.8 is the 0.1% tail.
    CAPTURE(t);
    CHECK(chi_square(counts, probs) < 13.8);
  }
  // The check has teeth: temperature 1 counts are far from the temperature 2 distribution.
  const auto counts = histogram({.temperature = 1.0f, .seed = 11}, logits, 30000);
  const double r2 = std::sqrt(2.0), sum2 = 1.0 + r2 + 2.0;
  CHECK(chi_square(counts, {1.0 / sum2, r2 / sum2, 2.0 / sum2}) > 100.0);
}

TEST_CASE("masked (-inf) and NaN tokens are never drawn") {
  const float ninf = -std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> logits = {ninf, 0.0f, nan, 0.0f, ninf};
  CHECK(drawn(histogram({.temperature = 1.0f}, logits, 2000)) == std::set<int32_t>{1, 3});
  CHECK(drawn(histogram({.temperature = 1.0f, .top_p = 0.9f}, logits, 2000)) ==
        std::set<int32_t>{1, 3});
  CHECK(drawn(histogram({.temperature = 1.0f, .top_k = 4}, logits, 2000)) ==
        std::set<int32_t>{1, 3});
  // Short-list path: top_k * 8 below the vocabulary size.
  std::vector<float> wide(100, ninf);
  wide[10] = nan;
  wide[20] = 1.0f;
  wide[30] = 1.0f;
  CHECK(drawn(histogram({.temperature = 1.0f, .top_k = 3}, wide, 2000)) ==
        std::set<int32_t>{20, 30});
  CHECK(Sampler(SamplingParams{}, 100).sample(wide.data(), {}) == 20);
}

TEST_CASE("a vanishing temperature acts as greedy") {
  const auto logits = random_logits(3000, 5);
  const int32_t expected = reference_argmax(logits);
  for (float t : {1e-30f, 1e-40f}) {
    for (int top_k : {0, 10}) {
      Sampler s({.temperature = t, .top_k = top_k}, 3000);
      for (int i = 0; i < 20; ++i) CHECK(s.sample(logits.data(), {}) == expected);
    }
  }
}

TEST_CASE("penalties change the logits exactly as specified") {
  const std::vector<float> base = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
  const std::vector<int32_t> history = {0, 1, 0, 3, 5, 0, 99, -4};  // out-of-range ids ignored

  SUBCASE("repeat penalty over the last n tokens, once per distinct token") {
    auto v = base;
    apply_penalties({.repeat_penalty = 2.0f, .repeat_last_n = 5}, v, history);
    // Window {3, 5, 0, 99, -4}: 0, 3 and 5 positive -> halved; 1 outside the window.
    CHECK(v == std::vector<float>{1.0f, -1.0f, 0.5f, 1.5f, -2.0f, 0.5f});
  }
  SUBCASE("repeat penalty multiplies negative logits; -1 means the whole history") {
    auto v = base;
    apply_penalties({.repeat_penalty = 2.0f, .repeat_last_n = -1}, v, history);
    CHECK(v == std::vector<float>{1.0f, -2.0f, 0.5f, 1.5f, -2.0f, 0.5f});
  }
  SUBCASE("repeat_last_n = 0 turns it off") {
    auto v = base;
    apply_penalties({.repeat_penalty = 2.0f, .repeat_last_n = 0}, v, history);
    CHECK(v == base);
  }
  SUBCASE("frequency and presence over the whole history") {
    auto v = base;
    apply_penalties({.frequency_penalty = 0.5f, .presence_penalty = 0.25f}, v, history);
    // Counts: 0 x3, 1 x1, 3 x1, 5 x1.
    CHECK(v == std::vector<float>{2.0f - 1.5f - 0.25f, -1.0f - 0.75f, 0.5f, 3.0f - 0.75f,
                                  -2.0f, 1.0f - 0.75f});
  }
  SUBCASE("repeat first, then frequency/presence") {
    auto v = base;
    apply_penalties({.repeat_penalty = 2.0f, .repeat_last_n = 2, .frequency_penalty = 1.0f},
                    v, std::vector<int32_t>{3, 3, 3});
    CHECK(v == std::vector<float>{2.0f, -1.0f, 0.5f, 3.0f / 2.0f - 3.0f, -2.0f, 1.0f});
  }
  SUBCASE("defaults change nothing") {
    auto v = base;
    apply_penalties(SamplingParams{}, v, history);
    CHECK(v == base);
  }
  SUBCASE("greedy sees penalties only when they are set") {
    CHECK(Sampler(SamplingParams{}, 6).sample(base.data(), history) == 3);
    // Whole history (< 64 tokens) penalised: 3 -> 0.5 ties with the untouched token 2,
    // and the tie goes to the lower id.
    CHECK(Sampler({.repeat_penalty = 6.0f}, 6).sample(base.data(), history) == 2);
    CHECK(Sampler({.repeat_penalty = 4.0f}, 6).sample(base.data(), history) == 3);
    CHECK(Sampler({.presence_penalty = 2.5f}, 6).sample(base.data(), history) == 2);
    CHECK(Sampler({.frequency_penalty = 0.2f}, 6).sample(base.data(), history) == 3);
    CHECK(Sampler({.frequency_penalty = 2.75f}, 6).sample(base.data(), history) == 2);
  }
}

TEST_CASE("invalid parameters throw naming the parameter") {
  CHECK(error_of({.temperature = -1.0f}).empty());
  CHECK(error_of({.temperature = 1.0f, .top_k = 3, .top_p = 0.5f, .min_p = 0.1f}).empty());
  CHECK(error_of({.top_k = -1}).find("top_k") != std::string::npos);
  CHECK(error_of({.top_p = 0.0f}).find("top_p") != std::string::npos);
  CHECK(error_of({.top_p = 1.5f}).find("top_p") != std::string::npos);
  CHECK(error_of({.top_p = NAN}).find("top_p") != std::string::npos);
  CHECK(error_of({.min_p = -0.1f}).find("min_p") != std::string::npos);
  CHECK(error_of({.min_p = 1.1f}).find("min_p") != std::string::npos);
  CHECK(error_of({.repeat_penalty = 0.0f}).find("repeat_penalty") != std::string::npos);
  CHECK(error_of({.repeat_penalty = -1.0f}).find("repeat_penalty") != std::string::npos);
  CHECK(error_of({.repeat_last_n = -2}).find("repeat_last_n") != std::string::npos);
  CHECK(error_of({.frequency_penalty = INFINITY}).find("frequency_penalty") !=
        std::string::npos);
  CHECK(error_of({.presence_penalty = NAN}).find("presence_penalty") != std::string::npos);
  CHECK(error_of({.temperature = NAN}).find("temperature") != std::string::npos);
  CHECK_THROWS_AS(Sampler(SamplingParams{}, 0), strata::Error);
}

TEST_CASE("a sample over a 152k vocabulary is cheap") {
  const int32_t n = 152064;
  const auto logits = random_logits(size_t(n), 1, 3.0f);
  std::vector<int32_t> history(512);
  for (size_t i = 0; i < history.size(); ++i) history[i] = int32_t((i * 7919) % size_t(n));
  for (SamplingParams p :
       {SamplingParams{.temperature = 0.0f},
        SamplingParams{.temperature = 0.7f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                       .repeat_penalty = 1.1f},
        SamplingParams{.temperature = 1.0f, .top_p = 0.9f},
        SamplingParams{.temperature = 1.0f}}) {
    Sampler s(p, n);
    // The fastest of several runs, so a busy machine does not fail the test.
    double best_ms = 1e9;
    for (int i = 0; i < 20; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const int32_t id = s.sample(logits.data(), history);
      const auto t1 = std::chrono::steady_clock::now();
      REQUIRE(id >= 0);
      REQUIRE(id < n);
      best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    MESSAGE("temperature " << p.temperature << " top_k " << p.top_k << " top_p " << p.top_p
                           << ": " << best_ms << " ms");
    // Loose enough for a loaded machine, tight enough to catch a full sort (~10 ms).
    if (!kSanitized) CHECK(best_ms < 5.0);
  }
}
