#include "tools/model_flags.h"

#include <algorithm>
#include <cstdio>

#include "tools/validators.h"

namespace strata::tools {

void add_threads_flag(CLI::App* cmd, int& threads) {
  cmd->add_option("-t,--threads", threads, "Threads (default: all cores)")->check(integer_at_least(1));
}

void add_context_flag(CLI::App* cmd, int64_t& ctx, const std::string& help) {
  cmd->add_option("-c,--ctx-size,--ctx", ctx, help)->check(integer_at_least(0, int64_t(1) << 40));
}

void add_gpu_layers_flag(CLI::App* cmd, int& gpu_layers) {
  cmd->add_option("--n-gpu-layers,--gpu-layers", gpu_layers,
                  "Layers to put on the GPU (-ngl; accepted, but every layer runs on the CPU until the VRAM tier exists)")
      ->check(integer_at_least(-1));
}

void note_gpu_layers(int gpu_layers) {
  if (gpu_layers != 0)
    std::fprintf(stderr, "strata: -ngl %d: there is no GPU tier yet; all layers run on the CPU\n", gpu_layers);
}

void add_sampling_flags(CLI::App* c, models::SamplingParams& sp) {
  c->add_option("--temp,--temperature", sp.temperature, "Temperature (0: greedy)")->check(at_least(0));
  c->add_option("-s,--seed", sp.seed, "Random seed")->check(integer_at_least(0, INT64_MAX));
  c->add_option("--top-k", sp.top_k, "Top-k (0: off)")->check(integer_at_least(0));
  c->add_option("--top-p", sp.top_p, "Top-p (1: off)")->check(between(0, 1));
  c->add_option("--min-p", sp.min_p, "Min-p (0: off)")->check(between(0, 1));
  c->add_option("--repeat-penalty", sp.repeat_penalty, "Repetition penalty (1: off)")->check(at_least(0));
  c->add_option("--repeat-last-n", sp.repeat_last_n, "Window of the repetition penalty (-1: all, 0: off)")
      ->check(integer_at_least(-1));
  c->add_option("--frequency-penalty", sp.frequency_penalty, "Frequency penalty");
  c->add_option("--presence-penalty", sp.presence_penalty, "Presence penalty");
}

int64_t context_size(int64_t asked, const models::HParams& hp, const char* flag, int64_t fallback) {
  const int64_t trained = hp.n_ctx_train;
  int64_t ctx = asked;
  if (ctx == 0) ctx = trained > 0 ? trained : 2048;
  if (asked == 0 && fallback > 0) ctx = std::min(ctx, fallback);
  if (trained > 0 && ctx > trained)
    std::fprintf(stderr,
                 "strata: warning: %s %lld is beyond the %lld tokens this model was trained on; "
                 "output past %lld tokens is likely garbage\n",
                 flag, static_cast<long long>(ctx), static_cast<long long>(trained), static_cast<long long>(trained));
  return ctx;
}

}  // namespace strata::tools
