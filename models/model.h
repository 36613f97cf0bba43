// A loaded model: hyperparameters, tokenizer, weights bound to a provider, and the batched
// forward pass. The forward pass is layer-major over a batch of sequences: every sequence's
// new tokens pass through layer L before layer L+1 starts, so one read of a layer's weights
// serves the whole batch; MoE layers run one job per selected expert over its tokens.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/gguf/gguf.h"
#include "models/hparams.h"
#include "models/kv_cache.h"
#include "models/tokenizer/tokenizer.h"
#include "models/weights.h"
#include "runtime/weight_provider.h"

namespace strata::models {

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm, q_norm, k_norm;
  VectorRef attn_norm_ref, ffn_norm_ref, q_norm_ref, k_norm_ref;
  Matrix wq, wk, wv, wo;
  Matrix ffn_gate, ffn_up, ffn_down;  // dense FFN
  Matrix router;                      // MoE: [n_embd -> n_expert]
  ExpertSet experts;
  bool moe = false;
};

struct ModelWeights {
  Matrix token_embd, output;  // output may alias token_embd (tied)
  VectorRef output_norm_ref;
  std::vector<float> output_norm;
  std::vector<float> rope_freqs;  // optional per-dimension divisors
  VectorRef rope_freqs_ref;
  std::vector<LayerWeights> layers;
};

// One sequence's share of a forward batch.
struct BatchItem {
  KVCache* kv = nullptr;
  std::span<const int32_t> tokens;
  bool all_logits = false;  // logits for every token (perplexity) or just the last
};

// Logits of a forward call: item i's rows start at row_offset[i] (n_vocab floats each).
struct ForwardOutput {
  std::vector<float> logits;
  std::vector<size_t> row_offset;
  const float* row(size_t item, size_t r = 0) const;
  int64_t n_vocab = 0;
};

struct LoadOptions {
  // Makes the weight provider for the model's files (all split parts); when empty, a resident
  // provider reads everything into RAM.
  std::function<std::unique_ptr<runtime::WeightProvider>(const std::vector<std::string>& paths)> provider;
  // Told how many weight bytes have landed of how many while the resident provider reads the
  // model at load (from the loading thread; a streamed load reads little and says nothing).
  runtime::LoadProgress progress;
};

// How well applying layer L+1's router to layer L's hidden state predicted L+1's experts.
struct RoutingStats {
  uint64_t predicted = 0;      // (token, expert) predictions made
  uint64_t predicted_used = 0; // ... that the real router then chose
  double accuracy() const { return predicted ? double(predicted_used) / double(predicted) : 0.0; }
  // The counts since `start` (an earlier snapshot).
  RoutingStats since(const RoutingStats& start) const { return {predicted - start.predicted, predicted_used - start.predicted_used}; }
};

class Model {
 public:
  // Opens the GGUF file, reads hyperparameters and tokenizer, binds every tensor the
  // architecture needs (missing or misshapen tensors are errors), then finalizes the provider.
  static std::unique_ptr<Model> load(const std::string& path, LoadOptions opts = {});
  ~Model();

  const HParams& hparams() const { return hp_; }
  const gguf::GGUFFile& file() const { return file_; }
  const tok::Tokenizer& tokenizer() const { return *tokenizer_; }
  runtime::WeightProvider& provider() { return *provider_; }
  KVCache new_cache(int64_t max_ctx) const { return KVCache(hp_.n_layer, hp_.k_dim(), hp_.v_dim(), max_ctx); }

  // One caller at a time: the serving engine's scheduler owns it (request threads submit to the
  // engine instead). A second thread entering while a call runs is an Error, not a data race.
  void forward(std::span<BatchItem> batch, ForwardOutput& out);
  const RoutingStats& routing_stats() const { return routing_; }
  // Whether a streamed model reads layer L+1's predicted experts while layer L runs (on by
  // default). Mispredictions cost reads and evict cached experts: at a 4 GiB budget on the
  // 11.1 GB reference model it read 849 MB/token against 528 MB without, at no gain in speed,
  // so the server turns it off unless asked. Never changes the output.
  void set_expert_prediction(bool on) { predict_ = on; }
  // Told every MoE layer's choice as its router makes it: experts[t * n_used + k] is batch token
  // t's k-th expert, best first, tokens in batch order. Called on the forward thread before the
  // experts run; routing traces (`--trace-routing`) and tests use it. Empty: nobody is told.
  using RoutingObserver =
      std::function<void(int64_t layer, int64_t n_tokens, int64_t n_used, const int32_t* experts)>;
  void set_routing_observer(RoutingObserver fn) { routing_observer_ = std::move(fn); }

 private:
  Model() = default;
  struct Scratch;
  void attention_layer(int64_t il, std::span<BatchItem> batch, Scratch& s);
  void ffn_layer(int64_t il, Scratch& s);
  void moe_layer(int64_t il, Scratch& s);
  void predict_experts(int64_t il, Scratch& s);
  void request_dense(int64_t il, runtime::Need need);
  void embed(std::span<BatchItem> batch, Scratch& s);
  void repack_weights();

  gguf::GGUFFile file_;
  HParams hp_;
  std::unique_ptr<tok::Tokenizer> tokenizer_;
  std::unique_ptr<runtime::WeightProvider> provider_;
  ModelWeights w_;
  std::unique_ptr<Scratch> scratch_;
  std::vector<std::vector<runtime::UnitId>> dense_units_;  // per layer (last: the output)
  bool streaming_ = false;
  bool predict_ = true;  // the provider reads on demand: worth prefetching and predicting
  RoutingStats routing_;
  RoutingObserver routing_observer_;
  std::atomic<bool> in_forward_{false};
  friend struct ArchitectureLoader;
};

// One per architecture file: reads hyperparameters and binds the tensors into ModelWeights.
struct Architecture {
  const char* name;
  HParams (*read_hparams)(const gguf::GGUFFile& file);
  void (*bind)(WeightBinder& b, const HParams& hp, ModelWeights& w);
};
const Architecture* find_architecture(const std::string& name);
extern const Architecture kLlamaArchitecture;
extern const Architecture kQwen3MoeArchitecture;

}  // namespace strata::models
