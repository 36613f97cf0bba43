// Matrix products of a quantized weight matrix with a small batch of activation rows.
#pragma once
#include <cstdint>
#include <vector>

#include "compute/quant.h"

namespace strata::compute {

// A row-major weight matrix (or a block of its rows): `rows` rows of `cols` elements each,
// row r at data + r * row_stride bytes. ggml's ne[0] is `cols`.
struct MatrixView {
  DType type = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_stride = 0;
};

// Activations quantized once to a weight type's vec_dot_type, reused by every matrix that
// reads the same input (gate and up, every expert of a token group).
class QuantizedActivations {
 public:
  void quantize(DType vec_dot_type, const float* x, int64_t ntok, int64_t cols);
  DType type() const { return type_; }
  int64_t ntok() const { return ntok_; }
  int64_t cols() const { return cols_; }
  const void* row(int64_t t) const { return buf_.data() + t * row_bytes_; }
  size_t row_stride() const { return row_bytes_; }  // bytes from row(t) to row(t + 1)

 private:
  DType type_ = DType::F32;
  int64_t ntok_ = 0, cols_ = 0;
  size_t row_bytes_ = 0;
  std::vector<uint8_t> buf_;
};

// y[t * y_stride + r] = dot(W row r, x row t) for t < x.ntok(), r < W.rows.
// x must be in type_info(W.type).vec_dot_type. Splits rows across the TBB arena when large.
void matmul(const MatrixView& w, const QuantizedActivations& x, float* y, int64_t y_stride);

// Same, quantizing float activations x[ntok][w.cols] first.
void matmul(const MatrixView& w, const float* x, int64_t ntok, float* y, int64_t y_stride);

}  // namespace strata::compute
