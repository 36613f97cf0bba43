// Synthetic models: GGUF files with llama.cpp's key and tensor names, a small SentencePiece-style
// vocabulary and random (but numerically sane) weights, of any size, written at disk speed.
// Used to test and benchmark the runtime on models far larger than the reference data.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compute/quant.h"
#include "models/gguf/gguf_writer.h"

namespace strata::models {

enum class SynthArch { Llama, Mixtral, Qwen3Moe };
const char* synth_arch_name(SynthArch a);                        // "llama", "mixtral", "qwen3moe"
std::optional<SynthArch> parse_synth_arch(std::string_view name);  // the same spellings
// Weight types synth can fill: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k
// (case-insensitive).
std::optional<compute::DType> parse_synth_type(std::string_view name);
const std::vector<std::string>& synth_type_names();

// How the routers of a synthesized MoE (blk.N.ffn_gate_inp.weight) choose experts.
// - Uniform: every router row is random with the same spread, so over many sequences every
//   expert is chosen about equally often.
// - Zipf (default; real MoEs have a few popular experts per layer): each layer ranks its experts
//   by a permutation drawn from the seed and scales the router row of rank r (0-based) by
//   (r + 1)^-s, with s = zipf_s times a factor drawn in [0.75, 1.25] per layer; the gains are
//   normalized to an RMS of 1 so the tensor keeps its overall spread. Across tokens the router
//   logits stay zero-mean, but their spread falls with rank, so high ranks win the top-k far
//   more often: popularity falls off with rank like a power law, flattened at the top since an
//   expert's logit is below zero for about half the tokens. 64 experts, top-4, s = 0.5, over
//   independent tokens: the top expert of a layer is chosen by about a third of them (even
//   share: 1/16), the top 8 take about half of all choices (even: 1/8).
//   Why spread and not a bias: a per-expert bias needs a hidden-state component every token
//   shares, and with random weights the layers' outputs swamp any shared part of the embeddings
//   after the first attention; the spread acts whatever the hidden state's size.
// Temporal locality needs no knob: attention mixes every earlier position into a token's hidden
// state, so consecutive tokens share most of what the router sees and reuse experts; within one
// long sequence that drift alone gives a layer favourites, with either routing.
enum class SynthRouting { Uniform, Zipf };
const char* synth_routing_name(SynthRouting r);                        // "uniform", "zipf"
std::optional<SynthRouting> parse_synth_routing(std::string_view name);  // the same spellings

struct SynthSpec {
  SynthArch arch = SynthArch::Mixtral;
  int64_t n_layer = 8;
  int64_t n_embd = 512;
  int64_t n_head = 8;
  int64_t n_head_kv = 4;
  int64_t head_dim = 0;  // 0: n_embd / n_head
  int64_t n_expert = 8;  // 0 for a dense model
  int64_t n_expert_used = 2;
  int64_t n_ff = 1024;  // dense feed-forward width, or each expert's width
  int64_t n_vocab = 1024;
  int64_t ctx_len = 2048;
  compute::DType type = compute::DType::Q4_0;  // the big matrices; norms and router are F32
  uint64_t seed = 1;
  uint64_t target_size = 0;  // > 0: n_layer is chosen so the file is about this many bytes
  SynthRouting routing = SynthRouting::Zipf;  // MoE only
  double zipf_s = 0.5;  // SynthRouting::Zipf's exponent of the router-row gains, 0 to 8 (0: equal)
};

// Small demo model of an architecture (dense for llama).
SynthSpec default_synth_spec(SynthArch arch);

// Checks the spec (strata::Error naming the field and what is wrong), fills head_dim and, when
// target_size is set, n_layer.
SynthSpec resolve_synth_spec(const SynthSpec& spec);

// The SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, "▁", then printable
// pieces. n_vocab must be at least 260.
std::vector<std::string> synth_vocab(int64_t n_vocab);

// Metadata and tensor index of a resolved spec, ready to write.
gguf::GGUFWriter build_synth_writer(const SynthSpec& resolved);

// Standard deviation of a random weight tensor's values: 1 / sqrt(row length).
float synth_weight_std(int64_t row_length);

// The gain of each expert's router row in `layer` of a resolved spec (SynthRouting): all 1 for
// Uniform, empty for a dense model. The experts with the highest gains are the popular ones.
std::vector<float> synth_router_gains(const SynthSpec& resolved, int64_t layer);

struct SynthResult {
  std::string path;
  SynthSpec spec;  // resolved
  uint64_t bytes = 0;
  size_t n_tensors = 0;
  double seconds = 0;
};

using SynthProgress = std::function<void(uint64_t written, uint64_t total)>;

// Writes the model. Errors name `path` (an invalid spec is reported before the file is created).
SynthResult synth_model(const SynthSpec& spec, const std::string& path,
                        const SynthProgress& progress = {}, const gguf::WriteOptions& io = {});

}  // namespace strata::models
