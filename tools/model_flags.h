// Flags that several model-running commands share, spelled as llama.cpp spells them so its
// users' habits work: -t/--threads, -c/--ctx-size, -ngl/--n-gpu-layers, and the sampling set
// (--temp, -s/--seed, --top-k, ...). Each validates its range with a readable message.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>

#include "models/hparams.h"
#include "models/sampling.h"

namespace strata::tools {

void add_threads_flag(CLI::App* cmd, int& threads);
void add_context_flag(CLI::App* cmd, int64_t& ctx, const std::string& help);
// Accepted for llama.cpp habits (-ngl 99); there is no VRAM tier yet, see note_gpu_layers.
void add_gpu_layers_flag(CLI::App* cmd, int& gpu_layers);
void add_sampling_flags(CLI::App* cmd, models::SamplingParams& sp);

// One stderr line when -ngl asked for GPU layers: they stay on the CPU until the VRAM tier exists.
void note_gpu_layers(int gpu_layers);

// The context to run with: `asked` (0: the model's trained length, or `fallback` when asked is
// 0 and fallback > 0 and smaller), with one warning line when it goes beyond the trained length
// (output past it is unreliable).
int64_t context_size(int64_t asked, const models::HParams& hp, const char* flag, int64_t fallback = 0);

}  // namespace strata::tools
