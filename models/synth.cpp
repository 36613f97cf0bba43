// strata synth: spec checks, llama.cpp-compatible metadata and tensor layout, and the writer
// driver. The random bytes themselves come from synth_blocks.cpp.
#include "models/synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cctype>
#include <cstdio>
#include <limits>
#include <unordered_set>

#include "models/synth_blocks.h"
#include "storage/error.h"

namespace strata::models {

using compute::DType;

namespace {

struct SynthType {
  const char* name;
  DType type;
  uint32_t file_type;  // llama.cpp's general.file_type for a file made of this type
};

constexpr SynthType kTypes[] = {
    {"f32", DType::F32, 0},   {"f16", DType::F16, 1},   {"bf16", DType::BF16, 32},
    {"q4_0", DType::Q4_0, 2}, {"q4_1", DType::Q4_1, 3}, {"q5_0", DType::Q5_0, 8},
    {"q5_1", DType::Q5_1, 9}, {"q8_0", DType::Q8_0, 7}, {"q2_k", DType::Q2_K, 10},
    {"q3_k", DType::Q3_K, 11}, {"q4_k", DType::Q4_K, 14}, {"q5_k", DType::Q5_K, 16},
    {"q6_k", DType::Q6_K, 18},
};

const SynthType* find_synth_type(DType t) {
  for (const auto& s : kTypes)
    if (s.type == t) return &s;
  return nullptr;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_moe(SynthArch a) { return a != SynthArch::Llama; }
// llama.cpp's architecture name: Mixtral is the llama architecture with experts.
const char* gguf_arch(SynthArch a) { return a == SynthArch::Qwen3Moe ? "qwen3moe" : "llama"; }

constexpr int64_t kMaxDim = int64_t(1) << 24;  // keeps every product of dimensions far from overflow
constexpr int64_t kMinVocab = 260;              // 3 specials + 256 bytes + "▁"
constexpr int64_t kMaxVocab = 1 << 20;
constexpr int64_t kMaxExperts = 256;            // llama.cpp's limit

void check_range(const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) fail("{} = {} is out of range (expected {} to {})", field, v, lo, hi);
}

}  // namespace

const char* synth_arch_name(SynthArch a) {
  switch (a) {
    case SynthArch::Llama: return "llama";
    case SynthArch::Mixtral: return "mixtral";
    case SynthArch::Qwen3Moe: return "qwen3moe";
  }
  return "?";
}

std::optional<SynthArch> parse_synth_arch(std::string_view name) {
  const std::string n = lower(name);
  for (SynthArch a : {SynthArch::Llama, SynthArch::Mixtral, SynthArch::Qwen3Moe})
    if (n == synth_arch_name(a)) return a;
  return std::nullopt;
}

const char* synth_routing_name(SynthRouting r) { return r == SynthRouting::Zipf ? "zipf" : "uniform"; }

std::optional<SynthRouting> parse_synth_routing(std::string_view name) {
  const std::string n = lower(name);
  for (SynthRouting r : {SynthRouting::Uniform, SynthRouting::Zipf})
    if (n == synth_routing_name(r)) return r;
  return std::nullopt;
}

std::optional<DType> parse_synth_type(std::string_view name) {
  const std::string n = lower(name);
  for (const auto& s : kTypes)
    if (n == s.name) return s.type;
  return std::nullopt;
}

const std::vector<std::string>& synth_type_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& s : kTypes) v.emplace_back(s.name);
    return v;
  }();
  return names;
}

SynthSpec default_synth_spec(SynthArch arch) {
  SynthSpec s;
  s.arch = arch;
  if (arch == SynthArch::Llama) {
    s.n_expert = 0;
    s.n_expert_used = 0;
    s.n_ff = 1536;
  } else if (arch == SynthArch::Qwen3Moe) {
    s.head_dim = 64;
    s.n_ff = 512;
    s.ctx_len = 4096;
  }
  return s;
}

float synth_weight_std(int64_t row_length) { return float(1.0 / std::sqrt(double(row_length))); }

std::vector<float> synth_router_gains(const SynthSpec& s, int64_t layer) {
  if (!is_moe(s.arch)) return {};
  std::vector<float> gain(static_cast<size_t>(s.n_expert), 1.0f);
  if (s.routing == SynthRouting::Uniform) return gain;
  // A stream of its own per layer, so that every layer has its own popular experts and its own
  // exponent, and neither depends on the other layers or on the tensor bytes.
  uint64_t state = synth::mix64(synth::mix64(s.seed ^ 0x20a7e5ull) + uint64_t(layer) * 0x9e3779b97f4a7c15ull);
  auto next = [&] { return synth::mix64(state += 0x9e3779b97f4a7c15ull); };
  const double unit = double(next() >> 11) * 0x1.0p-53;  // [0, 1)
  const double exponent = s.zipf_s * (0.75 + 0.5 * unit);
  std::vector<int64_t> expert_of_rank(gain.size());
  for (size_t i = 0; i < expert_of_rank.size(); ++i) expert_of_rank[i] = int64_t(i);
  for (size_t i = expert_of_rank.size(); i > 1; --i) std::swap(expert_of_rank[i - 1], expert_of_rank[next() % i]);
  double sq = 0;
  for (size_t r = 0; r < gain.size(); ++r) sq += std::pow(double(r + 1), -2 * exponent);
  const double rms = std::sqrt(sq / double(gain.size()));
  for (size_t r = 0; r < gain.size(); ++r)
    gain[size_t(expert_of_rank[r])] = float(std::pow(double(r + 1), -exponent) / rms);
  return gain;
}

SynthSpec resolve_synth_spec(const SynthSpec& in) {
  SynthSpec s = in;
  if (!find_synth_type(s.type))
    fail("weight type {} is not one synth can generate", compute::type_name(s.type));
  if (s.target_size == 0) check_range("n_layer (--layers)", s.n_layer, 1, 1 << 16);
  check_range("n_embd (--dim)", s.n_embd, 1, kMaxDim);
  check_range("n_head (--heads)", s.n_head, 1, 1 << 16);
  check_range("n_head_kv (--kv-heads)", s.n_head_kv, 1, s.n_head);
  if (s.n_head % s.n_head_kv != 0)
    fail("n_head (--heads) = {} is not a multiple of n_head_kv (--kv-heads) = {}", s.n_head, s.n_head_kv);
  if (s.head_dim == 0) {
    if (s.n_embd % s.n_head != 0)
      fail("n_embd (--dim) = {} is not a multiple of n_head (--heads) = {} (give --head-dim)", s.n_embd, s.n_head);
    s.head_dim = s.n_embd / s.n_head;
  }
  check_range("head_dim (--head-dim)", s.head_dim, 2, 1 << 16);
  if (s.head_dim % 2 != 0) fail("head_dim (--head-dim) = {} must be even (rotary embeddings rotate pairs)", s.head_dim);
  check_range("n_head * head_dim", s.n_head * s.head_dim, 1, kMaxDim);
  check_range("n_ff (--ffn)", s.n_ff, 1, kMaxDim);
  check_range("n_vocab (--vocab)", s.n_vocab, kMinVocab, kMaxVocab);
  check_range("ctx_len (--ctx)", s.ctx_len, 1, int64_t(1) << 30);
  if (is_moe(s.arch)) {
    check_range("n_expert (--experts)", s.n_expert, 1, kMaxExperts);
    check_range("n_expert_used (--used)", s.n_expert_used, 1, s.n_expert);
    if (!std::isfinite(s.zipf_s) || s.zipf_s < 0 || s.zipf_s > 8)
      fail("zipf_s (--zipf) = {} is out of range (expected 0 to 8)", s.zipf_s);
  } else if (s.n_expert != 0 || s.n_expert_used != 0) {
    fail("n_expert (--experts) = {}: the llama architecture is dense (use mixtral for experts)", s.n_expert);
  }

  if (s.target_size > 0) {
    // The size is affine in the layer count: measure one and two layers, then solve.
    SynthSpec probe = s;
    probe.target_size = 0;
    probe.n_layer = 1;
    const uint64_t one = build_synth_writer(probe).file_bytes();
    probe.n_layer = 2;
    const uint64_t per_layer = build_synth_writer(probe).file_bytes() - one;
    const double layers = 1.0 + (double(s.target_size) - double(one)) / double(per_layer);
    // Silently writing a model many times the size asked for would surprise; say what fits.
    if (layers < 0.5)
      fail("--size {:.1f} KiB is smaller than the smallest model of this shape ({:.2f} MiB with 1 layer); "
           "ask for more, or make it smaller with --dim, --ffn, --experts or --vocab",
           double(s.target_size) / 1024.0, double(one) / 1048576.0);
    if (layers > double(1 << 16))
      fail("--size {:.2f} GiB needs {:.0f} layers of this shape, more than the limit of 65536; give a larger --dim or --ffn",
           double(s.target_size) / 1073741824.0, layers);
    s.n_layer = std::clamp<int64_t>(std::llround(layers), 1, 1 << 16);
    s.target_size = 0;
  }
  return s;
}

std::vector<std::string> synth_vocab(int64_t n_vocab) {
  if (n_vocab < kMinVocab || n_vocab > kMaxVocab)
    fail("vocabulary size {} is out of range (expected {} to {})", n_vocab, kMinVocab, kMaxVocab);
  static const char* kWords[] = {
      "the", "and", "of", "to", "in", "is", "was", "it", "for", "on", "that", "with", "as",
      "he", "she", "at", "by", "be", "this", "had", "not", "are", "but", "from", "or", "have",
      "an", "they", "which", "one", "you", "were", "her", "all", "we", "there", "been", "if",
      "has", "when", "who", "will", "more", "no", "out", "do", "so", "can", "what", "up",
      "said", "about", "other", "into", "than", "its", "time", "only", "could", "new", "them",
      "man", "some", "these", "then", "two", "first", "may", "any", "like", "now", "my",
      "once", "upon", "day", "little", "girl", "boy", "named", "play", "happy", "big", "very"};
  const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's word-start marker
  std::vector<std::string> v = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) v.push_back(fmt::format("<0x{:02X}>", b));
  v.push_back(space);
  std::unordered_set<std::string> seen(v.begin(), v.end());
  auto add = [&](std::string s) {
    if (int64_t(v.size()) < n_vocab && seen.insert(s).second) v.push_back(std::move(s));
  };
  const std::string lowers = "abcdefghijklmnopqrstuvwxyz";
  const std::string singles = lowers + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?;:'\"-()[]{}/\\@#$%^&*_+=<>~`|";
  for (char c : singles) add(std::string(1, c));
  for (char c : singles)
    if (std::isalnum(static_cast<unsigned char>(c))) add(space + c);
  for (const char* w : kWords) add(space + w);
  // Then every lowercase string of length 2, 3, ... with and without the word-start marker.
  for (size_t len = 2; int64_t(v.size()) < n_vocab; ++len) {
    std::string s(len, 'a');
    while (int64_t(v.size()) < n_vocab) {
      add(s);
      add(space + s);
      size_t i = len;  // odometer increment over a..z
      while (i > 0 && s[i - 1] == 'z') s[--i] = 'a';
      if (i == 0) break;
      ++s[i - 1];
    }
  }
  return v;
}

gguf::GGUFWriter build_synth_writer(const SynthSpec& s) {
  const SynthType& st = *find_synth_type(s.type);
  const std::string A = gguf_arch(s.arch);
  const bool qwen = s.arch == SynthArch::Qwen3Moe;
  auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };

  gguf::GGUFWriter w(32);
  w.add_string("general.architecture", A);
  w.add_string("general.name", fmt::format("strata-synth-{}-{}L-{}", synth_arch_name(s.arch), s.n_layer, st.name));
  w.add_u32("general.alignment", 32);
  w.add_u32("general.file_type", st.file_type);
  w.add_u32("general.quantization_version", 2);
  w.add_u64("strata.synth.seed", s.seed);
  if (is_moe(s.arch)) {
    w.add_string("strata.synth.routing", synth_routing_name(s.routing));
    if (s.routing == SynthRouting::Zipf) w.add_f32("strata.synth.zipf", float(s.zipf_s));
  }
  w.add_u32(A + ".vocab_size", u32(s.n_vocab));
  w.add_u32(A + ".context_length", u32(s.ctx_len));
  w.add_u32(A + ".embedding_length", u32(s.n_embd));
  w.add_u32(A + ".block_count", u32(s.n_layer));
  w.add_u32(A + ".feed_forward_length", u32(s.n_ff));
  if (qwen) w.add_u32(A + ".expert_feed_forward_length", u32(s.n_ff));
  w.add_u32(A + ".attention.head_count", u32(s.n_head));
  w.add_u32(A + ".attention.head_count_kv", u32(s.n_head_kv));
  w.add_u32(A + ".attention.key_length", u32(s.head_dim));
  w.add_u32(A + ".attention.value_length", u32(s.head_dim));
  w.add_f32(A + ".attention.layer_norm_rms_epsilon", qwen ? 1e-6f : 1e-5f);
  w.add_f32(A + ".rope.freq_base", qwen ? 1e6f : 1e4f);
  w.add_u32(A + ".rope.dimension_count", u32(s.head_dim));
  if (is_moe(s.arch)) {
    w.add_u32(A + ".expert_count", u32(s.n_expert));
    w.add_u32(A + ".expert_used_count", u32(s.n_expert_used));
  }

  const std::vector<std::string> vocab = synth_vocab(s.n_vocab);
  std::vector<float> scores(vocab.size(), 0.0f);
  std::vector<int32_t> types(vocab.size(), 1);
  types[0] = 2;                                      // <unk>
  types[1] = types[2] = 3;                           // <s>, </s>
  for (int b = 0; b < 256; ++b) types[3 + b] = 6;    // <0xNN>
  for (size_t i = 259; i < vocab.size(); ++i) scores[i] = -float(i - 259);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", vocab);
  w.add_f32_array("tokenizer.ggml.scores", scores);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  w.add_u32("tokenizer.ggml.unknown_token_id", 0);
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_bool("tokenizer.ggml.add_eos_token", false);

  const int64_t q_dim = s.n_head * s.head_dim, kv_dim = s.n_head_kv * s.head_dim;
  const DType T = s.type;
  w.add_tensor("token_embd.weight", {s.n_embd, s.n_vocab}, T);
  w.add_tensor("output_norm.weight", {s.n_embd}, DType::F32);
  w.add_tensor("output.weight", {s.n_embd, s.n_vocab}, T);
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    w.add_tensor(b + "attn_norm.weight", {s.n_embd}, DType::F32);
    w.add_tensor(b + "attn_q.weight", {s.n_embd, q_dim}, T);
    w.add_tensor(b + "attn_k.weight", {s.n_embd, kv_dim}, T);
    w.add_tensor(b + "attn_v.weight", {s.n_embd, kv_dim}, T);
    w.add_tensor(b + "attn_output.weight", {q_dim, s.n_embd}, T);
    if (qwen) {
      w.add_tensor(b + "attn_q_norm.weight", {s.head_dim}, DType::F32);
      w.add_tensor(b + "attn_k_norm.weight", {s.head_dim}, DType::F32);
    }
    w.add_tensor(b + "ffn_norm.weight", {s.n_embd}, DType::F32);
    if (is_moe(s.arch)) {
      w.add_tensor(b + "ffn_gate_inp.weight", {s.n_embd, s.n_expert}, DType::F32);
      w.add_tensor(b + "ffn_gate_exps.weight", {s.n_embd, s.n_ff, s.n_expert}, T);
      w.add_tensor(b + "ffn_down_exps.weight", {s.n_ff, s.n_embd, s.n_expert}, T);
      w.add_tensor(b + "ffn_up_exps.weight", {s.n_embd, s.n_ff, s.n_expert}, T);
    } else {
      w.add_tensor(b + "ffn_gate.weight", {s.n_embd, s.n_ff}, T);
      w.add_tensor(b + "ffn_down.weight", {s.n_ff, s.n_embd}, T);
      w.add_tensor(b + "ffn_up.weight", {s.n_embd, s.n_ff}, T);
    }
  }
  return w;
}

SynthResult synth_model(const SynthSpec& spec, const std::string& path, const SynthProgress& progress,
                        const gguf::WriteOptions& io) {
  const auto t0 = std::chrono::steady_clock::now();
  SynthResult res;
  res.path = path;
  gguf::GGUFWriter writer;
  try {
    res.spec = resolve_synth_spec(spec);
    writer = build_synth_writer(res.spec);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }

  // Norms are all ones; every other tensor (router included) is random with std 1/sqrt(row),
  // and each router row is then scaled by its expert's gain (SynthRouting).
  struct Gen {
    bool ones;
    DType type;
    float stddev;
    uint64_t key;
    int64_t row_length;
    std::vector<float> row_gain;  // routers with unequal gains only
  };
  std::vector<Gen> gens;
  for (size_t i = 0; i < writer.tensors().size(); ++i) {
    const auto& t = writer.tensors()[i];
    const bool ones = t.name.ends_with("norm.weight");
    Gen g{ones, t.type, synth_weight_std(t.shape[0]), synth::tensor_key(res.spec.seed, i), t.shape[0], {}};
    long long layer = 0;
    if (t.name.ends_with(".ffn_gate_inp.weight") && std::sscanf(t.name.c_str(), "blk.%lld.", &layer) == 1 &&
        res.spec.routing != SynthRouting::Uniform)
      g.row_gain = synth_router_gains(res.spec, layer);
    gens.push_back(std::move(g));
  }
  gguf::WriteOptions opts = io;
  if (progress) opts.progress = progress;
  writer.write(path, [&](size_t i, uint64_t offset, std::span<uint8_t> dst) {
    const Gen& g = gens[i];
    if (g.ones) synth::fill_constant_f32(1.0f, offset, dst);
    else if (!g.row_gain.empty()) synth::fill_random_f32_rows(g.key, g.stddev, g.row_length, g.row_gain, offset, dst);
    else synth::fill_random(g.type, g.key, g.stddev, offset, dst);
  }, opts);

  res.bytes = writer.file_bytes();
  res.n_tensors = writer.tensors().size();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace strata::models
