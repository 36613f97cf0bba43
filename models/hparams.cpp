#include "models/hparams.h"

#include "models/gguf/gguf.h"
#include "storage/error.h"

namespace strata::models {

HParams read_llama_family_hparams(const gguf::GGUFFile& f, const std::string& arch) {
  const std::string& path = f.paths().front();
  auto key = [&](const char* k) { return arch + "." + k; };
  auto positive = [&](const char* k, uint64_t v) -> int64_t {
    if (v == 0 || v > (1ull << 31)) fail("{}: metadata {} = {} is out of range", path, key(k), v);
    return static_cast<int64_t>(v);
  };
  HParams h;
  h.arch = arch;
  h.n_layer = positive("block_count", f.require_uint(key("block_count")));
  // Every block has tensors of its own, so a count beyond the file's tensors is false; checked
  // here because per-layer tables are sized from it before any block tensor is looked up.
  if (uint64_t(h.n_layer) > f.tensors().size())
    fail("{}: metadata {} = {} but the file holds only {} tensors (each block needs its own)",
         path, key("block_count"), h.n_layer, f.tensors().size());
  h.n_embd = positive("embedding_length", f.require_uint(key("embedding_length")));
  h.n_head = positive("attention.head_count", f.require_uint(key("attention.head_count")));
  h.n_head_kv = positive("attention.head_count_kv",
                         f.get_uint(key("attention.head_count_kv")).value_or(h.n_head));
  if (h.n_head % h.n_head_kv != 0)
    fail("{}: {} ({}) is not a multiple of {} ({})", path, key("attention.head_count"), h.n_head,
         key("attention.head_count_kv"), h.n_head_kv);
  h.head_dim_k = positive("attention.key_length",
                          f.get_uint(key("attention.key_length")).value_or(h.n_embd / h.n_head));
  h.head_dim_v = positive("attention.value_length",
                          f.get_uint(key("attention.value_length")).value_or(h.head_dim_k));
  h.n_ff = static_cast<int64_t>(f.get_uint(key("feed_forward_length")).value_or(0));
  h.n_expert = static_cast<int64_t>(f.get_uint(key("expert_count")).value_or(0));
  h.n_expert_used = static_cast<int64_t>(f.get_uint(key("expert_used_count")).value_or(0));
  if (h.n_expert > 0) {
    if (h.n_expert_used == 0 || h.n_expert_used > h.n_expert)
      fail("{}: {} = {} must be between 1 and {} = {}", path, key("expert_used_count"),
           h.n_expert_used, key("expert_count"), h.n_expert);
    if (h.n_expert > 4096) fail("{}: {} = {} is out of range", path, key("expert_count"), h.n_expert);
  }
  h.n_ff_expert = static_cast<int64_t>(f.get_uint(key("expert_feed_forward_length")).value_or(h.n_ff));
  h.n_ctx_train = static_cast<int64_t>(f.get_uint(key("context_length")).value_or(2048));
  h.norm_eps = static_cast<float>(f.get_float(key("attention.layer_norm_rms_epsilon")).value_or(1e-5));
  h.rope_base = static_cast<float>(f.get_float(key("rope.freq_base")).value_or(10000.0));
  h.rope_dim = static_cast<int64_t>(f.get_uint(key("rope.dimension_count")).value_or(h.head_dim_k));
  if (h.rope_dim > h.head_dim_k || h.rope_dim % 2 != 0)
    fail("{}: {} = {} must be even and at most the head size {}", path, key("rope.dimension_count"),
         h.rope_dim, h.head_dim_k);
  const std::string scaling = f.get_string(key("rope.scaling.type")).value_or("none");
  if (scaling == "linear") {
    const double factor = f.get_float(key("rope.scaling.factor")).value_or(1.0);
    if (!(factor > 0)) fail("{}: {} must be positive", path, key("rope.scaling.factor"));
    h.rope_freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none") {
    fail("{}: {} = '{}' is not supported (supported: none, linear)", path, key("rope.scaling.type"), scaling);
  }
  if (auto s = f.get_float(key("rope.scale_linear"))) h.rope_freq_scale = static_cast<float>(1.0 / *s);
  h.expert_weights_norm = f.get_bool(key("expert_weights_norm")).value_or(true);
  if (!(h.norm_eps > 0)) fail("{}: {} must be positive", path, key("attention.layer_norm_rms_epsilon"));
  return h;
}

}  // namespace strata::models
