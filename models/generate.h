// Text generation and perplexity over a loaded Model.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/model.h"
#include "models/sampling.h"

namespace strata::models {

struct GenerateOptions {
  int n_predict = 64;  // -1: until an end-of-generation token or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;
  // The context (prompt + generated tokens) in positions; 0: the model's trained length. The KV
  // cache holds only what prompt + n_predict can use; generation stops when the context is full.
  int64_t n_ctx = 0;
  bool ignore_eos = false;  // keep generating past end-of-generation tokens
};

struct GenerateStats {
  int64_t prompt_tokens = 0, gen_tokens = 0;
  uint64_t kv_cache_bytes = 0;  // the sequence's KV cache at the end (outside the weight budget)
  double prompt_s = 0, gen_s = 0, load_s = 0;
  double prompt_tps() const { return prompt_s > 0 ? prompt_tokens / prompt_s : 0; }
  double gen_tps() const { return gen_s > 0 ? gen_tokens / gen_s : 0; }
};

struct GenerateResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> tokens;  // generated, an end-of-generation token included if produced
  std::string text;             // generated text (stop string and what follows removed)
  std::vector<std::pair<int32_t, float>> top_logits;  // 10 highest at the last prompt position
  int64_t n_ctx = 0;          // the context it ran with
  bool context_full = false;  // stopped because the context ran out, before n_predict tokens
  GenerateStats stats;
  // Provider counters when decoding started and ended, and the routing prediction counters of
  // the decode phase: the streaming summary is their difference.
  runtime::ProviderStats decode_start, decode_end;
  RoutingStats decode_routing;
};

// Streams each piece of emitted text through on_text (may be empty).
GenerateResult generate(Model& model, std::string_view prompt, const GenerateOptions& opts,
                        const std::function<void(std::string_view)>& on_text);

// The n highest logits, highest first, ties to the lower id.
std::vector<std::pair<int32_t, float>> top_logits(const float* logits, int64_t n_vocab, int n);

struct PerplexityResult {
  double ppl = 0;
  double ppl_stderr = 0;
  int64_t n_chunks = 0;
  int64_t n_scored = 0;
  std::vector<double> running_ppl;  // after each chunk
  double seconds = 0;
};

// llama.cpp's perplexity method: the text (tokenized with BOS) is cut into non-overlapping
// windows of n_ctx tokens, each starting with BOS, and only the second half of each window is
// scored. Windows are evaluated `batch` at a time as separate sequences of one forward batch.
// `on_chunk(chunk_index, n_chunks, running_ppl)` is called after each window is scored, in order.
PerplexityResult perplexity(Model& model, std::string_view text, int64_t n_ctx, int batch = 4,
                            const std::function<void(int64_t, int64_t, double)>& on_chunk = {});

}  // namespace strata::models
