// The /metrics text: every family has HELP and TYPE, histograms are cumulative with +Inf, and
// (when promtool is installed) `promtool check metrics` accepts it.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "server/metrics.h"

using namespace strata;
using namespace strata::server;

namespace {

engine::EngineStats sample_stats() {
  engine::EngineStats s;
  s.active = 2;
  s.queued = 1;
  s.kv_bytes = 1 << 20;
  s.kv_budget = 1 << 30;
  s.prompt_tokens = 100;
  s.generated_tokens = 40;
  s.provider.bytes_read = 5'000'000;
  s.provider.dense_hits = 3;
  s.provider.dense_misses = 1;
  s.provider.expert_hits = 1;
  s.provider.expert_misses = 1;
  return s;
}

}  // namespace

TEST_CASE("metrics text") {
  Metrics m;
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 400);
  m.observe_ttft(0.03);
  m.observe_ttft(100);
  m.observe_inter_token(0.02);
  const std::string loading = m.render(nullptr, 1.0);
  CHECK(loading.find("strata_model_loaded 0") != std::string::npos);
  CHECK(loading.find("strata_kv_cache_bytes") == std::string::npos);

  engine::EngineStats s = sample_stats();
  m.render(&s, 10.0);
  s.provider.bytes_read += 2'000'000;
  const std::string t = m.render(&s, 12.0);
  CHECK(t.find("strata_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2\n") != std::string::npos);
  CHECK(t.find("strata_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"} 1\n") != std::string::npos);
  CHECK(t.find("# TYPE strata_time_to_first_token_seconds histogram") != std::string::npos);
  CHECK(t.find("strata_time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n") != std::string::npos);
  CHECK(t.find("strata_time_to_first_token_seconds_bucket{le=\"60\"} 1\n") != std::string::npos);
  CHECK(t.find("strata_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(t.find("strata_time_to_first_token_seconds_count 2\n") != std::string::npos);
  CHECK(t.find("strata_inter_token_latency_seconds_sum 0.02\n") != std::string::npos);
  CHECK(t.find("strata_weight_read_bytes_per_second 1000000\n") != std::string::npos);
  CHECK(t.find("strata_weight_bytes_read_total 7000000\n") != std::string::npos);
  CHECK(t.find("strata_dense_hit_ratio 0.75\n") != std::string::npos);
  CHECK(t.find("strata_active_sequences 2\n") != std::string::npos);
  // Each family has HELP and TYPE.
  for (const char* name : {"strata_prompt_tokens_total", "strata_generated_tokens_total", "strata_queued_sequences",
                           "strata_kv_budget_bytes", "strata_expert_hit_ratio", "strata_inter_token_latency_seconds"}) {
    CAPTURE(name);
    CHECK(t.find(fmt::format("# HELP {} ", name)) != std::string::npos);
    CHECK(t.find(fmt::format("# TYPE {} ", name)) != std::string::npos);
  }
  CHECK(escape_label("a\"b\\c\n") == "a\\\"b\\\\c\\n");

  if (access("/usr/bin/promtool", X_OK) != 0) {
    MESSAGE("skipped promtool check: /usr/bin/promtool not installed");
    return;
  }
  const auto path = std::filesystem::temp_directory_path() / fmt::format("strata_metrics_{}.txt", getpid());
  std::ofstream(path) << t;
  const int rc = std::system(fmt::format("/usr/bin/promtool check metrics < {} > {}.out 2>&1", path.string(), path.string()).c_str());
  std::ifstream out(path.string() + ".out");
  const std::string msg((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  CAPTURE(msg);
  CHECK(rc == 0);
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".out");
}
