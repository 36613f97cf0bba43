#include "models/sampling.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>

#include "storage/error.h"

namespace strata::models {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Top-p compares a cumulative sum against p * total; a set whose mass is p up to rounding
// (probabilities given as exact fractions) should count as reaching it.
constexpr double kTopPSlack = 1e-6;

// Beyond this scaled distance below the best logit a weight e^-d underflows float: zero.
constexpr float kMaxDistance = 87.0f;

// The whole-vocabulary top-p pass histograms weights in [0, 1] by their float bits, which
// rise with the value: dropping the low kBucketShift bits leaves 2^(23 - kBucketShift)
// buckets per power of two (about 2% wide), and a token's bucket never comes before that of
// a more likely one. The histogram (32 KiB) stays in L1.
constexpr int kBucketShift = 18;
constexpr uint32_t kOneBits = 0x3f800000u;  // 1.0f
constexpr size_t kBuckets = (kOneBits >> kBucketShift) + 1;

inline size_t bucket_of(float w) {
  return (kOneBits - std::min(std::bit_cast<uint32_t>(w), kOneBits)) >> kBucketShift;
}

// The draw over the whole vocabulary first walks per-block sums, then one block.
constexpr size_t kDrawBlock = 256;

// A strict total order: more likely first, ties to the lower id, so every selection below
// is unique and the whole sampler deterministic.
template <typename C>
bool more_likely(const C& a, const C& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// NaN never wins (every comparison with it is false); ties keep the lowest id.
int32_t argmax(const float* z, int32_t n) {
  int32_t best = 0;
  float best_value = -kInf;
  for (int32_t i = 0; i < n; ++i) {
    if (z[i] > best_value) {
      best_value = z[i];
      best = i;
    }
  }
  return best;
}

// e^x for x in [-kMaxDistance, 0], to a few float ulps. glibc's expf is exact to half an ulp
// but costs about a millisecond over a 150k vocabulary; this form (range reduction by ln 2,
// a degree-7 polynomial, the power of two put straight into the exponent bits) vectorises.
inline float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds
  constexpr float kLn2Hi = 0.693359375f;  // ln 2 split so that n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  const float n = (x * kLog2e + kRound) - kRound;
  const float f = (x - n * kLn2Hi) - n * kLn2Lo;  // |f| <= ln 2 / 2
  float p = 1.0f / 5040.0f;
  p = p * f + 1.0f / 720.0f;
  p = p * f + 1.0f / 120.0f;
  p = p * f + 1.0f / 24.0f;
  p = p * f + 1.0f / 6.0f;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  return p * std::bit_cast<float>((int32_t(n) + 127) << 23);
}

// exp(-d) for a scaled distance d >= 0: zero for NaN and past float range. The range test
// is on the bits (sign dropped), as integer selects are what the compiler vectorises.
inline float weight_at(float d) {
  constexpr uint32_t kLimit = std::bit_cast<uint32_t>(kMaxDistance);
  const uint32_t bits = std::bit_cast<uint32_t>(d) & 0x7fffffffu;
  const uint32_t in_range = -uint32_t(bits < kLimit);
  const float e = exp_nonpositive(-std::bit_cast<float>(std::min(bits, kLimit)));
  return std::bit_cast<float>(std::bit_cast<uint32_t>(e) & in_range);
}

// Four independent sums so the additions overlap; double so 150k terms stay exact enough
// for the top-p boundary.
double sum(const float* w, size_t n) {
  double lane[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (size_t j = 0; j < 4; ++j) lane[j] += w[i + j];
  }
  for (; i < n; ++i) lane[0] += w[i];
  return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

// Eight running maxima so the comparisons overlap (and vectorise); NaN never wins.
float max_of(const float* z, size_t n) {
  float lane[8];
  std::fill(std::begin(lane), std::end(lane), -kInf);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) lane[j] = z[i + j] > lane[j] ? z[i + j] : lane[j];
  }
  for (; i < n; ++i) lane[0] = z[i] > lane[0] ? z[i] : lane[0];
  return *std::max_element(std::begin(lane), std::end(lane));
}

// Index of the first element whose running sum passes r, or the last positive weight when
// rounding leaves r at the very top.
template <typename Weight>
size_t draw_index(size_t n, double r, Weight weight) {
  double cumulative = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < n; ++i) {
    const float w = weight(i);
    if (w <= 0.0f) continue;
    cumulative += w;
    last_positive = i;
    if (r < cumulative) return i;
  }
  return last_positive;
}

// `counts` has one zeroed slot per logit and is left zeroed again, so the cost is
// proportional to the history, not the vocabulary.
void penalize(const SamplingParams& p, std::span<float> logits, std::span<const int32_t> history,
              std::span<uint32_t> counts) {
  const auto in_vocab = [&](int32_t id) { return id >= 0 && size_t(id) < logits.size(); };

  if (p.repeat_penalty != 1.0f && p.repeat_last_n != 0) {
    size_t n = p.repeat_last_n < 0 ? history.size()
                                   : std::min(history.size(), size_t(p.repeat_last_n));
    auto window = history.last(n);
    for (int32_t id : window) {
      if (!in_vocab(id) || counts[id] != 0) continue;
      counts[id] = 1;
      float& l = logits[id];
      l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
    }
    for (int32_t id : window) {
      if (in_vocab(id)) counts[id] = 0;
    }
  }

  if (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    for (int32_t id : history) {
      if (in_vocab(id)) ++counts[id];
    }
    for (int32_t id : history) {
      if (!in_vocab(id) || counts[id] == 0) continue;  // zero: already applied
      logits[id] -= float(counts[id]) * p.frequency_penalty + p.presence_penalty;
      counts[id] = 0;
    }
  }
}

}  // namespace

void validate(const SamplingParams& p) {
  if (std::isnan(p.temperature)) fail("sampling: temperature must be a number, got NaN");
  if (p.top_k < 0) fail("sampling: top_k must be >= 0 (0 turns it off), got {}", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    fail("sampling: top_p must be in (0, 1], got {}", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    fail("sampling: min_p must be in [0, 1], got {}", p.min_p);
  if (!(p.repeat_penalty > 0.0f && std::isfinite(p.repeat_penalty)))
    fail("sampling: repeat_penalty must be > 0 (1 turns it off), got {}", p.repeat_penalty);
  if (p.repeat_last_n < -1)
    fail("sampling: repeat_last_n must be >= -1 (-1: whole history, 0: off), got {}",
         p.repeat_last_n);
  if (!std::isfinite(p.frequency_penalty))
    fail("sampling: frequency_penalty must be finite, got {}", p.frequency_penalty);
  if (!std::isfinite(p.presence_penalty))
    fail("sampling: presence_penalty must be finite, got {}", p.presence_penalty);
}

bool has_penalties(const SamplingParams& p) {
  return (p.repeat_penalty != 1.0f && p.repeat_last_n != 0) || p.frequency_penalty != 0.0f ||
         p.presence_penalty != 0.0f;
}

void apply_penalties(const SamplingParams& p, std::span<float> logits,
                     std::span<const int32_t> history) {
  std::vector<uint32_t> counts(logits.size(), 0);
  penalize(p, logits, history, counts);
}

Sampler::Sampler(SamplingParams p, int32_t n_vocab)
    : params_(p), n_vocab_(n_vocab), rng_(p.seed), use_penalties_(has_penalties(p)) {
  validate(p);
  if (n_vocab <= 0) fail("sampling: vocabulary size must be > 0, got {}", n_vocab);
  if (use_penalties_) {
    penalized_.resize(size_t(n_vocab));
    counts_.assign(size_t(n_vocab), 0);
  }
}

void Sampler::reset() { rng_.seed(params_.seed); }

int32_t Sampler::sample(const float* logits, std::span<const int32_t> history) {
  assert(logits != nullptr);
  const float* z = logits;
  if (use_penalties_) {
    std::copy(logits, logits + n_vocab_, penalized_.begin());
    penalize(params_, penalized_, history, counts_);
    z = penalized_.data();
  }
  // A temperature so small that 1 / t overflows leaves only the best token anyway.
  if (params_.temperature <= 0.0f || 1.0f / params_.temperature == kInf)
    return argmax(z, n_vocab_);
  // A small top-k works on a short candidate list; otherwise the whole vocabulary is
  // weighed in place, which costs a few linear passes and no sort.
  const size_t n = size_t(n_vocab_);
  const size_t k = params_.top_k > 0 ? std::min(size_t(params_.top_k), n) : n;
  return k * 8 < n ? sample_few(z, k) : sample_dense(z, k);
}

double Sampler::next_unit() { return double(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample_few(const float* z, size_t k) {
  // A heap whose top is the least likely of the best k so far. Ids rise during the scan,
  // so a later token beats the top only with a strictly larger logit.
  auto& c = candidates_;
  const auto cmp = more_likely<Candidate>;
  c.clear();
  int32_t i = 0;
  for (; i < n_vocab_ && c.size() < k; ++i) {
    if (z[i] > -kInf) c.push_back({z[i], i, 0.0f});  // -inf and NaN can never be drawn
  }
  std::make_heap(c.begin(), c.end(), cmp);
  for (; i < n_vocab_; ++i) {
    if (z[i] > c.front().logit) {
      std::pop_heap(c.begin(), c.end(), cmp);
      c.back() = {z[i], i, 0.0f};
      std::push_heap(c.begin(), c.end(), cmp);
    }
  }
  if (c.empty()) return argmax(z, n_vocab_);
  std::sort(c.begin(), c.end(), cmp);
  if (c.front().logit == kInf) return c.front().id;

  const float inv_t = 1.0f / params_.temperature;
  double total = 0.0;
  for (auto& cand : c) {
    cand.weight = weight_at((c.front().logit - cand.logit) * inv_t);
    total += cand.weight;
  }
  // top-p and min-p each keep a most-likely prefix; min-p's bound is relative to the top
  // weight, which is e^0 = 1.
  size_t kept = c.size();
  if (params_.top_p < 1.0f) {
    const double target = double(params_.top_p) * total * (1.0 - kTopPSlack);
    double cumulative = 0.0;
    for (size_t j = 0; j < c.size(); ++j) {
      cumulative += c[j].weight;
      if (cumulative >= target) {
        kept = j + 1;
        break;
      }
    }
  }
  while (kept > 1 && c[kept - 1].weight < params_.min_p) --kept;

  double kept_total = 0.0;
  for (size_t j = 0; j < kept; ++j) kept_total += c[j].weight;
  const double r = next_unit() * kept_total;
  return c[draw_index(kept, r, [&](size_t j) { return c[j].weight; })].id;
}

int32_t Sampler::sample_dense(const float* z, size_t k) {
  const size_t n = size_t(n_vocab_);
  const float max_logit = max_of(z, n);
  if (max_logit == -kInf || max_logit == kInf) return argmax(z, n_vocab_);
  const float inv_t = 1.0f / params_.temperature;

  weights_.resize(n);
  float* w = weights_.data();
  for (size_t i = 0; i < n; ++i) w[i] = weight_at((max_logit - z[i]) * inv_t);

  // Zeroes the weight of every token less likely than `bound` in the total order: up to
  // the bound's id a tie with it stays, after it a tie goes.
  const auto keep_down_to = [&](const Candidate& bound) {
    const size_t split = size_t(bound.id) + 1;
    for (size_t i = 0; i < split; ++i) w[i] = z[i] >= bound.logit ? w[i] : 0.0f;
    for (size_t i = split; i < n; ++i) w[i] = z[i] > bound.logit ? w[i] : 0.0f;
  };

  if (k < n) {  // a large top-k: its k-th best token bounds the set
    auto& c = candidates_;
    c.clear();
    for (size_t i = 0; i < n; ++i) {
      if (z[i] > -kInf) c.push_back({z[i], int32_t(i), 0.0f});
    }
    if (c.size() > k) {
      std::nth_element(c.begin(), c.begin() + (k - 1), c.end(), more_likely<Candidate>);
      keep_down_to(c[k - 1]);
    }
  }

  if (params_.top_p < 1.0f) {
    // Find the bucket where the mass, most likely first, reaches the target; only that
    // bucket's tokens need ordering to place the exact bound.
    const double target = double(params_.top_p) * sum(w, n) * (1.0 - kTopPSlack);
    bucket_mass_.assign(kBuckets, 0.0);
    for (size_t i = 0; i < n; ++i) {
      // Skipping zeros (masked tokens, often in long runs) spares a chain of dependent adds.
      if (w[i] != 0.0f) bucket_mass_[bucket_of(w[i])] += w[i];
    }
    double cumulative = 0.0;
    size_t crossing = 0;
    for (; crossing < kBuckets; ++crossing) {
      if (cumulative + bucket_mass_[crossing] >= target) break;
      cumulative += bucket_mass_[crossing];
    }
    if (crossing < kBuckets) {  // past the end only by rounding: keep everything
      auto& c = candidates_;
      c.clear();
      // The bucket's weights, as bits, in [low, low + width); a weight of 0 is never kept.
      const uint32_t width = 1u << kBucketShift;
      const uint32_t low =
          uint32_t(std::max<int64_t>(int64_t(kOneBits) - int64_t(crossing + 1) * width + 1, 1));
      for (size_t i = 0; i < n; ++i) {
        if (std::bit_cast<uint32_t>(w[i]) - low < width) c.push_back({z[i], int32_t(i), w[i]});
      }
      std::sort(c.begin(), c.end(), more_likely<Candidate>);
      size_t last = 0;
      for (; last + 1 < c.size(); ++last) {
        cumulative += c[last].weight;
        if (cumulative >= target) break;
      }
      if (!c.empty()) keep_down_to(c[last]);
    }
  }

  if (params_.min_p > 0.0f) {
    const float bound = params_.min_p;  // relative to the top weight, e^0 = 1
    for (size_t i = 0; i < n; ++i) w[i] = w[i] >= bound ? w[i] : 0.0f;
  }

  // Per-block sums give the total and let the draw skip whole blocks.
  const size_t n_blocks = (n + kDrawBlock - 1) / kDrawBlock;
  block_mass_.resize(n_blocks);
  double total = 0.0;
  for (size_t b = 0; b < n_blocks; ++b) {
    const size_t begin = b * kDrawBlock;
    block_mass_[b] = sum(w + begin, std::min(kDrawBlock, n - begin));
    total += block_mass_[b];
  }
  const double r = next_unit() * total;
  double cumulative = 0.0;
  size_t b = 0;
  for (; b + 1 < n_blocks; ++b) {
    if (block_mass_[b] > 0.0 && r < cumulative + block_mass_[b]) break;
    cumulative += block_mass_[b];
  }
  while (block_mass_[b] == 0.0) {  // rounding ran past the last block with weight
    --b;
    cumulative -= block_mass_[b];
  }
  const size_t begin = b * kDrawBlock;
  const float* block = w + begin;
  return int32_t(begin + draw_index(std::min(kDrawBlock, n - begin), r - cumulative,
                                    [&](size_t i) { return block[i]; }));
}

}  // namespace strata::models
