// The matmul driver: splits weight rows across the TBB arena and hands row ranges to the
// type's vec_dot_rows kernel (or loops over vec_dot where a type has none).
//
// A 1-token product is memory-bound: each thread should stream one contiguous half of the
// matrix, so the rows are split statically, once per thread. With several tokens the kernel
// reuses each weight row for up to 4 tokens per pass; for more, the rows go in L2-sized
// blocks so that the later passes over a block read it from cache.
#include "compute/matmul.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include <algorithm>
#include <cassert>

namespace strata::compute {

namespace {

constexpr int64_t kSerialWork = int64_t{1} << 18;  // multiply-adds below which threads cost more than they save
constexpr size_t kRowBlockBytes = 256 << 10;       // weight bytes per row block when tokens need several passes
constexpr int64_t kTokensPerPass = 4;              // what the vec_dot_rows kernels process together

}  // namespace

void QuantizedActivations::quantize(DType vec_dot_type, const float* x, int64_t ntok, int64_t cols) {
  type_ = vec_dot_type;
  ntok_ = ntok;
  cols_ = cols;
  row_bytes_ = row_bytes(vec_dot_type, cols);
  buf_.resize(row_bytes_ * static_cast<size_t>(ntok));
  auto fn = kernels()[vec_dot_type].quantize;
  assert(fn);
  auto body = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) fn(x + t * cols, buf_.data() + t * row_bytes_, cols);
  };
  if (ntok * cols < kSerialWork) {
    body(0, ntok);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, ntok), [&](const tbb::blocked_range<int64_t>& r) {
    body(r.begin(), r.end());
  });
}

void matmul(const MatrixView& w, const QuantizedActivations& x, float* y, int64_t y_stride) {
  assert(x.type() == type_info(w.type).vec_dot_type);
  assert(x.cols() == w.cols);
  const TypeKernels& k = kernels()[w.type];
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t ntok = x.ntok();
  if (w.rows == 0 || ntok == 0) return;
  // Types that store rows in groups (Q4_0_R8) are split only at group boundaries.
  const int64_t group = type_info(w.type).row_group;
  assert(w.rows % group == 0);
  auto body = [&](int64_t r0, int64_t r1) {
    if (k.vec_dot_rows) {
      int64_t block =
          ntok > kTokensPerPass ? std::max<int64_t>(1, static_cast<int64_t>(kRowBlockBytes / w.row_stride)) : r1 - r0;
      block = std::max(group, block / group * group);
      for (int64_t rb = r0; rb < r1; rb += block)
        k.vec_dot_rows(w.cols, base + static_cast<size_t>(rb) * w.row_stride, w.row_stride, std::min(block, r1 - rb),
                       x.row(0), x.row_stride(), ntok, y + rb, y_stride);
      return;
    }
    assert(k.vec_dot);
    for (int64_t r = r0; r < r1; ++r) {
      const void* wr = base + static_cast<size_t>(r) * w.row_stride;
      for (int64_t t = 0; t < ntok; ++t) y[t * y_stride + r] = k.vec_dot(w.cols, wr, x.row(t));
    }
  };
  if (w.rows * w.cols * ntok < kSerialWork || w.rows < 2) {
    body(0, w.rows);
    return;
  }
  // Grain: at least a quarter of kSerialWork per chunk; the range counts row groups.
  const int64_t grain = std::max<int64_t>(1, (kSerialWork / 4) / (w.cols * ntok * group));
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, w.rows / group, grain),
      [&](const tbb::blocked_range<int64_t>& r) { body(r.begin() * group, r.end() * group); },
      tbb::static_partitioner());
}

void matmul(const MatrixView& w, const float* x, int64_t ntok, float* y, int64_t y_stride) {
  QuantizedActivations q;
  q.quantize(type_info(w.type).vec_dot_type, x, ntok, w.cols);
  matmul(w, q, y, y_stride);
}

}  // namespace strata::compute
