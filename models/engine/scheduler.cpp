#include "models/engine/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <exception>

#include "models/generate.h"
#include "models/kv_cache.h"
#include "models/sampling.h"
#include "models/stop_strings.h"
#include "storage/error.h"

namespace strata::engine {

namespace {
double cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
}  // namespace

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const char* to_string(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "error";
}

struct Sequence {
  Sequence(RequestId id_, Request r, Sink s, models::KVCache cache, int32_t n_vocab, int64_t context,
           uint64_t kv)
      : id(id_),
        req(std::move(r)),
        sink(std::move(s)),
        kv(std::move(cache)),
        sampler(req.sampling, n_vocab),
        stops(req.stop),
        ctx(context),
        kv_reserved(kv) {
    history = req.prompt;
  }
  RequestId id;
  Request req;
  Sink sink;
  models::KVCache kv;
  models::Sampler sampler;
  models::StopStringMatcher stops;
  std::vector<int32_t> history;  // prompt then generated: what the penalties look at
  size_t prefilled = 0;          // prompt tokens already through the model
  int64_t generated = 0;
  int64_t ctx;
  uint64_t kv_reserved;
  bool cancel_requested = false, done = false;
  FinishEvent fin;
  bool prefilling() const { return prefilled < req.prompt.size(); }
};

namespace {
// Sinks belong to callers; one that throws must not take the scheduler (and every other
// sequence) down with it.
template <typename Fn, typename Ev>
void deliver(const Fn& fn, const Ev& ev) {
  if (!fn) return;
  try {
    fn(ev);
  } catch (const std::exception& e) {
    spdlog::get("engine") ? spdlog::get("engine")->error("a sink threw: {}", e.what())
                          : spdlog::error("engine: a sink threw: {}", e.what());
  }
}
}  // namespace

Scheduler::Scheduler(models::Model& model, const EngineOptions& opts)
    : model_(model), opts_(opts) {
  const auto& hp = model_.hparams();
  kv_bytes_per_pos_ = static_cast<uint64_t>(hp.n_layer) * static_cast<uint64_t>(hp.k_dim() + hp.v_dim()) * 4;
  if (opts_.n_ctx <= 0) opts_.n_ctx = hp.n_ctx_train > 0 ? hp.n_ctx_train : 2048;
  opts_.max_batch = std::max(1, opts_.max_batch);
  opts_.prefill_chunk = std::max(1, opts_.prefill_chunk);
}

Scheduler::~Scheduler() = default;

int64_t Scheduler::context_for(const Request& req) const {
  const int64_t prompt = static_cast<int64_t>(req.prompt.size());
  int64_t ctx = opts_.n_ctx;
  if (req.max_tokens >= 0) ctx = std::min<int64_t>(ctx, prompt + std::max<int64_t>(1, req.max_tokens));
  else if (opts_.kv_budget > 0)
    ctx = std::min<int64_t>(ctx, static_cast<int64_t>(opts_.kv_budget / kv_bytes_per_pos_));
  return std::max<int64_t>(ctx, 1);
}

std::string Scheduler::check(const Request& req) const {
  const int64_t prompt = static_cast<int64_t>(req.prompt.size());
  if (prompt == 0) return "the prompt is empty (no tokens to evaluate)";
  for (int32_t t : req.prompt)
    if (t < 0 || t >= model_.hparams().n_vocab)
      return fmt::format("prompt token id {} is out of range (vocabulary has {} tokens)", t, model_.hparams().n_vocab);
  const int64_t ctx = context_for(req);
  if (prompt >= ctx && ctx == opts_.n_ctx)
    return fmt::format("the prompt has {} tokens, the context size is {}: no room to generate", prompt, opts_.n_ctx);
  if (prompt >= ctx)
    return fmt::format("the prompt has {} tokens, more than the KV budget allows one sequence ({} positions)", prompt, ctx);
  const uint64_t need = kv_bytes_for(ctx);
  if (opts_.kv_budget > 0 && need > opts_.kv_budget)
    return fmt::format("the request needs {} bytes of KV cache ({} positions), more than the whole KV budget of {} bytes",
                       need, ctx, opts_.kv_budget);
  try {
    models::validate(req.sampling);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

bool Scheduler::has_room_for(const Request& req) const {
  if (static_cast<int>(seqs_.size()) >= opts_.max_batch) return false;
  if (opts_.kv_budget == 0) return true;
  return kv_reserved_ + kv_bytes_for(context_for(req)) <= opts_.kv_budget;
}

void Scheduler::admit(RequestId id, Request req, Sink sink, double t_submit) {
  const int64_t ctx = context_for(req);
  const uint64_t kv = kv_bytes_for(ctx);
  auto s = std::make_unique<Sequence>(id, std::move(req), std::move(sink), model_.new_cache(ctx),
                                      static_cast<int32_t>(model_.hparams().n_vocab), ctx, kv);
  s->fin.t_submit = t_submit;
  s->fin.prompt_tokens = static_cast<int64_t>(s->req.prompt.size());
  kv_reserved_ += kv;
  seqs_.push_back(std::move(s));
}

void Scheduler::cancel(RequestId id) {
  for (auto& s : seqs_)
    if (s->id == id) s->cancel_requested = true;
}

void Scheduler::cancel_all() {
  for (auto& s : seqs_) s->cancel_requested = true;
}

uint64_t Scheduler::kv_allocated() const {
  uint64_t n = 0;
  for (const auto& s : seqs_) n += s->kv.bytes();
  return n;
}

void Scheduler::finish(Sequence& s, FinishReason reason, std::string error) {
  if (s.done) return;
  s.done = true;
  s.fin.reason = reason;
  s.fin.error = std::move(error);
  s.fin.text_tail = s.stops.flush();
  s.fin.completion_tokens = s.generated;
  s.fin.t_end = now_s();
  ++finished_;
  if (reason == FinishReason::Cancelled) ++cancelled_;
  deliver(s.sink.on_finish, s.fin);
}

void Scheduler::retire_finished() {
  auto it = std::remove_if(seqs_.begin(), seqs_.end(), [&](const std::unique_ptr<Sequence>& s) {
    if (s->done) kv_reserved_ -= s->kv_reserved;
    return s->done;
  });
  seqs_.erase(it, seqs_.end());
}

void Scheduler::sample_for(Sequence& s, const float* logits) {
  const tok::Tokenizer& tk = model_.tokenizer();
  const int64_t nv = model_.hparams().n_vocab;
  TokenEvent ev;
  if (s.generated == 0 && s.req.raw_top_logits > 0) ev.raw_top_logits = models::top_logits(logits, nv, s.req.raw_top_logits);
  const int32_t tok = s.sampler.sample(logits, s.history);
  ev.token = tok;
  ev.t = now_s();
  if (s.req.top_logprobs >= 0) {
    // Log-probabilities of the model's distribution (raw logits), as OpenAI reports them.
    float mx = logits[0];
    for (int64_t v = 1; v < nv; ++v) mx = std::max(mx, logits[v]);
    double sum = 0;
    for (int64_t v = 0; v < nv; ++v) sum += std::exp(static_cast<double>(logits[v] - mx));
    const double lse = static_cast<double>(mx) + std::log(sum);
    ev.logprob = static_cast<float>(logits[tok] - lse);
    if (s.req.top_logprobs > 0)
      for (auto [id, v] : models::top_logits(logits, nv, s.req.top_logprobs))
        ev.top.emplace_back(id, static_cast<float>(v - lse));
  }
  s.history.push_back(tok);
  ++s.generated;
  ++generated_tokens_;
  if (s.generated == 1) s.fin.t_first_token = ev.t;
  if (tk.is_eog(tok) && !s.req.ignore_eos) {
    ev.end = true;
    deliver(s.sink.on_token, ev);
    finish(s, FinishReason::Stop);
    return;
  }
  ev.piece = tk.token_to_piece(tok, /*special=*/true);
  auto res = s.stops.feed(s.req.special_text ? ev.piece : tk.token_to_piece(tok, /*special=*/false));
  ev.text = std::move(res.emit);
  deliver(s.sink.on_token, ev);
  if (res.stopped) {
    finish(s, FinishReason::Stop);
  } else if (s.req.max_tokens >= 0 && s.generated >= s.req.max_tokens) {
    finish(s, FinishReason::Length);
  } else if (s.kv.n_past() + 1 >= s.ctx) {
    // Prompt + completion never exceed the context: the token just sampled is the last.
    s.fin.context_full = true;
    finish(s, FinishReason::Length);
  }
}

void Scheduler::step() {
  for (auto& s : seqs_)
    if (s->cancel_requested) finish(*s, FinishReason::Cancelled);
  retire_finished();
  if (seqs_.empty()) return;

  // Decoding sequences add their last token; prefilling ones share the prompt chunk, first
  // come first served, so a long prompt does not stall everyone else's next token.
  std::vector<models::BatchItem> items;
  std::vector<Sequence*> owners;
  std::vector<size_t> fed;
  int64_t budget = opts_.prefill_chunk;
  for (auto& sp : seqs_) {
    Sequence& s = *sp;
    if (s.prefilling()) {
      const int64_t left = static_cast<int64_t>(s.req.prompt.size() - s.prefilled);
      const int64_t n = std::min(left, budget);
      if (n <= 0) continue;
      budget -= n;
      items.push_back({&s.kv, std::span<const int32_t>(s.req.prompt.data() + s.prefilled, static_cast<size_t>(n)), false});
      fed.push_back(static_cast<size_t>(n));
    } else {
      items.push_back({&s.kv, std::span<const int32_t>(&s.history.back(), 1), false});
      fed.push_back(0);
    }
    owners.push_back(&s);
  }
  const double t0 = now_s(), c0 = cpu_s();
  try {
    model_.forward(items, out_);
  } catch (const std::exception& e) {
    // A failed read (or any error) ends every sequence in this batch: their caches are now
    // partly written. The engine itself keeps serving.
    spdlog::error("engine: forward pass failed: {}", e.what());
    for (Sequence* s : owners) finish(*s, FinishReason::Error, e.what());
    retire_finished();
    return;
  }
  ++steps_;
  step_seconds_ += now_s() - t0;
  step_cpu_seconds_ += cpu_s() - c0;
  for (const auto& it : items) batch_tokens_ += it.tokens.size();
  for (size_t i = 0; i < owners.size(); ++i) {
    Sequence& s = *owners[i];
    if (fed[i] > 0) {
      s.prefilled += fed[i];
      prompt_tokens_ += fed[i];
      if (s.prefilling()) continue;
    }
    sample_for(s, out_.row(i));
  }
  retire_finished();
}

}  // namespace strata::engine
