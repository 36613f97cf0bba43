// Transformer hyperparameters, all read from the GGUF metadata of the model's architecture.
#pragma once
#include <cstdint>
#include <string>

namespace strata::gguf { class GGUFFile; }

namespace strata::models {

// How rotary embeddings pair up dimensions: adjacent pairs (GPT-J / llama GGUF layout) or the
// two halves of the rotated part (GPT-NeoX layout, used by Qwen).
enum class RopeLayout { Adjacent, Halves };

struct HParams {
  std::string arch;
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  int64_t n_ff = 0;          // dense feed-forward width
  int64_t n_expert = 0;      // 0: dense model
  int64_t n_expert_used = 0;
  int64_t n_ff_expert = 0;   // expert feed-forward width
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  float norm_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  int64_t rope_dim = 0;          // rotated dimensions per head (<= head_dim_k)
  RopeLayout rope_layout = RopeLayout::Adjacent;
  bool expert_weights_norm = true;  // renormalise the top-k router weights to sum to 1
  bool qk_norm = false;             // RMSNorm on each Q and K head before rope

  int64_t q_dim() const { return n_head * head_dim_k; }
  int64_t k_dim() const { return n_head_kv * head_dim_k; }
  int64_t v_dim() const { return n_head_kv * head_dim_v; }
};

// Reads the `<arch>.*` keys common to llama-family architectures. Missing required keys and
// inconsistent values are strata::Error naming the file and key.
HParams read_llama_family_hparams(const gguf::GGUFFile& file, const std::string& arch);

}  // namespace strata::models
