// What the serving engine takes and gives back: a Request (a tokenized prompt and how to
// continue it), the events a sequence sends to its Sink, and the counters /metrics reads.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"
#include "models/sampling.h"

namespace strata::engine {

using RequestId = uint64_t;

struct Request {
  std::vector<int32_t> prompt;     // token ids, BOS included when the model wants one
  int64_t max_tokens = -1;         // -1: until the context is full
  models::SamplingParams sampling; // its own seed: the sequence owns its Sampler
  std::vector<std::string> stop;   // stop strings (the text before the first is kept)
  int top_logprobs = -1;           // -1: no logprobs; 0..20: the chosen token's and the n best
  bool ignore_eos = false;         // keep going past end-of-generation tokens
  bool special_text = false;       // control tokens (<s>, <|im_start|>) show their text; off,
                                   // they add nothing to the answer (llama.cpp's server default)
  int raw_top_logits = 0;          // n > 0: the first TokenEvent carries the n highest raw
                                   // logits at the last prompt position (run --json, tests)
};

// One generated token, as the sequence's sink sees it (on the scheduler thread).
struct TokenEvent {
  int32_t token = -1;
  bool end = false;                // an end-of-generation token: no text, not part of the answer
                                   // (OpenAI content/logprobs leave it out; `run` lists it)
  std::string text;                // text this token released (may be empty: held back for a
                                   // stop string or an incomplete UTF-8 character)
  std::string piece;               // this token's own bytes, control tokens' text included
                                   // (for logprobs)
  float logprob = 0;               // log-softmax of the raw logits (when logprobs were asked for)
  std::vector<std::pair<int32_t, float>> top;  // the n best (id, logprob), best first
  double t = 0;                    // steady-clock seconds when the token was sampled
  std::vector<std::pair<int32_t, float>> raw_top_logits;  // see Request::raw_top_logits
};

enum class FinishReason { Stop, Length, Cancelled, Error };
const char* to_string(FinishReason r);  // "stop", "length", "cancelled", "error"

struct FinishEvent {
  FinishReason reason = FinishReason::Stop;
  std::string error;               // FinishReason::Error: what went wrong
  std::string text_tail;           // text released at the end (held-back bytes)
  int64_t prompt_tokens = 0, completion_tokens = 0;
  bool context_full = false;       // Length because the context, not max_tokens, ran out
  double t_submit = 0, t_first_token = 0, t_end = 0;  // steady-clock seconds
};

// Receives a sequence's events, on the scheduler thread. Must not block or throw; the server
// forwards them into its connection's queue. Exactly one on_finish ends every accepted request.
struct Sink {
  std::function<void(const TokenEvent&)> on_token;
  std::function<void(const FinishEvent&)> on_finish;
};

struct EngineOptions {
  int max_batch = 16;              // sequences in the running batch
  uint64_t kv_budget = 0;          // bytes of KV cache across running sequences (0: no limit)
  int64_t n_ctx = 0;               // per-sequence context (0: the model's trained length)
  int prefill_chunk = 256;         // prompt tokens a step takes, over all prefilling sequences
  size_t max_queue = 64;           // requests waiting for a slot; beyond it submit() refuses
};

// Counters for /metrics and the summaries; a snapshot taken under the engine's lock.
struct EngineStats {
  int active = 0, queued = 0;
  uint64_t kv_bytes = 0;           // KV cache allocated by running sequences
  uint64_t kv_reserved = 0;        // their worst case (prompt + max_tokens), what admission counts
  uint64_t kv_budget = 0;
  uint64_t steps = 0;
  double step_seconds = 0;         // wall time inside forward passes (reads waited on included)
  double step_cpu_seconds = 0;     // process CPU time over the same spans (all threads)
  uint64_t batch_tokens = 0;       // tokens through the model, summed over steps
  uint64_t prompt_tokens = 0, generated_tokens = 0;
  uint64_t requests_finished = 0, requests_cancelled = 0, requests_rejected = 0;
  runtime::ProviderStats provider;  // the weight provider's counters
};

struct SubmitResult {
  bool accepted = false;
  RequestId id = 0;
  int http_status = 0;             // when refused: 429 (queue full) or 400 (can never fit)
  std::string error;               // when refused: why, for the client
  int retry_after_s = 0;           // 429: a hint for Retry-After
};

}  // namespace strata::engine
