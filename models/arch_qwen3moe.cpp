// "qwen3moe": Qwen3 MoE. Differs from Mixtral-style llama in: RMSNorm on every Q and K head
// before rope, NeoX rope layout (halves), an explicit expert feed-forward width, no shared
// expert, and top-k router weights renormalised (norm_top_k_prob).
#include "models/gguf/gguf.h"
#include "models/model.h"
#include "storage/error.h"

namespace strata::models {

void bind_llama_family(WeightBinder& b, const HParams& hp, ModelWeights& w);

namespace {

HParams read_qwen3moe(const gguf::GGUFFile& f) {
  HParams h = read_llama_family_hparams(f, "qwen3moe");
  h.rope_layout = RopeLayout::Halves;
  h.qk_norm = true;
  if (h.n_expert == 0) fail("{}: metadata qwen3moe.expert_count is missing or zero", f.paths().front());
  if (!f.has("qwen3moe.expert_feed_forward_length"))
    fail("{}: metadata qwen3moe.expert_feed_forward_length is missing", f.paths().front());
  return h;
}

}  // namespace

const Architecture kQwen3MoeArchitecture{"qwen3moe", read_qwen3moe, bind_llama_family};

}  // namespace strata::models
