// Choosing the next token from a row of logits: greedy argmax or seeded random sampling with
// the usual filters (top-k, top-p, min-p) and repetition penalties.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace strata::models {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // (0, 1]; 1: off
  float min_p = 0.0f;        // [0, 1]; 0: off
  float repeat_penalty = 1.0f;  // > 0; 1: off
  int repeat_last_n = 64;       // window for repeat_penalty; 0: off, -1: the whole history
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = 0;  // fixed default so runs are reproducible
};

// Throws strata::Error naming the first parameter that is out of range.
void validate(const SamplingParams& p);

// True when any penalty differs from its neutral default (and so changes logits).
bool has_penalties(const SamplingParams& p);

// Applies the penalties in place, each distinct token of the history once:
//  - repeat_penalty (llama-style) to the tokens among the last repeat_last_n of history:
//    a positive logit is divided by it, a negative one multiplied;
//  - then frequency/presence (OpenAI-style) to the tokens of the whole history:
//    logit -= count * frequency_penalty + (count > 0) * presence_penalty.
// History ids outside [0, logits.size()) are ignored.
void apply_penalties(const SamplingParams& p, std::span<float> logits,
                     std::span<const int32_t> history);

// Deterministic: the same params (seed included), logits and history give the same tokens.
//
// Greedy (temperature <= 0) is the argmax of the logits, ties going to the lowest id; seed,
// top_k, top_p and min_p never change it. Penalties, when set to non-default values, are
// applied before the argmax; with default params greedy is exactly the raw argmax.
//
// Sampled: penalties, top-k, softmax at the temperature, top-p (the smallest most-likely set
// whose mass reaches top_p), min-p (drop tokens below min_p times the top probability),
// renormalise, draw. Logits of -inf or NaN are never drawn. Each sampled call takes one draw from a mt19937_64 seeded with `seed`
// (none when only one choice is left: an infinite logit, every logit -inf or NaN, or a
// temperature too small to divide by, which acts as greedy).
class Sampler {
 public:
  Sampler(SamplingParams p, int32_t n_vocab);

  // `logits` holds n_vocab values; `history` is the tokens so far (prompt and/or generated,
  // the caller decides), oldest first.
  int32_t sample(const float* logits, std::span<const int32_t> history);

  // Back to the state right after construction (the random stream restarts from the seed).
  void reset();

  const SamplingParams& params() const { return params_; }
  int32_t n_vocab() const { return n_vocab_; }

 private:
  struct Candidate {
    float logit;
    int32_t id;
    float weight;  // unnormalised probability, exp((logit - max) / temperature)
  };

  int32_t sample_few(const float* logits, size_t k);
  int32_t sample_dense(const float* logits, size_t k);
  double next_unit();  // uniform in [0, 1), from 53 random bits

  SamplingParams params_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  bool use_penalties_;
  // Scratch reused across calls so that sampling allocates nothing.
  std::vector<float> penalized_;  // logits after penalties
  std::vector<uint32_t> counts_;  // for the penalties; all zero between calls
  std::vector<Candidate> candidates_;
  std::vector<float> weights_;         // per vocabulary entry, dense path
  std::vector<double> bucket_mass_;    // top-p histogram, dense path
  std::vector<double> block_mass_;     // weight per block of the vocabulary, dense path
};

}  // namespace strata::models
