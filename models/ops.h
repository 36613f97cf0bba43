// Element-wise and attention operations of the transformer block, in f32. Reductions that
// llama.cpp accumulates in double (RMS norm, softmax sums) are accumulated in double here too, so
// F32 models match its logits to ~1e-5.
#pragma once
#include <cstdint>

#include "models/hparams.h"

namespace strata::models {

// y = x / sqrt(mean(x^2) + eps) * w   (w may be nullptr: no scale). x and y may alias.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// Rotates the first rope_dim dimensions of each of n_heads heads (stride head_dim) in place.
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t pos, const HParams& hp,
          const float* freq_factors);

// In-place numerically stable softmax over n values.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, float* out, int64_t n);

}  // namespace strata::models
