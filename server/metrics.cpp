#include "server/metrics.h"

#include <fmt/format.h>

#include <cmath>

namespace strata::server {

namespace {

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void single(std::string& out, const char* name, const char* type, const char* help, double v) {
  header(out, name, type, help);
  out += fmt::format("{} {}\n", name, num(v));
}

double ratio(uint64_t hits, uint64_t misses) { return hits + misses ? double(hits) / double(hits + misses) : 0.0; }

}  // namespace

std::string escape_label(const std::string& v) {
  std::string s;
  for (char c : v) {
    if (c == '\\') s += "\\\\";
    else if (c == '"') s += "\\\"";
    else if (c == '\n') s += "\\n";
    else s += c;
  }
  return s;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name) const {
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, num(bounds_[i]), cum);
  }
  cum += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cum);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, num(sum_), name, count_);
}

Metrics::Metrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lk(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::observe_ttft(double seconds) {
  std::lock_guard lk(mu_);
  ttft_.observe(seconds);
}

void Metrics::observe_inter_token(double seconds) {
  std::lock_guard lk(mu_);
  itl_.observe(seconds);
}

std::string Metrics::render(const engine::EngineStats* e, double now_s) {
  std::lock_guard lk(mu_);
  std::string out;
  header(out, "strata_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
  for (const auto& [key, n] : requests_)
    out += fmt::format("strata_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", escape_label(key.first), key.second, n);
  header(out, "strata_time_to_first_token_seconds", "histogram", "Time from submission to the first generated token.");
  ttft_.render(out, "strata_time_to_first_token_seconds");
  header(out, "strata_inter_token_latency_seconds", "histogram", "Time between consecutive tokens of a sequence.");
  itl_.render(out, "strata_inter_token_latency_seconds");
  single(out, "strata_model_loaded", "gauge", "1 once the model is loaded and the engine runs.", e ? 1 : 0);
  if (!e) return out;

  const runtime::ProviderStats& p = e->provider;
  if (last_t_ >= 0 && now_s > last_t_ && p.bytes_read >= last_bytes_) read_rate_ = double(p.bytes_read - last_bytes_) / (now_s - last_t_);
  last_t_ = now_s;
  last_bytes_ = p.bytes_read;

  single(out, "strata_prompt_tokens_total", "counter", "Prompt tokens processed.", double(e->prompt_tokens));
  single(out, "strata_generated_tokens_total", "counter", "Tokens generated.", double(e->generated_tokens));
  single(out, "strata_engine_steps_total", "counter", "Forward steps the engine ran.", double(e->steps));
  single(out, "strata_engine_requests_finished_total", "counter", "Sequences that finished.", double(e->requests_finished));
  single(out, "strata_engine_requests_cancelled_total", "counter", "Sequences cancelled.", double(e->requests_cancelled));
  single(out, "strata_engine_requests_rejected_total", "counter", "Requests the engine refused.", double(e->requests_rejected));
  single(out, "strata_active_sequences", "gauge", "Sequences in the running batch.", e->active);
  single(out, "strata_queued_sequences", "gauge", "Requests waiting for a batch slot.", e->queued);
  single(out, "strata_engine_step_seconds_total", "counter", "Wall time inside forward steps, read waits included.", e->step_seconds);
  single(out, "strata_engine_step_cpu_seconds_total", "counter", "Process CPU time during forward steps, all threads.", e->step_cpu_seconds);
  single(out, "strata_engine_batch_tokens_total", "counter", "Tokens through the model, summed over steps.", double(e->batch_tokens));
  single(out, "strata_kv_cache_bytes", "gauge", "KV cache allocated by running sequences.", double(e->kv_bytes));
  single(out, "strata_kv_reserved_bytes", "gauge", "KV cache the running sequences may grow to (what admission counts).", double(e->kv_reserved));
  single(out, "strata_kv_budget_bytes", "gauge", "KV cache budget (0: no limit).", double(e->kv_budget));
  single(out, "strata_weight_bytes_read_total", "counter", "Weight bytes read from disk.", double(p.bytes_read));
  single(out, "strata_weight_reads_total", "counter", "Weight reads issued.", double(p.reads));
  single(out, "strata_step_new_bytes_total", "counter",
         "Read bytes of the distinct units each step used that were not in memory when it began.", double(p.step_new_bytes));
  single(out, "strata_weight_read_wait_seconds_total", "counter", "Time the forward pass waited for weight reads.", p.wait_s);
  single(out, "strata_weight_read_bytes_per_second", "gauge", "Weight read rate since the previous scrape.", read_rate_);
  single(out, "strata_weight_resident_bytes", "gauge", "Weight bytes in memory.", double(p.resident_bytes));
  single(out, "strata_weight_budget_bytes", "gauge", "Pinned weight pool size (0: all resident).", double(p.budget_bytes));
  single(out, "strata_weight_evictions_total", "counter", "Weight units evicted from the pool.", double(p.evictions));
  single(out, "strata_dense_hit_ratio", "gauge", "Share of dense weight acquisitions found in memory.", ratio(p.dense_hits, p.dense_misses));
  single(out, "strata_expert_hit_ratio", "gauge", "Share of expert weight acquisitions found in memory.", ratio(p.expert_hits, p.expert_misses));
  single(out, "strata_disk_busy_seconds_total", "counter", "Wall time with at least one weight read in flight.", p.disk_busy_s);
  return out;
}

}  // namespace strata::server
