#include "models/ops.h"

#include <algorithm>
#include <cmath>

namespace strata::models {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t pos, const HParams& hp,
          const float* freq_factors) {
  const int64_t nd = hp.rope_dim;
  const float theta_scale = std::pow(hp.rope_base, -2.0f / static_cast<float>(nd));
  // Angles are built by repeated multiplication, as llama.cpp does, so they round the same way.
  float cosv[512], sinv[512];
  float theta = static_cast<float>(pos) * hp.rope_freq_scale;
  for (int64_t i = 0; i < nd / 2; ++i) {
    const float t = freq_factors ? theta / freq_factors[i] : theta;
    cosv[i] = std::cos(t);
    sinv[i] = std::sin(t);
    theta *= theta_scale;
  }
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    if (hp.rope_layout == RopeLayout::Adjacent) {
      for (int64_t i = 0; i < nd / 2; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * cosv[i] - b * sinv[i];
        v[2 * i + 1] = a * sinv[i] + b * cosv[i];
      }
    } else {
      const int64_t half = nd / 2;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cosv[i] - b * sinv[i];
        v[i + half] = a * sinv[i] + b * cosv[i];
      }
    }
  }
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - mx);
    x[i] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace strata::models
