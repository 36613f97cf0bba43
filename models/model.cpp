#include "models/model.h"

#include <spdlog/spdlog.h>
#include <tbb/parallel_for.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <cmath>
#include <numeric>

#include "compute/matmul.h"
#include "compute/repack.h"
#include "models/ops.h"
#include "storage/error.h"

namespace strata::models {

using compute::QuantizedActivations;
using runtime::UnitLease;

const Architecture* find_architecture(const std::string& name) {
  for (const Architecture* a : {&kLlamaArchitecture, &kQwen3MoeArchitecture})
    if (name == a->name) return a;
  return nullptr;
}

const float* ForwardOutput::row(size_t item, size_t r) const {
  return logits.data() + (row_offset.at(item) + r) * static_cast<size_t>(n_vocab);
}

// Per-call working memory, kept between calls so decoding allocates nothing.
struct Model::Scratch {
  std::vector<float> x, xn, q, k, v, att, tmp, gate, up, router;
  std::vector<int64_t> pos;       // position of each batch token in its sequence
  std::vector<size_t> seq_of;     // which batch item each token belongs to
  std::vector<size_t> tok_begin;  // first batch token of each item
  QuantizedActivations xq;
  // MoE routing: for token t, slot k: expert id and weight.
  std::vector<int32_t> sel;
  std::vector<float> sel_w;
  std::vector<float> expert_out;  // [T * n_used, n_embd]
  std::vector<int32_t> pred;      // predicted experts of layer pred_layer, [T * n_used]
  int64_t pred_layer = -1;
  int64_t T = 0;
};

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path, LoadOptions opts) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = gguf::GGUFFile::open(path);
  const std::string arch = m->file_.architecture();
  const Architecture* a = find_architecture(arch);
  if (!a) fail("{}: architecture '{}' is not supported (supported: llama, qwen3moe)", path, arch);
  m->hp_ = a->read_hparams(m->file_);
  const gguf::TensorInfo& emb = m->file_.require_tensor("token_embd.weight", "the token embedding");
  if (emb.shape.size() != 2) fail("{}: tensor 'token_embd.weight' must be 2-D", path);
  m->hp_.n_vocab = emb.shape[1];
  m->tokenizer_ = tok::Tokenizer::from_gguf(m->file_);
  if (m->tokenizer_->n_vocab() > m->hp_.n_vocab)
    fail("{}: tokenizer has {} tokens but token_embd.weight has only {} rows", path,
         m->tokenizer_->n_vocab(), m->hp_.n_vocab);

  m->provider_ = opts.provider ? opts.provider(m->file_.paths()) : runtime::make_resident_provider(m->file_.paths(), opts.progress);
  m->streaming_ = m->provider_->max_unit_bytes() != UINT64_MAX;
  WeightBinder binder(m->file_, *m->provider_);
  a->bind(binder, m->hp_, m->w_);
  m->provider_->finalize();
  // The dense units each layer reads, for prefetching a layer ahead.
  m->dense_units_.resize(static_cast<size_t>(m->hp_.n_layer + 1));
  auto add = [](std::vector<runtime::UnitId>& v, const Matrix& mat) {
    if (mat.present)
      for (const RowBlock& b : mat.blocks) v.push_back(b.unit);
  };
  for (int64_t il = 0; il < m->hp_.n_layer; ++il) {
    const LayerWeights& L = m->w_.layers[il];
    for (const Matrix* mat : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.router})
      add(m->dense_units_[il], *mat);
  }
  add(m->dense_units_.back(), m->w_.output);

  // Small always-used vectors are copied out once.
  auto& p = *m->provider_;
  m->w_.output_norm = read_vector(p, m->w_.output_norm_ref);
  m->w_.rope_freqs = read_vector(p, m->w_.rope_freqs_ref);
  for (auto& L : m->w_.layers) {
    L.attn_norm = read_vector(p, L.attn_norm_ref);
    L.ffn_norm = read_vector(p, L.ffn_norm_ref);
    L.q_norm = read_vector(p, L.q_norm_ref);
    L.k_norm = read_vector(p, L.k_norm_ref);
  }
  m->repack_weights();
  m->scratch_ = std::make_unique<Scratch>();
  spdlog::debug("loaded {}: arch {}, {} layers, {} experts", path, arch, m->hp_.n_layer, m->hp_.n_expert);
  return m;
}

namespace {

// True when any of the n floats is NaN or infinite (exponent bits all ones). Branch-free so it
// vectorizes: it runs on the hidden state after every layer.
bool any_non_finite(const float* x, size_t n) {
  const auto* bits = reinterpret_cast<const uint32_t*>(x);
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= static_cast<uint32_t>((bits[i] & 0x7f800000u) == 0x7f800000u);
  return bad != 0;
}

// Quantizes `x` into `q` for matrix m's activation format unless it already holds it.
void prepare(QuantizedActivations& q, const Matrix& m, const float* x, int64_t T) {
  q.quantize(compute::type_info(m.type).vec_dot_type, x, T, m.cols);
}

// order[0..k) = the k highest of the n scores, highest first, ties to the lower index (the
// router's expert choice, and its prediction one layer ahead).
void top_k(const float* p, int64_t n, int64_t k, std::vector<int32_t>& order) {
  order.resize(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
}

// y[t][r] for every row block of m, one block in memory at a time (all requested up front so
// the next block reads while this one multiplies).
void run_matmul(runtime::WeightProvider& p, const Matrix& m, const QuantizedActivations& xq, float* y) {
  if (m.blocks.size() > 1) {
    std::vector<runtime::UnitId> ids;
    for (const RowBlock& b : m.blocks) ids.push_back(b.unit);
    p.prefetch(ids.data(), ids.size(), runtime::Need::Now);
  }
  for (const RowBlock& b : m.blocks) {
    UnitLease lease(p, b.unit);
    const compute::MatrixView v{m.type, lease.range(0), b.rows, m.cols, m.row_stride};
    compute::matmul(v, xq, y + b.row0, m.rows);
  }
}

}  // namespace

void Model::forward(std::span<BatchItem> batch, ForwardOutput& out) {
  if (in_forward_.exchange(true))
    fail("Model::forward was entered by two threads at once; its one caller is the engine's scheduler");
  struct Leave {
    std::atomic<bool>& f;
    ~Leave() { f.store(false); }
  } leave{in_forward_};
  Scratch& s = *scratch_;
  const HParams& hp = hp_;
  const int64_t E = hp.n_embd;

  // Lay out the batch: tokens of all sequences, each with its position.
  int64_t T = 0;
  s.tok_begin.assign(batch.size(), 0);
  for (size_t i = 0; i < batch.size(); ++i) {
    s.tok_begin[i] = static_cast<size_t>(T);
    T += static_cast<int64_t>(batch[i].tokens.size());
    batch[i].kv->reserve_more(static_cast<int64_t>(batch[i].tokens.size()));
  }
  s.T = T;
  s.pos.resize(T);
  s.seq_of.resize(T);
  s.x.resize(static_cast<size_t>(T * E));
  s.xn.resize(static_cast<size_t>(T * E));
  provider_->at_layer(-1);
  if (streaming_) request_dense(0, runtime::Need::Ahead);
  embed(batch, s);
  // A NaN or infinity never goes away once in the residual stream and turns every logit into
  // NaN; naming the first block where it appeared points at the corrupt weights.
  const size_t n_hidden = static_cast<size_t>(T * E);
  auto check_finite = [&](const char* where, int64_t il) {
    if (!any_non_finite(s.x.data(), n_hidden)) return;
    if (il < 0) fail("{}: the token embeddings (token_embd.weight) hold NaN or infinite values", file_.paths().front());
    fail("{}: the hidden state became NaN or infinite in layer {} ({}: blk.{}.*), the first layer where it appears; "
         "that layer's weights are likely corrupt", file_.paths().front(), il, where, il);
  };
  check_finite("embedding", -1);

  for (int64_t il = 0; il < hp.n_layer; ++il) {
    provider_->at_layer(static_cast<int>(il));
    if (streaming_) {
      request_dense(il, runtime::Need::Now);
      request_dense(il + 1, runtime::Need::Ahead);
    }
    attention_layer(il, batch, s);
    check_finite("attention", il);
    if (w_.layers[il].moe)
      moe_layer(il, s);
    else
      ffn_layer(il, s);
    check_finite(w_.layers[il].moe ? "experts" : "feed-forward", il);
  }
  for (auto& item : batch) item.kv->advance(static_cast<int64_t>(item.tokens.size()));

  // Output rows: the last token of each item, or all of them.
  std::vector<int64_t> rows;
  out.row_offset.assign(batch.size(), 0);
  for (size_t i = 0; i < batch.size(); ++i) {
    out.row_offset[i] = rows.size();
    const int64_t n = static_cast<int64_t>(batch[i].tokens.size());
    if (n == 0) continue;
    const int64_t b = static_cast<int64_t>(s.tok_begin[i]);
    if (batch[i].all_logits)
      for (int64_t j = 0; j < n; ++j) rows.push_back(b + j);
    else
      rows.push_back(b + n - 1);
  }
  const int64_t R = static_cast<int64_t>(rows.size());
  provider_->at_layer(static_cast<int>(hp.n_layer));
  for (int64_t r = 0; r < R; ++r)
    rms_norm(s.x.data() + rows[r] * E, w_.output_norm.data(), s.xn.data() + r * E, E, hp.norm_eps);
  out.n_vocab = hp.n_vocab;
  out.logits.resize(static_cast<size_t>(R * hp.n_vocab));
  prepare(s.xq, w_.output, s.xn.data(), R);
  run_matmul(*provider_, w_.output, s.xq, out.logits.data());
  if (any_non_finite(out.logits.data(), out.logits.size()))
    fail("{}: the logits are NaN or infinite although every layer's output was finite: the output norm or "
         "output.weight holds invalid values", file_.paths().front());
}

// Q4_0 matrices whose row blocks are whole groups of eight rows are repacked in memory for the
// AVX-512 VNNI kernel (compute/repack.h), by the provider after every load of their units. The
// embedding stays as it is: it is read a row at a time, not multiplied.
void Model::repack_weights() {
  if (!compute::q4_0_r8_available()) return;
  runtime::WeightProvider& p = *provider_;
  struct Part {
    size_t offset;
    int64_t rows, cols;
  };
  std::vector<std::vector<Part>> jobs(p.unit_count());
  auto whole_groups = [](const Matrix& m) {
    if (!m.present || m.type != compute::DType::Q4_0) return false;
    for (const RowBlock& b : m.blocks)
      if (!compute::q4_0_r8_fits(b.rows, m.cols)) return false;
    return true;
  };
  auto add_matrix = [&](Matrix& m) {
    if (!whole_groups(m)) return;
    for (const RowBlock& b : m.blocks) jobs[b.unit].push_back({p.range_offset(b.unit, 0), b.rows, m.cols});
    m.type = compute::DType::Q4_0_R8;
  };
  for (LayerWeights& L : w_.layers) {
    for (Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.router}) add_matrix(*m);
    // A streamed expert is usually used for a token or two per load: multiplying it where it
    // landed beats repacking it first when the plain kernel is the wide one.
    if (!L.moe || (streaming_ && compute::q4_0_plain_is_fast())) continue;
    ExpertSet& X = L.experts;
    // Which range of which part holds which matrix, and how many of its rows.
    // A matrix of the experts qualifies when every part holding rows of it has whole groups.
    auto eligible = [&](const Matrix& m, ExpertPart::Kind kind) {
      if (m.type != compute::DType::Q4_0) return false;
      for (const auto& parts : X.parts)
        for (const ExpertPart& part : parts) {
          const bool holds = part.kind == ExpertPart::Whole || part.kind == kind;
          if (holds && !compute::q4_0_r8_fits(part.kind == ExpertPart::Whole ? m.rows : part.rows, m.cols)) return false;
        }
      return true;
    };
    const bool gate = eligible(X.gate, ExpertPart::GateUp), up = eligible(X.up, ExpertPart::GateUp),
               down = eligible(X.down, ExpertPart::Down);
    for (const auto& parts : X.parts)
      for (const ExpertPart& part : parts) {
        auto& j = jobs[part.unit];
        if (part.kind == ExpertPart::Whole) {
          if (gate) j.push_back({p.range_offset(part.unit, 0), X.gate.rows, X.gate.cols});
          if (up) j.push_back({p.range_offset(part.unit, 1), X.up.rows, X.up.cols});
          if (down) j.push_back({p.range_offset(part.unit, 2), X.down.rows, X.down.cols});
        } else if (part.kind == ExpertPart::GateUp) {
          if (gate) j.push_back({p.range_offset(part.unit, 0), part.rows, X.gate.cols});
          if (up) j.push_back({p.range_offset(part.unit, 1), part.rows, X.up.cols});
        } else if (down) {
          j.push_back({p.range_offset(part.unit, 0), part.rows, X.down.cols});
        }
      }
    if (gate) X.gate.type = compute::DType::Q4_0_R8;
    if (up) X.up.type = compute::DType::Q4_0_R8;
    if (down) X.down.type = compute::DType::Q4_0_R8;
  }
  if (w_.output.unit != w_.token_embd.unit) add_matrix(w_.output);
  for (runtime::UnitId id = 0; id < jobs.size(); ++id) {
    if (jobs[id].empty()) continue;
    p.set_transform(id, [parts = std::move(jobs[id])](std::byte* data) {
      for (const Part& part : parts) compute::repack_q4_0_r8(data + part.offset, part.rows, part.cols);
    });
  }
}

void Model::request_dense(int64_t il, runtime::Need need) {
  if (il < 0 || il > hp_.n_layer) return;
  const auto& ids = dense_units_[static_cast<size_t>(il)];
  provider_->prefetch(ids.data(), ids.size(), need);
}

// Token embeddings: each token's row is dequantized from the row block that holds it.
void Model::embed(std::span<BatchItem> batch, Scratch& s) {
  const HParams& hp = hp_;
  const int64_t E = hp.n_embd;
  const Matrix& emb = w_.token_embd;
  const int64_t per_block = emb.blocks.front().rows;
  for (size_t i = 0; i < batch.size(); ++i) {
    for (size_t j = 0; j < batch[i].tokens.size(); ++j) {
      const int64_t t = static_cast<int64_t>(s.tok_begin[i] + j);
      const int32_t id = batch[i].tokens[j];
      if (id < 0 || id >= hp.n_vocab) fail("token id {} is out of range (vocabulary has {} tokens)", id, hp.n_vocab);
      s.pos[t] = batch[i].kv->n_past() + static_cast<int64_t>(j);
      s.seq_of[t] = i;
      const RowBlock& b = emb.blocks[static_cast<size_t>(id / per_block)];
      UnitLease lease(*provider_, b.unit);
      const auto* base = reinterpret_cast<const uint8_t*>(lease.range(0));
      compute::dequantize_row(emb.type, base + static_cast<size_t>(id - b.row0) * emb.row_stride, s.x.data() + t * E, E);
    }
  }
}

void Model::attention_layer(int64_t il, std::span<BatchItem> batch, Scratch& s) {
  const HParams& hp = hp_;
  const LayerWeights& L = w_.layers[il];
  const int64_t E = hp.n_embd, T = s.T;
  const int64_t qd = hp.q_dim(), kd = hp.k_dim(), vd = hp.v_dim();
  const int64_t hdk = hp.head_dim_k, hdv = hp.head_dim_v;

  for (int64_t t = 0; t < T; ++t)
    rms_norm(s.x.data() + t * E, L.attn_norm.data(), s.xn.data() + t * E, E, hp.norm_eps);
  s.q.resize(T * qd);
  s.k.resize(T * kd);
  s.v.resize(T * vd);
  prepare(s.xq, L.wq, s.xn.data(), T);
  run_matmul(*provider_, L.wq, s.xq, s.q.data());
  if (compute::type_info(L.wk.type).vec_dot_type != s.xq.type()) prepare(s.xq, L.wk, s.xn.data(), T);
  run_matmul(*provider_, L.wk, s.xq, s.k.data());
  if (compute::type_info(L.wv.type).vec_dot_type != s.xq.type()) prepare(s.xq, L.wv, s.xn.data(), T);
  run_matmul(*provider_, L.wv, s.xq, s.v.data());

  const float* freq = w_.rope_freqs.empty() ? nullptr : w_.rope_freqs.data();
  for (int64_t t = 0; t < T; ++t) {
    float* qt = s.q.data() + t * qd;
    float* kt = s.k.data() + t * kd;
    if (hp.qk_norm) {
      for (int64_t h = 0; h < hp.n_head; ++h) rms_norm(qt + h * hdk, L.q_norm.data(), qt + h * hdk, hdk, hp.norm_eps);
      for (int64_t h = 0; h < hp.n_head_kv; ++h) rms_norm(kt + h * hdk, L.k_norm.data(), kt + h * hdk, hdk, hp.norm_eps);
    }
    rope(qt, hp.n_head, hdk, s.pos[t], hp, freq);
    rope(kt, hp.n_head_kv, hdk, s.pos[t], hp, freq);
    KVCache& kv = *batch[s.seq_of[t]].kv;
    std::copy_n(kt, kd, kv.k(il, s.pos[t]));
    std::copy_n(s.v.data() + t * vd, vd, kv.v(il, s.pos[t]));
  }

  // Attention: for each token and head, over its sequence's positions 0..pos (causal).
  s.att.resize(T * hp.n_head * hdv);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hdk));
  const int64_t group = hp.n_head / hp.n_head_kv;
  auto head_job = [&](int64_t job, std::vector<float>& scores) {
    const int64_t t = job / hp.n_head, h = job % hp.n_head;
    const KVCache& kv = *batch[s.seq_of[t]].kv;
    const int64_t n = s.pos[t] + 1;
    const int64_t hk = h / group;
    const float* qh = s.q.data() + t * qd + h * hdk;
    scores.resize(n);
    for (int64_t j = 0; j < n; ++j) {
      const float* kj = kv.k(il, j) + hk * hdk;
      float d = 0.0f;
      for (int64_t c = 0; c < hdk; ++c) d += qh[c] * kj[c];
      scores[j] = d * scale;
    }
    softmax(scores.data(), n);
    float* o = s.att.data() + (t * hp.n_head + h) * hdv;
    std::fill_n(o, hdv, 0.0f);
    for (int64_t j = 0; j < n; ++j) {
      const float* vj = kv.v(il, j) + hk * hdv;
      const float p = scores[j];
      for (int64_t c = 0; c < hdv; ++c) o[c] += p * vj[c];
    }
  };
  const int64_t jobs = T * hp.n_head;
  int64_t work = 0;
  for (int64_t t = 0; t < T; ++t) work += s.pos[t] + 1;
  if (work * hp.n_head * hdk < (1 << 16)) {
    std::vector<float>& scores = s.tmp;
    for (int64_t j = 0; j < jobs; ++j) head_job(j, scores);
  } else {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, jobs), [&](const tbb::blocked_range<int64_t>& r) {
      std::vector<float> scores;
      for (int64_t j = r.begin(); j < r.end(); ++j) head_job(j, scores);
    });
  }

  // Output projection and residual.
  s.tmp.resize(T * E);
  prepare(s.xq, L.wo, s.att.data(), T);
  run_matmul(*provider_, L.wo, s.xq, s.tmp.data());
  for (int64_t i = 0; i < T * E; ++i) s.x[i] += s.tmp[i];
}

void Model::ffn_layer(int64_t il, Scratch& s) {
  const HParams& hp = hp_;
  const LayerWeights& L = w_.layers[il];
  const int64_t E = hp.n_embd, T = s.T, F = hp.n_ff;
  for (int64_t t = 0; t < T; ++t)
    rms_norm(s.x.data() + t * E, L.ffn_norm.data(), s.xn.data() + t * E, E, hp.norm_eps);
  s.gate.resize(T * F);
  s.up.resize(T * F);
  prepare(s.xq, L.ffn_gate, s.xn.data(), T);
  run_matmul(*provider_, L.ffn_gate, s.xq, s.gate.data());
  if (compute::type_info(L.ffn_up.type).vec_dot_type != s.xq.type()) prepare(s.xq, L.ffn_up, s.xn.data(), T);
  run_matmul(*provider_, L.ffn_up, s.xq, s.up.data());
  swiglu(s.gate.data(), s.up.data(), s.gate.data(), T * F);
  s.tmp.resize(T * E);
  prepare(s.xq, L.ffn_down, s.gate.data(), T);
  run_matmul(*provider_, L.ffn_down, s.xq, s.tmp.data());
  for (int64_t i = 0; i < T * E; ++i) s.x[i] += s.tmp[i];
}

void Model::moe_layer(int64_t il, Scratch& s) {
  const HParams& hp = hp_;
  const LayerWeights& L = w_.layers[il];
  const int64_t E = hp.n_embd, T = s.T, NE = hp.n_expert, K = hp.n_expert_used;
  for (int64_t t = 0; t < T; ++t)
    rms_norm(s.x.data() + t * E, L.ffn_norm.data(), s.xn.data() + t * E, E, hp.norm_eps);

  // Router: softmax over all experts, keep the top K, optionally renormalise.
  s.router.resize(T * NE);
  prepare(s.xq, L.router, s.xn.data(), T);
  run_matmul(*provider_, L.router, s.xq, s.router.data());
  s.sel.resize(T * K);
  s.sel_w.resize(T * K);
  std::vector<int32_t> order;
  for (int64_t t = 0; t < T; ++t) {
    float* p = s.router.data() + t * NE;
    softmax(p, NE);
    top_k(p, NE, K, order);
    double sum = 0.0;
    for (int64_t k = 0; k < K; ++k) sum += p[order[k]];
    for (int64_t k = 0; k < K; ++k) {
      s.sel[t * K + k] = order[k];
      s.sel_w[t * K + k] = hp.expert_weights_norm ? static_cast<float>(p[order[k]] / sum) : p[order[k]];
    }
  }
  if (routing_observer_) routing_observer_(il, T, K, s.sel.data());

  // How well the previous layer predicted this routing.
  if (s.pred_layer == il) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K; ++k) {
        const int32_t e = s.pred[t * K + k];
        ++routing_.predicted;
        for (int64_t j = 0; j < K; ++j)
          if (s.sel[t * K + j] == e) {
            ++routing_.predicted_used;
            break;
          }
      }
    s.pred_layer = -1;
  }

  // Group (token, slot) pairs by expert; one job per selected expert over its tokens. Every
  // chosen expert's read is issued at once, then each job starts as soon as its own bytes land.
  std::vector<std::vector<int64_t>> slots(NE);  // entries: t * K + k
  for (int64_t i = 0; i < T * K; ++i) slots[s.sel[i]].push_back(i);
  const ExpertSet& X = L.experts;
  std::vector<runtime::UnitId> wanted, all_parts;
  std::vector<int64_t> wanted_e;
  for (int64_t e = 0; e < NE; ++e)
    if (!slots[e].empty()) {
      wanted.push_back(X.units[e]);
      wanted_e.push_back(e);
      for (const ExpertPart& part : X.parts[e]) all_parts.push_back(part.unit);
    }
  provider_->prefetch(all_parts.data(), all_parts.size(), runtime::Need::Now);
  if (streaming_ && predict_) predict_experts(il, s);

  s.expert_out.resize(T * K * E);
  // An expert held in parts: gate and up a row block at a time, then down a row block at a
  // time, each part released before the next is acquired.
  auto split_job = [&](int64_t e) {
    const std::vector<int64_t>& mine = slots[e];
    const int64_t n = static_cast<int64_t>(mine.size());
    const int64_t F = X.gate.rows;
    std::vector<float> xin(n * E), g(n * F), u(n * F), d(n * E);
    for (int64_t i = 0; i < n; ++i) std::copy_n(s.xn.data() + (mine[i] / K) * E, E, xin.data() + i * E);
    QuantizedActivations qg, qu_own, qd;
    qg.quantize(compute::type_info(X.gate.type).vec_dot_type, xin.data(), n, E);
    const compute::DType up_type = compute::type_info(X.up.type).vec_dot_type;
    if (up_type != qg.type()) qu_own.quantize(up_type, xin.data(), n, E);
    const QuantizedActivations& qu = up_type != qg.type() ? qu_own : qg;
    for (const ExpertPart& part : X.parts[e]) {
      if (part.kind != ExpertPart::GateUp) continue;
      UnitLease lease(*provider_, part.unit);
      compute::matmul({X.gate.type, lease.range(0), part.rows, E, X.gate.row_stride}, qg, g.data() + part.row0, F);
      compute::matmul({X.up.type, lease.range(1), part.rows, E, X.up.row_stride}, qu, u.data() + part.row0, F);
    }
    swiglu(g.data(), u.data(), g.data(), n * F);
    qd.quantize(compute::type_info(X.down.type).vec_dot_type, g.data(), n, F);
    for (const ExpertPart& part : X.parts[e]) {
      if (part.kind != ExpertPart::Down) continue;
      UnitLease lease(*provider_, part.unit);
      compute::matmul({X.down.type, lease.range(0), part.rows, F, X.down.row_stride}, qd, d.data() + part.row0, E);
    }
    for (int64_t i = 0; i < n; ++i) std::copy_n(d.data() + i * E, E, s.expert_out.data() + mine[i] * E);
  };
  auto expert_job = [&](int64_t e, const UnitLease& lease) {
    const std::vector<int64_t>& mine = slots[e];
    const int64_t n = static_cast<int64_t>(mine.size());
    const int64_t F = X.gate.rows;
    std::vector<float> xin(n * E), g(n * F), u(n * F), d(n * E);
    for (int64_t i = 0; i < n; ++i) std::copy_n(s.xn.data() + (mine[i] / K) * E, E, xin.data() + i * E);
    const std::byte* part[3] = {lease.range(0), lease.range(1), lease.range(2)};
    QuantizedActivations q;
    q.quantize(compute::type_info(X.gate.type).vec_dot_type, xin.data(), n, E);
    compute::matmul(X.gate.view(part[0]), q, g.data(), F);
    if (compute::type_info(X.up.type).vec_dot_type != q.type())
      q.quantize(compute::type_info(X.up.type).vec_dot_type, xin.data(), n, E);
    compute::matmul(X.up.view(part[1]), q, u.data(), F);
    swiglu(g.data(), u.data(), g.data(), n * F);
    q.quantize(compute::type_info(X.down.type).vec_dot_type, g.data(), n, F);
    compute::matmul(X.down.view(part[2]), q, d.data(), E);
    for (int64_t i = 0; i < n; ++i) std::copy_n(d.data() + i * E, E, s.expert_out.data() + mine[i] * E);
  };
  // Exceptions (a failed read) must not cross the task boundary: keep the first, rethrow after.
  std::mutex err_mu;
  std::exception_ptr err;
  tbb::task_group tg;
  try {
    if (X.split) {
      for (int64_t e : wanted_e)
        tg.run([&, e] {
          try {
            split_job(e);
          } catch (...) {
            std::lock_guard<std::mutex> g(err_mu);
            if (!err) err = std::current_exception();
          }
        });
      wanted.clear();
    }
    while (!wanted.empty()) {
      const std::byte* data = nullptr;
      const size_t i = provider_->acquire_any(wanted.data(), wanted.size(), &data);
      const runtime::UnitId id = wanted[i];
      const int64_t e = wanted_e[i];
      wanted.erase(wanted.begin() + static_cast<std::ptrdiff_t>(i));
      wanted_e.erase(wanted_e.begin() + static_cast<std::ptrdiff_t>(i));
      tg.run([&, e, id, data] {
        UnitLease lease(*provider_, id, data);
        try {
          expert_job(e, lease);
        } catch (...) {
          std::lock_guard<std::mutex> g(err_mu);
          if (!err) err = std::current_exception();
        }
      });
    }
  } catch (...) {
    tg.wait();
    throw;
  }
  tg.wait();
  if (err) std::rethrow_exception(err);

  // Weighted sum in slot order, so the result does not depend on job scheduling; the experts'
  // sum is formed first and then added to the residual, as llama.cpp does.
  s.tmp.resize(E);
  for (int64_t t = 0; t < T; ++t) {
    float* acc = s.tmp.data();
    std::fill_n(acc, E, 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      const float w = s.sel_w[t * K + k];
      const float* o = s.expert_out.data() + (t * K + k) * E;
      for (int64_t c = 0; c < E; ++c) acc[c] += w * o[c];
    }
    float* xt = s.x.data() + t * E;
    for (int64_t c = 0; c < E; ++c) xt[c] += acc[c];
  }
}

// Applies layer il+1's router to layer il's hidden state (before its FFN) and reads the experts
// it picks ahead of time, in the speculative budget. Numerics are untouched: this only decides
// what to read early.
void Model::predict_experts(int64_t il, Scratch& s) {
  const HParams& hp = hp_;
  if (il + 1 >= hp.n_layer || !w_.layers[il + 1].moe) return;
  const LayerWeights& N = w_.layers[il + 1];
  const int64_t E = hp.n_embd, T = s.T, NE = hp.n_expert, K = hp.n_expert_used;
  std::vector<float> xn(static_cast<size_t>(T * E)), logits(static_cast<size_t>(T * NE));
  for (int64_t t = 0; t < T; ++t) rms_norm(s.x.data() + t * E, N.ffn_norm.data(), xn.data() + t * E, E, hp.norm_eps);
  QuantizedActivations q;
  prepare(q, N.router, xn.data(), T);
  run_matmul(*provider_, N.router, q, logits.data());
  s.pred.resize(static_cast<size_t>(T * K));
  std::vector<char> chosen(static_cast<size_t>(NE), 0);
  std::vector<int32_t> order;
  for (int64_t t = 0; t < T; ++t) {
    top_k(logits.data() + t * NE, NE, K, order);  // softmax is monotonic: rank the logits
    for (int64_t k = 0; k < K; ++k) {
      s.pred[t * K + k] = order[k];
      chosen[order[k]] = 1;
    }
  }
  std::vector<runtime::UnitId> ids;
  for (int64_t e = 0; e < NE; ++e)
    if (chosen[e])
      for (const ExpertPart& part : N.experts.parts[e]) ids.push_back(part.unit);
  provider_->prefetch(ids.data(), ids.size(), runtime::Need::Speculative);
  s.pred_layer = il + 1;
}

}  // namespace strata::models
