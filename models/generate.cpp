#include "models/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "models/engine/scheduler.h"
#include "storage/error.h"

namespace strata::models {
namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

std::vector<std::pair<int32_t, float>> top_logits(const float* logits, int64_t n_vocab, int n) {
  std::vector<int32_t> idx(static_cast<size_t>(n_vocab));
  std::iota(idx.begin(), idx.end(), 0);
  const int k = static_cast<int>(std::min<int64_t>(n, n_vocab));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (int i = 0; i < k; ++i) out.emplace_back(idx[i], logits[idx[i]]);
  return out;
}

// One sequence through the engine's scheduler, on this thread: the same path a served request
// takes, so `run` and the server give the same tokens.
GenerateResult generate(Model& model, std::string_view prompt, const GenerateOptions& opts,
                        const std::function<void(std::string_view)>& on_text) {
  GenerateResult r;
  const tok::Tokenizer& tk = model.tokenizer();
  r.prompt_ids = tk.encode(prompt, /*add_special=*/true);
  if (r.prompt_ids.empty()) fail("the prompt is empty and the model adds no BOS token: nothing to evaluate");
  if (opts.n_predict < -1) fail("--n-predict must be >= -1 (got {})", opts.n_predict);
  const int64_t trained = model.hparams().n_ctx_train;
  const int64_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : trained > 0 ? trained : 2048;
  r.n_ctx = n_ctx;
  if (static_cast<int64_t>(r.prompt_ids.size()) >= n_ctx)
    fail("the prompt has {} tokens but the context holds {}{}: shorten the prompt{}", r.prompt_ids.size(), n_ctx,
         opts.n_ctx > 0 ? "" : " (the model's trained length)",
         opts.n_ctx > 0 ? " or raise --ctx-size" : " (--ctx-size can go beyond it, at the cost of garbage output)");
  r.stats.prompt_tokens = static_cast<int64_t>(r.prompt_ids.size());
  if (opts.n_predict == 0) return r;

  engine::EngineOptions eo;
  eo.max_batch = 1;
  eo.n_ctx = n_ctx;
  eo.prefill_chunk = static_cast<int>(std::min<int64_t>(n_ctx, INT32_MAX));
  engine::Scheduler sched(model, eo);
  engine::Request req;
  req.prompt = r.prompt_ids;
  req.max_tokens = opts.n_predict;
  req.sampling = opts.sampling;
  req.stop = opts.stop;
  req.ignore_eos = opts.ignore_eos;
  req.raw_top_logits = 10;
  req.special_text = true;  // `run` prints every token's text, as it always has
  if (std::string why = sched.check(req); !why.empty()) fail("{}", why);

  const double t0 = engine::now_s();
  RoutingStats routing0;
  engine::FinishEvent fin;
  engine::Sink sink;
  sink.on_token = [&](const engine::TokenEvent& ev) {
    if (r.tokens.empty()) {
      // The prompt's forward pass ends where the first token is sampled: decode counts start.
      r.stats.prompt_s = ev.t - t0;
      r.top_logits = ev.raw_top_logits;
      r.decode_start = model.provider().stats();
      routing0 = model.routing_stats();
    }
    r.tokens.push_back(ev.token);
    r.text += ev.text;
    if (on_text && !ev.text.empty()) on_text(ev.text);
  };
  sink.on_finish = [&](const engine::FinishEvent& f) {
    fin = f;
    r.text += f.text_tail;
    if (on_text && !f.text_tail.empty()) on_text(f.text_tail);
  };
  sched.admit(1, std::move(req), std::move(sink), t0);
  while (!sched.idle()) {
    sched.step();
    r.stats.kv_cache_bytes = std::max(r.stats.kv_cache_bytes, sched.kv_allocated());
  }
  if (fin.reason == engine::FinishReason::Error) fail("{}", fin.error);
  r.context_full = fin.context_full;
  r.stats.gen_s = fin.t_end - t0 - r.stats.prompt_s;
  r.decode_end = model.provider().stats();
  r.decode_routing = model.routing_stats().since(routing0);
  r.stats.gen_tokens = static_cast<int64_t>(r.tokens.size());
  return r;
}

PerplexityResult perplexity(Model& model, std::string_view text, int64_t n_ctx, int batch,
                            const std::function<void(int64_t, int64_t, double)>& on_chunk) {
  PerplexityResult res;
  const tok::Tokenizer& tk = model.tokenizer();
  std::vector<int32_t> tokens = tk.encode(text, /*add_special=*/true);
  if (n_ctx < 4) fail("--ctx-size must be >= 4 for perplexity (got {})", n_ctx);
  const int64_t n_chunk = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (n_chunk == 0)
    fail("the text has {} tokens; perplexity needs at least one window of -c {} tokens", tokens.size(), n_ctx);
  const int64_t first = n_ctx / 2;
  const int64_t nv = model.hparams().n_vocab;
  double nll = 0.0, nll2 = 0.0;
  int64_t count = 0;
  const double t0 = now_s();
  batch = std::max(1, batch);
  ForwardOutput out;
  for (int64_t c0 = 0; c0 < n_chunk; c0 += batch) {
    const int64_t nb = std::min<int64_t>(batch, n_chunk - c0);
    std::vector<std::vector<int32_t>> win(nb);
    std::vector<KVCache> caches;
    caches.reserve(nb);
    std::vector<BatchItem> items;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t start = (c0 + b) * n_ctx;
      win[b].assign(tokens.begin() + start, tokens.begin() + start + n_ctx);
      if (tk.add_bos() && tk.bos() >= 0) win[b][0] = tk.bos();
      caches.push_back(model.new_cache(n_ctx));
    }
    for (int64_t b = 0; b < nb; ++b) items.push_back({&caches[b], win[b], true});
    model.forward(items, out);
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t start = (c0 + b) * n_ctx;
      for (int64_t j = first; j < n_ctx - 1; ++j) {
        const float* lg = out.row(static_cast<size_t>(b), static_cast<size_t>(j));
        float mx = lg[0];
        for (int64_t v = 1; v < nv; ++v) mx = std::max(mx, lg[v]);
        double sum = 0.0;
        for (int64_t v = 0; v < nv; ++v) sum += std::exp(static_cast<double>(lg[v] - mx));
        const int32_t target = tokens[start + j + 1];
        const double lp = static_cast<double>(lg[target] - mx) - std::log(sum);
        nll -= lp;
        nll2 += lp * lp;
        ++count;
      }
      res.running_ppl.push_back(std::exp(nll / count));
      if (on_chunk) on_chunk(c0 + b, n_chunk, res.running_ppl.back());
    }
  }
  res.n_chunks = n_chunk;
  res.n_scored = count;
  res.ppl = std::exp(nll / count);
  const double mean = nll / count, var = nll2 / count - mean * mean;
  res.ppl_stderr = count > 1 ? std::sqrt(std::max(0.0, var) / (count - 1)) * res.ppl : 0.0;
  res.seconds = now_s() - t0;
  return res;
}

}  // namespace strata::models
