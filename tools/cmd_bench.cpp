// `strata bench`: prompt-processing and generation speed, llama-bench style. Tokens are fixed
// pseudo-random ids (no tokenizer involved), each repetition starts from an empty cache.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>

#include "models/model.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/bench_stream.h"
#include "tools/common.h"

namespace strata::tools {
namespace {

struct BenchArgs {
  std::string model;
  int n_prompt = 64, n_gen = 32, reps = 5, threads = 0, batch = 1;
  bool json = false;
  StreamingFlags streaming;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Series {
  std::vector<double> ts;  // tokens/s of each repetition
  double avg() const { return std::accumulate(ts.begin(), ts.end(), 0.0) / ts.size(); }
  double median() const {
    std::vector<double> v = ts;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  }
  double stddev() const {
    if (ts.size() < 2) return 0;
    const double m = avg();
    double s = 0;
    for (double x : ts) s += (x - m) * (x - m);
    return std::sqrt(s / (ts.size() - 1));
  }
};

int run(const BenchArgs& a) {
  auto tc = limit_threads(a.threads);
  const int threads = static_cast<int>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  auto model = models::Model::load(a.model);
  const auto& hp = model->hparams();
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(hp.n_vocab - 1));
  std::vector<int32_t> prompt(a.n_prompt);
  for (auto& t : prompt) t = dist(rng);
  models::ForwardOutput out;
  uint64_t model_size = 0;
  for (const auto& t : model->file().tensors()) model_size += t.nbytes;

  Series pp, tg;
  // One untimed warm-up of each kind (page cache, allocator, thread pool).
  for (int r = -1; r < a.reps; ++r) {
    if (a.n_prompt > 0) {
      auto kv = model->new_cache(a.n_prompt + 1);
      models::BatchItem item{&kv, prompt, false};
      const double t0 = now_s();
      model->forward(std::span<models::BatchItem>(&item, 1), out);
      const double dt = now_s() - t0;
      if (r >= 0) pp.ts.push_back(a.n_prompt / dt);
    }
    if (a.n_gen > 0) {
      auto kv = model->new_cache(a.n_gen + 1);
      int32_t tok = prompt.empty() ? 1 : prompt[0];
      const double t0 = now_s();
      for (int i = 0; i < a.n_gen; ++i) {
        models::BatchItem item{&kv, std::span<const int32_t>(&tok, 1), false};
        model->forward(std::span<models::BatchItem>(&item, 1), out);
        tok = static_cast<int32_t>(std::max_element(out.row(0), out.row(0) + out.n_vocab) - out.row(0));
      }
      const double dt = now_s() - t0;
      if (r >= 0) tg.ts.push_back(a.n_gen / dt);
    }
  }

  std::string type;
  if (auto ft = model->file().get_uint("general.file_type")) type = fmt::format("file_type {}", *ft);
  nlohmann::json arr = nlohmann::json::array();
  auto emit = [&](const Series& s, int np, int ng) {
    if (s.ts.empty()) return;
    arr.push_back({{"model_filename", a.model}, {"model_type", hp.arch + " " + type}, {"type", hp.arch},
                   {"model_size", model_size}, {"n_prompt", np}, {"n_gen", ng}, {"n_threads", threads},
                   {"avg_ts", s.avg()}, {"median_ts", s.median()}, {"stddev_ts", s.stddev()},
                   {"samples_ts", s.ts}, {"n_reps", a.reps}});
    if (!a.json)
      std::printf("%-40s %s%-5d %10.2f ± %.2f tok/s (median %.2f)\n", a.model.c_str(), np ? "pp" : "tg",
                  np ? np : ng, s.avg(), s.stddev(), s.median());
  };
  emit(pp, a.n_prompt, 0);
  emit(tg, 0, a.n_gen);
  if (a.json) std::cout << arr.dump(1) << "\n";
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand(
      "bench", "Prompt and generation speed (llama-bench style); with --memory-budget, streaming decode speed");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens")->check(CLI::NonNegativeNumber);
  c->add_option("-n,--n-gen", a->n_gen, "Generated tokens")->check(CLI::NonNegativeNumber);
  c->add_option("-r,--reps", a->reps, "Repetitions")->check(CLI::PositiveNumber);
  c->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  c->add_flag("--json", a->json, "Print JSON");
  c->add_option("-b,--batch", a->batch, "Sequences decoded together (streaming mode)")->check(CLI::PositiveNumber);
  add_streaming_flags(c, a->streaming);
  c->callback([a, &exit_code] {
    if (a->streaming.memory_budget.empty()) {
      exit_code = run(*a);
      return;
    }
    StreamBenchArgs s;
    s.model = a->model;
    s.streaming = a->streaming;
    s.n_gen = a->n_gen;
    s.batch = a->batch;
    s.threads = a->threads;
    s.json = a->json;
    exit_code = run_stream_bench(s);
  });
}

}  // namespace strata::tools
