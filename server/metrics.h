// Prometheus text exposition (format 0.0.4) of the server's and engine's counters: requests by
// endpoint and status, tokens, sequences, KV cache, weight reads and hit rates, and the
// time-to-first-token and inter-token latency histograms. Thread-safe.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "models/engine/request.h"

namespace strata::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  // _bucket{le=...} (cumulative, +Inf last), _sum and _count lines for `name`.
  void render(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& endpoint, int status);
  void observe_ttft(double seconds);
  void observe_inter_token(double seconds);
  // The whole exposition; `engine` is null while the model is loading (engine figures left
  // out). `now_s` is a steady-clock time for the read-rate gauge (bytes since the last render).
  std::string render(const engine::EngineStats* engine, double now_s);

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram ttft_, itl_;
  double last_t_ = -1;
  uint64_t last_bytes_ = 0;
  double read_rate_ = 0;
};

// A Prometheus label value with \, " and newline escaped.
std::string escape_label(const std::string& v);

}  // namespace strata::server
