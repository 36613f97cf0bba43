#include "compute/matmul.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cassert>

namespace strata::compute {

void QuantizedActivations::quantize(DType vec_dot_type, const float* x, int64_t ntok, int64_t cols) {
  type_ = vec_dot_type;
  ntok_ = ntok;
  cols_ = cols;
  row_bytes_ = row_bytes(vec_dot_type, cols);
  buf_.resize(row_bytes_ * static_cast<size_t>(ntok));
  auto fn = kernels()[vec_dot_type].quantize;
  assert(fn);
  for (int64_t t = 0; t < ntok; ++t) fn(x + t * cols, buf_.data() + t * row_bytes_, cols);
}

void matmul(const MatrixView& w, const QuantizedActivations& x, float* y, int64_t y_stride) {
  assert(x.type() == type_info(w.type).vec_dot_type);
  assert(x.cols() == w.cols);
  const VecDotFn dot = kernels()[w.type].vec_dot;
  assert(dot);
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t ntok = x.ntok();
  auto body = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const void* wr = base + static_cast<size_t>(r) * w.row_stride;
      for (int64_t t = 0; t < ntok; ++t) y[t * y_stride + r] = dot(w.cols, wr, x.row(t));
    }
  };
  // Work per row ~ cols * ntok; below ~64K multiply-adds the threading overhead dominates.
  const int64_t work = w.rows * w.cols * ntok;
  if (work < (1 << 16) || w.rows < 16) {
    body(0, w.rows);
    return;
  }
  const int64_t grain = std::max<int64_t>(8, (1 << 15) / std::max<int64_t>(1, w.cols * ntok));
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, w.rows, grain),
                    [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
}

void matmul(const MatrixView& w, const float* x, int64_t ntok, float* y, int64_t y_stride) {
  QuantizedActivations q;
  q.quantize(type_info(w.type).vec_dot_type, x, ntok, w.cols);
  matmul(w, q, y, y_stride);
}

}  // namespace strata::compute
