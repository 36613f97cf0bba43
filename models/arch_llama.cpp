// "llama": dense Llama, and Mixtral-style MoE when <arch>.expert_count > 0 (router
// ffn_gate_inp, 3-D ffn_{gate,up,down}_exps, softmax over all experts, top-k renormalised).
#include <fmt/format.h>

#include "models/gguf/gguf.h"
#include "models/model.h"
#include "storage/error.h"

namespace strata::models {
namespace {

HParams read_llama(const gguf::GGUFFile& f) {
  HParams h = read_llama_family_hparams(f, "llama");
  h.rope_layout = RopeLayout::Adjacent;
  if (h.n_expert == 0 && h.n_ff == 0)
    fail("{}: metadata llama.feed_forward_length is missing", f.paths().front());
  return h;
}

}  // namespace

// Shared by llama-family architectures: the tensors every block has.
void bind_llama_family(WeightBinder& b, const HParams& hp, ModelWeights& w) {
  using runtime::UnitKind;
  const gguf::GGUFFile& f = b.file();
  w.token_embd = b.matrix("token_embd.weight", hp.n_embd, hp.n_vocab, UnitKind::Dense, -1);
  w.output_norm_ref = b.vector("output_norm.weight", hp.n_embd, -1);
  w.output = b.matrix("output.weight", hp.n_embd, hp.n_vocab, UnitKind::Dense, static_cast<int>(hp.n_layer), /*optional=*/true);
  if (!w.output.present) w.output = w.token_embd;  // tied embeddings
  w.rope_freqs_ref = b.vector("rope_freqs.weight", hp.rope_dim / 2, -1, /*optional=*/true);
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const int l = static_cast<int>(il);
    const std::string p = fmt::format("blk.{}", il);
    LayerWeights& L = w.layers[il];
    L.attn_norm_ref = b.vector(p + ".attn_norm.weight", hp.n_embd, l);
    L.wq = b.matrix(p + ".attn_q.weight", hp.n_embd, hp.q_dim(), UnitKind::Dense, l);
    L.wk = b.matrix(p + ".attn_k.weight", hp.n_embd, hp.k_dim(), UnitKind::Dense, l);
    L.wv = b.matrix(p + ".attn_v.weight", hp.n_embd, hp.v_dim(), UnitKind::Dense, l);
    L.wo = b.matrix(p + ".attn_output.weight", hp.n_head * hp.head_dim_v, hp.n_embd, UnitKind::Dense, l);
    L.ffn_norm_ref = b.vector(p + ".ffn_norm.weight", hp.n_embd, l);
    if (hp.qk_norm) {
      L.q_norm_ref = b.vector(p + ".attn_q_norm.weight", hp.head_dim_k, l);
      L.k_norm_ref = b.vector(p + ".attn_k_norm.weight", hp.head_dim_k, l);
    }
    if (hp.n_expert > 0) {
      L.moe = true;
      L.router = b.matrix(p + ".ffn_gate_inp.weight", hp.n_embd, hp.n_expert, UnitKind::Pinned, l);
      if (!f.find_tensor(p + ".ffn_gate_exps.weight") && f.find_tensor(p + ".ffn_gate.0.weight"))
        fail("{}: layer {} stores experts as separate 2-D tensors (old Mixtral GGUF layout); "
             "re-convert the model to 3-D ffn_*_exps tensors", f.paths().front(), il);
      L.experts = b.experts(p, hp.n_embd, hp.n_ff_expert, hp.n_expert, l);
    } else {
      L.ffn_gate = b.matrix(p + ".ffn_gate.weight", hp.n_embd, hp.n_ff, UnitKind::Dense, l);
      L.ffn_up = b.matrix(p + ".ffn_up.weight", hp.n_embd, hp.n_ff, UnitKind::Dense, l);
      L.ffn_down = b.matrix(p + ".ffn_down.weight", hp.n_ff, hp.n_embd, UnitKind::Dense, l);
    }
  }
}

const Architecture kLlamaArchitecture{"llama", read_llama, bind_llama_family};

}  // namespace strata::models
