#include "models/weights.h"

#include <fmt/ranges.h>

#include "models/gguf/gguf.h"
#include "storage/error.h"

namespace strata::models {

const gguf::TensorInfo& WeightBinder::tensor(const std::string& name, bool optional) {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (!t) {
    if (optional) {
      static const gguf::TensorInfo none{};
      return none;
    }
    fail("{}: tensor '{}' is missing (required by architecture '{}')", file_.paths().front(), name,
         file_.architecture());
  }
  return *t;
}

void WeightBinder::check_shape(const gguf::TensorInfo& t, std::vector<int64_t> want) {
  if (t.shape != want)
    fail("{}: tensor '{}' has shape [{}], expected [{}]", file_.paths().front(), t.name,
         fmt::join(t.shape, ", "), fmt::join(want, ", "));
}

Matrix WeightBinder::matrix(const std::string& name, int64_t cols, int64_t rows,
                            runtime::UnitKind kind, int layer, bool optional) {
  const gguf::TensorInfo& t = tensor(name, optional);
  Matrix m;
  if (t.name.empty()) return m;
  check_shape(t, {cols, rows});
  m.type = t.type;
  m.rows = rows;
  m.cols = cols;
  m.row_stride = compute::row_bytes(t.type, cols);
  m.present = true;
  const uint64_t max_bytes = provider_.max_unit_bytes();
  int64_t per_block = rows;
  if (kind != runtime::UnitKind::Pinned && t.nbytes > max_bytes)
    per_block = std::max<int64_t>(1, static_cast<int64_t>(max_bytes / m.row_stride));
  for (int64_t r0 = 0; r0 < rows; r0 += per_block) {
    const int64_t n = std::min(per_block, rows - r0);
    runtime::UnitDesc d;
    d.name = per_block == rows ? name : fmt::format("{}[rows {}..{}]", name, r0, r0 + n);
    d.ranges.push_back({t.file_index, t.offset + static_cast<uint64_t>(r0) * m.row_stride,
                        static_cast<uint64_t>(n) * m.row_stride});
    d.kind = kind;
    d.layer = layer;
    m.blocks.push_back({provider_.add_unit(std::move(d)), r0, n});
  }
  m.unit = m.blocks.front().unit;
  return m;
}

VectorRef WeightBinder::vector(const std::string& name, int64_t n, int layer, bool optional) {
  const gguf::TensorInfo& t = tensor(name, optional);
  VectorRef v;
  if (t.name.empty()) return v;
  check_shape(t, {n});
  runtime::UnitDesc d;
  d.name = name;
  d.ranges.push_back({t.file_index, t.offset, t.nbytes});
  d.kind = runtime::UnitKind::Pinned;
  d.layer = layer;
  v.unit = provider_.add_unit(std::move(d));
  v.type = t.type;
  v.n = n;
  v.present = true;
  return v;
}

ExpertSet WeightBinder::experts(const std::string& prefix, int64_t n_embd, int64_t n_ff,
                                int64_t n_expert, int layer) {
  const gguf::TensorInfo& g = tensor(prefix + ".ffn_gate_exps.weight", false);
  const gguf::TensorInfo& u = tensor(prefix + ".ffn_up_exps.weight", false);
  const gguf::TensorInfo& dn = tensor(prefix + ".ffn_down_exps.weight", false);
  check_shape(g, {n_embd, n_ff, n_expert});
  check_shape(u, {n_embd, n_ff, n_expert});
  check_shape(dn, {n_ff, n_embd, n_expert});
  ExpertSet s;
  auto slice = [&](const gguf::TensorInfo& t, int64_t cols, int64_t rows) {
    Matrix m;
    m.type = t.type;
    m.rows = rows;
    m.cols = cols;
    m.row_stride = compute::row_bytes(t.type, cols);
    m.present = true;
    return m;
  };
  s.gate = slice(g, n_embd, n_ff);
  s.up = slice(u, n_embd, n_ff);
  s.down = slice(dn, n_ff, n_embd);
  for (int64_t e = 0; e < n_expert; ++e) {
    runtime::UnitDesc d;
    d.name = fmt::format("{}.ffn_exps[{}]", prefix, e);
    for (const gguf::TensorInfo* t : {&g, &u, &dn}) {
      const uint64_t per = t->nbytes / n_expert;
      d.ranges.push_back({t->file_index, t->offset + per * e, per});
    }
    d.kind = runtime::UnitKind::Expert;
    d.layer = layer;
    d.expert = static_cast<int>(e);
    s.units.push_back(provider_.add_unit(std::move(d)));
  }
  return s;
}

std::vector<float> read_vector(runtime::WeightProvider& p, const VectorRef& v) {
  if (!v.present) return {};
  std::vector<float> out(static_cast<size_t>(v.n));
  runtime::UnitLease lease(p, v.unit);
  compute::dequantize_row(v.type, lease.range(0), out.data(), v.n);
  return out;
}

}  // namespace strata::models
