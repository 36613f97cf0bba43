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
  const uint64_t gper = g.nbytes / n_expert, uper = u.nbytes / n_expert, dper = dn.nbytes / n_expert;
  const uint64_t max_bytes = provider_.max_unit_bytes();
  s.split = gper + uper + dper > max_bytes;
  const int64_t gu_rows = std::max<int64_t>(1, static_cast<int64_t>(max_bytes / (s.gate.row_stride + s.up.row_stride)));
  const int64_t d_rows = std::max<int64_t>(1, static_cast<int64_t>(max_bytes / s.down.row_stride));
  auto add = [&](const std::string& name, std::vector<runtime::FileRange> ranges, int64_t e) {
    runtime::UnitDesc d;
    d.name = name;
    d.ranges = std::move(ranges);
    d.kind = runtime::UnitKind::Expert;
    d.layer = layer;
    d.expert = static_cast<int>(e);
    return provider_.add_unit(std::move(d));
  };
  s.parts.resize(static_cast<size_t>(n_expert));
  for (int64_t e = 0; e < n_expert; ++e) {
    const std::string name = fmt::format("{}.ffn_exps[{}]", prefix, e);
    auto& parts = s.parts[static_cast<size_t>(e)];
    if (!s.split) {
      const runtime::UnitId id = add(name, {{g.file_index, g.offset + gper * e, gper},
                                             {u.file_index, u.offset + uper * e, uper},
                                             {dn.file_index, dn.offset + dper * e, dper}}, e);
      parts.push_back({id, ExpertPart::Whole, 0, n_ff});
    } else {
      for (int64_t r0 = 0; r0 < n_ff; r0 += gu_rows) {
        const int64_t n = std::min(gu_rows, n_ff - r0);
        const runtime::UnitId id = add(
            fmt::format("{}[gate+up rows {}..{}]", name, r0, r0 + n),
            {{g.file_index, g.offset + gper * e + r0 * s.gate.row_stride, n * s.gate.row_stride},
             {u.file_index, u.offset + uper * e + r0 * s.up.row_stride, n * s.up.row_stride}}, e);
        parts.push_back({id, ExpertPart::GateUp, r0, n});
      }
      for (int64_t r0 = 0; r0 < n_embd; r0 += d_rows) {
        const int64_t n = std::min(d_rows, n_embd - r0);
        const runtime::UnitId id = add(fmt::format("{}[down rows {}..{}]", name, r0, r0 + n),
                                       {{dn.file_index, dn.offset + dper * e + r0 * s.down.row_stride, n * s.down.row_stride}}, e);
        parts.push_back({id, ExpertPart::Down, r0, n});
      }
    }
    s.units.push_back(parts.front().unit);
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
