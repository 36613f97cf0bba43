// `strata batch`: offline generation over an OpenAI Batch JSONL file, for throughput: the
// engine's batch is kept as full as the KV budget allows, answers are appended as they finish,
// and a killed run continues where it stopped (batch/README.md). `strata batch merge` joins
// shard outputs into one file in input order.
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <vector>
#include <memory>
#include <string>

#include "batch/merge.h"
#include "batch/runner.h"
#include "batch/shard.h"
#include "models/engine/engine.h"
#include "models/model.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/model_context.h"
#include "tools/model_flags.h"
#include "tools/progress.h"
#include "tools/streaming_flags.h"
#include "tools/units.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

struct BatchArgs {
  std::string model, input, output, errors;
  StreamingFlags streaming;
  int max_batch = 64;
  std::string kv_budget;
  int64_t ctx = 0;
  int threads = 0;
  std::string alias, chat_template;
  std::optional<std::string> shard;
  int64_t shards = 0;
  std::optional<int64_t> created;
  double fsync_interval = 1.0;
  bool predict_experts = false;
  bool json = false;
};

struct MergeArgs {
  std::string input, output, errors;
  std::vector<std::string> parts;
};

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

// SIGINT/SIGTERM (Ctrl-C, a pod's eviction) end the run early but cleanly while it lives.
struct StopSignals {
  struct sigaction old_int {}, old_term {};
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
  }
};

double ratio(uint64_t a, uint64_t b) { return a + b ? double(a) / double(a + b) : 0.0; }

// s0/s1: the engine's counters, p0/p1: the weight provider's, at the run's start and end.
nlohmann::json summary_json(const batch::RunCounts& c, const engine::EngineStats& s0, const engine::EngineStats& s1,
                            const runtime::ProviderStats& p0, const runtime::ProviderStats& p1,
                            const batch::RunOptions& o, const engine::EngineOptions& eo) {
  const uint64_t bytes = p1.bytes_read - p0.bytes_read;
  return {{"requests", c.requests},
          {"already_done", c.already},
          {"ok", c.ok},
          {"failed", c.failed},
          {"complete", !c.stopped && c.done() == c.requests},
          {"prompt_tokens", c.prompt_tokens},
          {"generated_tokens", c.generated_tokens},
          {"seconds", c.seconds},
          {"generated_tok_s", c.seconds > 0 ? double(c.generated_tokens) / c.seconds : 0.0},
          {"bytes_read", bytes},
          {"bytes_read_per_generated_token", c.generated_tokens ? double(bytes) / double(c.generated_tokens) : 0.0},
          {"hit_rate_dense", ratio(p1.dense_hits - p0.dense_hits, p1.dense_misses - p0.dense_misses)},
          {"hit_rate_expert", ratio(p1.expert_hits - p0.expert_hits, p1.expert_misses - p0.expert_misses)},
          // Per-step figures for the batch roofline (scripts/bench-batch.sh).
          {"steps", s1.steps - s0.steps},
          {"step_seconds", s1.step_seconds - s0.step_seconds},
          {"step_cpu_seconds", s1.step_cpu_seconds - s0.step_cpu_seconds},
          {"batch_tokens", s1.batch_tokens - s0.batch_tokens},
          {"step_new_bytes", p1.step_new_bytes - p0.step_new_bytes},
          {"disk_busy_s", p1.disk_busy_s - p0.disk_busy_s},
          {"io", p1.io},
          {"memory_budget", p1.budget_bytes},
          {"max_batch", eo.max_batch},
          {"kv_budget", eo.kv_budget},
          {"n_ctx", eo.n_ctx},
          {"shard", {{"index", o.shard.index}, {"count", o.shard.count}, {"source", o.shard.source}}},
          {"output", o.output},
          {"errors", o.errors.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.errors)},
          {"peak_rss_bytes", peak_rss_bytes()}};
}

void print_summary(const nlohmann::json& j) {
  std::printf("batch: %llu requests: %llu ok, %llu failed, %llu done before; %s\n",
              (unsigned long long)j["requests"].get<uint64_t>(), (unsigned long long)j["ok"].get<uint64_t>(),
              (unsigned long long)j["failed"].get<uint64_t>(), (unsigned long long)j["already_done"].get<uint64_t>(),
              j["complete"].get<bool>() ? "complete" : "NOT complete (run the same command to continue)");
  std::printf("tokens: %llu prompt, %llu generated in %s: %.2f generated tok/s\n",
              (unsigned long long)j["prompt_tokens"].get<uint64_t>(),
              (unsigned long long)j["generated_tokens"].get<uint64_t>(),
              format_duration(j["seconds"].get<double>()).c_str(), j["generated_tok_s"].get<double>());
  std::printf("weights: read %s, %s per generated token, hit rate dense %.0f%% expert %.0f%% (%s)\n",
              format_bytes(j["bytes_read"].get<double>()).c_str(),
              format_bytes(j["bytes_read_per_generated_token"].get<double>()).c_str(),
              100 * j["hit_rate_dense"].get<double>(), 100 * j["hit_rate_expert"].get<double>(),
              j["io"].get<std::string>().c_str());
  std::printf("output: %s%s%s\n", j["output"].get<std::string>().c_str(), j["errors"].is_null() ? "" : ", errors: ",
              j["errors"].is_null() ? "" : j["errors"].get<std::string>().c_str());
}

int run_batch(const BatchArgs& a) {
  if (a.model.empty() || a.input.empty() || a.output.empty())
    fail("batch needs -m MODEL, -i INPUT.jsonl and -o OUTPUT.jsonl (or: strata batch merge ...)");
  check_streaming_flags(a.streaming);
  batch::RunOptions o;
  o.shard = batch::resolve_shard(a.shard, a.shards, [](const char* n) { return std::getenv(n); });
  o.input = a.input;
  o.output = batch::shard_path(a.output, o.shard);
  o.errors = a.errors.empty() ? std::string() : batch::shard_path(a.errors, o.shard);
  o.created = a.created;
  o.sync_interval_s = a.fsync_interval;
  if (!std::filesystem::exists(o.input)) fail("-i {}: no such file", o.input);

  engine::EngineOptions eo;
  eo.max_batch = a.max_batch;
  eo.kv_budget = a.kv_budget.empty() ? 0 : parse_size(a.kv_budget, "--kv-budget");
  eo.max_queue = size_t(2 * a.max_batch);  // the runner keeps this many ahead; nothing more waits
  auto tc = limit_threads(a.threads);
  auto model = load_model(a.model, a.streaming);
  model->set_expert_prediction(a.predict_experts);
  // Read before the engine thread starts: what loading read is not the run's.
  const runtime::ProviderStats p0 = model->provider().stats();
  eo.n_ctx = context_size(a.ctx, model->hparams(), "--ctx-size");
  if (a.kv_budget.empty()) eo.kv_budget = default_kv_budget(*model, eo.max_batch, eo.n_ctx);
  engine::Engine eng(*model, eo);
  server::ModelContext ctx;
  fill_model_context(ctx, *model, a.model, a.alias, a.chat_template, eo.n_ctx);

  const engine::EngineStats s0 = eng.stats();
  StopSignals signals;
  batch::RunCounts seen;
  Progress bar("batch", 0, Progress::Unit::Items, "requests");
  bar.set_detail(
      [&] { return fmt::format("{:.1f} tok/s", seen.seconds > 0 ? double(seen.generated_tokens) / seen.seconds : 0.0); },
      [&] {
        return nlohmann::json{{"ok", seen.ok}, {"failed", seen.failed}, {"already_done", seen.already},
                              {"requests", seen.requests}, {"generated_tokens", seen.generated_tokens},
                              {"generated_tok_s", seen.seconds > 0 ? double(seen.generated_tokens) / seen.seconds : 0.0}};
      });
  const batch::RunCounts c = batch::run_batch(o, eng, ctx, g_stop, [&](const batch::RunCounts& now) {
    seen = now;
    bar.set_total(now.requests - now.already);
    bar.update(now.ok + now.failed);
  });
  seen = c;
  bar.finish();
  eng.stop(0);  // joins the engine thread: its last counters are in the snapshot
  const nlohmann::json j = summary_json(c, s0, eng.stats(), p0, model->provider().stats(), o, eo);
  if (a.json) std::printf("%s\n", j.dump(1).c_str());
  else print_summary(j);
  if (c.stopped) {
    std::fprintf(stderr, "strata: batch stopped by a signal with %llu of %llu requests done; run the same command to continue\n",
                 (unsigned long long)c.done(), (unsigned long long)c.requests);
    return 130;
  }
  return 0;
}

int run_merge(const MergeArgs& a) {
  batch::MergeOptions o{a.input, a.parts, a.output, a.errors};
  const batch::MergeCounts c = batch::merge_outputs(o);
  std::printf("merged %llu records (%llu ok, %llu failed) from %zu files into %s\n", (unsigned long long)c.records,
              (unsigned long long)c.ok, (unsigned long long)c.failed, a.parts.size(), a.output.c_str());
  return 0;
}

}  // namespace

void add_batch_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BatchArgs>();
  CLI::App* c = app.add_subcommand("batch", "Offline generation over an OpenAI Batch JSONL file (resumable, sharded)");
  c->add_option("-m,--model", a->model, "GGUF model file");
  c->add_option("-i,--input", a->input, "Input: OpenAI Batch API lines (/v1/chat/completions, /v1/completions)");
  c->add_option("-o,--output", a->output,
                "Output JSONL, appended to and resumed from ({shard} is replaced by the shard index)");
  c->add_option("--errors", a->errors, "Error lines go here (default: into the output)");
  add_streaming_flags(c, a->streaming);
  c->add_option("--max-batch", a->max_batch, "Sequences decoded together")->check(integer_at_least(1, 4096));
  c->add_option("--kv-budget", a->kv_budget,
                "KV cache budget across sequences (e.g. 2G; default: every slot's full context, at most a quarter of RAM)");
  add_context_flag(c, a->ctx, "Context per sequence (default 0: the model's trained length)");
  add_threads_flag(c, a->threads);
  c->add_option("--shard", a->shard, "Answer shard I of N: the lines i with i mod N == I (0-based), e.g. 0/4");
  c->add_option("--shards", a->shards,
                "Number of shards when the index comes from JOB_COMPLETION_INDEX (or set STRATA_BATCH_SHARDS)")
      ->check(integer_at_least(1, int64_t(1) << 30));
  c->add_option("--alias", a->alias, "Model name in the answers (default: the file name without .gguf)");
  c->add_option("--chat-template", a->chat_template, "Jinja chat template file (default: the model's, else ChatML)");
  c->add_option("--created", a->created,
                "Unix time reported as 'created' in every answer (default: when it was made; fix it for byte-identical reruns)");
  c->add_option("--fsync-interval", a->fsync_interval, "Seconds between fsyncs of the output while answers arrive")
      ->check(between(0.0, 3600.0));
  c->add_flag("--predict-experts", a->predict_experts, "Read the next layer's predicted experts ahead (streaming)");
  c->add_flag("--json", a->json, "Print the summary as one JSON object");

  auto m = std::make_shared<MergeArgs>();
  CLI::App* mc = c->add_subcommand("merge", "Join shard outputs into one file in input order, checking every line is answered once");
  mc->add_option("-i,--input", m->input, "The input file the shards ran on")->required();
  mc->add_option("-o,--output", m->output, "Merged output")->required();
  mc->add_option("--errors", m->errors, "Error records go here (default: into the output)");
  mc->add_option("parts", m->parts, "Shard output (and error) files")->required();
  mc->callback([m, &exit_code] { exit_code = run_merge(*m); });
  c->require_subcommand(0, 1);
  c->callback([a, c, mc, &exit_code] {
    if (mc->parsed()) return;
    exit_code = run_batch(*a);
  });
}

}  // namespace strata::tools
