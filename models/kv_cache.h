// Per-sequence attention cache: keys and values of every past position, per layer, in f32
// (llama.cpp's goldens were made with an f32 cache too). Each sequence of a batch owns one.
#pragma once
#include <cstdint>
#include <vector>

#include "storage/error.h"

namespace strata::models {

class KVCache {
 public:
  KVCache(int64_t n_layer, int64_t k_dim, int64_t v_dim, int64_t max_ctx)
      : k_dim_(k_dim), v_dim_(v_dim), max_ctx_(max_ctx), k_(n_layer), v_(n_layer) {}

  int64_t n_past() const { return n_past_; }
  int64_t max_ctx() const { return max_ctx_; }
  // Makes room for positions [n_past, n_past + n); throws when the context would overflow.
  void reserve_more(int64_t n) {
    const int64_t need = n_past_ + n;
    if (need > max_ctx_) fail("context full: {} tokens requested, context size is {}", need, max_ctx_);
    if (need <= cap_) return;
    int64_t cap = std::max<int64_t>(need, std::min<int64_t>(max_ctx_, std::max<int64_t>(64, cap_ * 2)));
    for (auto& k : k_) k.resize(static_cast<size_t>(cap * k_dim_));
    for (auto& v : v_) v.resize(static_cast<size_t>(cap * v_dim_));
    cap_ = cap;
  }
  float* k(int64_t layer, int64_t pos) { return k_[layer].data() + pos * k_dim_; }
  float* v(int64_t layer, int64_t pos) { return v_[layer].data() + pos * v_dim_; }
  const float* k(int64_t layer, int64_t pos) const { return k_[layer].data() + pos * k_dim_; }
  const float* v(int64_t layer, int64_t pos) const { return v_[layer].data() + pos * v_dim_; }
  void advance(int64_t n) { n_past_ += n; }
  void clear() { n_past_ = 0; }
  uint64_t bytes() const { return static_cast<uint64_t>(cap_) * (k_dim_ + v_dim_) * 4 * k_.size(); }

 private:
  int64_t k_dim_, v_dim_, max_ctx_;
  int64_t n_past_ = 0, cap_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace strata::models
