// `strata synth`: write a random-weight model that llama.cpp and strata can load, of a given
// shape or of about a given size, at disk speed.
#include <tbb/global_control.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "models/synth.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/model_flags.h"
#include "tools/progress.h"
#include "tools/units.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

struct SynthArgs {
  std::string output, arch = "mixtral", type = "q4_0", size, routing;
  std::optional<double> zipf;
  std::optional<int64_t> layers, dim, heads, kv_heads, head_dim, experts, used, ffn, vocab, ctx;
  uint64_t seed = 1;
  int threads = 0;
  bool buffered = false;
};


int run(const SynthArgs& a) {
  const auto arch = models::parse_synth_arch(a.arch);
  if (!arch) fail("--arch '{}': expected llama, mixtral or qwen3moe", a.arch);
  const auto type = models::parse_synth_type(a.type);
  if (!type) {
    std::string names;
    for (const auto& n : models::synth_type_names()) names += (names.empty() ? "" : ", ") + n;
    fail("--type '{}': expected one of {}", a.type, names);
  }
  models::SynthSpec spec = models::default_synth_spec(*arch);
  spec.type = *type;
  spec.seed = a.seed;
  auto set = [](const char* flag, const std::optional<int64_t>& v, int64_t& field, int64_t min) {
    if (!v) return;
    if (*v < min) fail("{} {}: must be at least {}", flag, *v, min);
    field = *v;
  };
  set("--layers", a.layers, spec.n_layer, 1);
  set("--dim", a.dim, spec.n_embd, 1);
  set("--heads", a.heads, spec.n_head, 1);
  set("--kv-heads", a.kv_heads, spec.n_head_kv, 1);
  set("--head-dim", a.head_dim, spec.head_dim, 2);
  set("--experts", a.experts, spec.n_expert, 0);
  set("--used", a.used, spec.n_expert_used, 0);
  set("--ffn", a.ffn, spec.n_ff, 1);
  set("--vocab", a.vocab, spec.n_vocab, 260);
  set("--ctx", a.ctx, spec.ctx_len, 1);
  // A head count given without a head size means the usual n_embd / n_head.
  if ((a.dim || a.heads) && !a.head_dim) spec.head_dim = 0;
  if (!a.size.empty()) spec.target_size = parse_size(a.size, "--size");
  if (!a.routing.empty() || a.zipf) {
    if (*arch == models::SynthArch::Llama)
      fail("--routing/--zipf shape how MoE routers choose experts; the llama architecture is dense (use --arch mixtral "
           "or qwen3moe)");
    if (!a.routing.empty()) {
      const auto routing = models::parse_synth_routing(a.routing);
      if (!routing) fail("--routing '{}': expected uniform or zipf", a.routing);
      spec.routing = *routing;
    }
    if (a.zipf && spec.routing != models::SynthRouting::Zipf)
      fail("--zipf {} is zipf routing's exponent; it means nothing with --routing uniform", *a.zipf);
    if (a.zipf) spec.zipf_s = *a.zipf;
  }

  auto threads = limit_threads(a.threads);

  Progress bar("synth", 0);
  gguf::WriteOptions io;
  io.direct_io = !a.buffered;
  const models::SynthResult r = models::synth_model(
      spec, a.output,
      [&](uint64_t w, uint64_t t) {
        bar.set_total(t);
        bar.update(w);
      },
      io);
  bar.finish();
  const auto& s = r.spec;
  const std::string routing = s.n_expert == 0                          ? ""
                              : s.routing == models::SynthRouting::Zipf ? fmt::format(", zipf {:g} routing", s.zipf_s)
                                                                        : ", uniform routing";
  std::printf("%s: %s, %zu tensors (%s %s, %lld layers, dim %lld, %lld experts%s), %.2f s, %s\n",
              r.path.c_str(), format_bytes(double(r.bytes)).c_str(), r.n_tensors,
              models::synth_arch_name(s.arch), compute::type_name(s.type),
              static_cast<long long>(s.n_layer), static_cast<long long>(s.n_embd),
              static_cast<long long>(s.n_expert), routing.c_str(), r.seconds,
              format_rate(r.seconds > 0 ? double(r.bytes) / r.seconds : 0.0).c_str());
  return 0;
}

}  // namespace

void add_synth_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<SynthArgs>();
  CLI::App* c = app.add_subcommand("synth", "Write a random-weight model (llama.cpp-compatible GGUF)");
  c->add_option("-o,--output", a->output, "Output GGUF file")->required();
  c->add_option("--arch", a->arch, "llama | mixtral | qwen3moe (default mixtral)");
  c->add_option("--type", a->type, "Weight type: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k");
  auto* layers = c->add_option("--layers", a->layers, "Layers (default 8)");
  c->add_option("--dim", a->dim, "Embedding width (default 512)");
  c->add_option("--heads", a->heads, "Attention heads (default 8)");
  c->add_option("--kv-heads", a->kv_heads, "Key/value heads (default 4)");
  c->add_option("--head-dim", a->head_dim, "Head size (default dim / heads; qwen3moe 64)");
  c->add_option("--experts", a->experts, "Experts (default 8; llama: 0)");
  c->add_option("--used", a->used, "Experts used per token (default 2)");
  c->add_option("--ffn", a->ffn, "Feed-forward width, per expert for MoE (default 1024)");
  c->add_option("--vocab", a->vocab, "Vocabulary size, at least 260 (default 1024)");
  c->add_option("--ctx", a->ctx, "Training context length written to the file");
  auto* size = c->add_option("--size", a->size, "Pick the layer count for about this file size (512M, 4G, 11.1G)");
  layers->excludes(size);
  c->add_option("--routing", a->routing,
                "How MoE routers choose experts: zipf (default; each layer has a few experts that far more "
                "tokens choose than the rest, as in real MoEs) or uniform (every expert about equally often)");
  c->add_option("--zipf", a->zipf,
                "Zipf routing's exponent S, 0 to 8 (default 0.5): in each layer the router row of the expert ranked r "
                "(a per-layer random order) is scaled by (r+1)^-S, S varying +-25% between layers; higher S, fewer "
                "popular experts. 64 experts top-4 at 0.5: the top expert is chosen by about 1/3 of independent tokens")
      ->check(between(0, 8));
  c->add_option("--seed", a->seed, "Random seed (default 1)");
  add_threads_flag(c, a->threads);
  c->add_flag("--buffered", a->buffered, "Write through the page cache instead of O_DIRECT");
  c->callback([a, &exit_code] { exit_code = run(*a); });
}

}  // namespace strata::tools
