// `strata bench`: prompt-processing and generation speed, llama-bench style. Tokens are fixed
// pseudo-random ids (no tokenizer involved), each repetition starts from an empty cache.
// Comma lists (-p 64,512 -n 32 -t 2,4) give one row per test and setting, in llama-bench's
// order: for each thread count, the pp rows, then the tg rows.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include "models/model.h"
#include "storage/error.h"
#include "tools/bench_report.h"
#include "tools/bench_stream.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/load_bench.h"
#include "tools/model_flags.h"
#include "tools/progress.h"
#include "tools/routing_trace_flag.h"
#include "tools/streaming_flags.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

struct BenchArgs {
  std::string model;
  std::vector<int> n_prompt{64}, n_gen{32}, threads{0}, batch{1};
  int reps = 5;
  int n_gpu_layers = 0;
  double compute_s_per_token = 0;
  std::string output = "md";
  bool json = false;
  bool load = false;
  std::string trace_routing;
  StreamingFlags streaming;
  CLI::Option *prompt_opt = nullptr, *batch_opt = nullptr, *output_opt = nullptr, *reps_opt = nullptr;
};

uint64_t elapsed_ns(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
}

// One test at one thread count: an untimed warm-up (page cache, allocator, thread pool), then
// `reps` timed runs, each from an empty cache.
class ResidentBench {
 public:
  ResidentBench(models::Model& model, const BenchModel& info, int reps, Progress& bar, int max_prompt)
      : model_(model), info_(info), reps_(reps), bar_(bar) {
    std::mt19937 rng(42);
    std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(model.hparams().n_vocab - 1));
    prompt_.resize(static_cast<size_t>(std::max(1, max_prompt)));
    for (auto& t : prompt_) t = dist(rng);
  }

  BenchRow prompt(int n, int n_threads) {
    BenchRow row = bench_row(info_, 1, n_threads, n, 0);
    add_timing(row, n, repeat([&] {
                 auto kv = model_.new_cache(n + 1);
                 models::BatchItem item{&kv, std::span<const int32_t>(prompt_.data(), size_t(n)), false};
                 const auto t0 = std::chrono::steady_clock::now();
                 model_.forward(std::span<models::BatchItem>(&item, 1), out_);
                 return elapsed_ns(t0);
               }));
    return row;
  }

  BenchRow generate(int n, int n_threads) {
    BenchRow row = bench_row(info_, 1, n_threads, 0, n);
    add_timing(row, n, repeat([&] {
                 auto kv = model_.new_cache(n + 1);
                 int32_t tok = prompt_[0];
                 const auto t0 = std::chrono::steady_clock::now();
                 for (int i = 0; i < n; ++i) {
                   models::BatchItem item{&kv, std::span<const int32_t>(&tok, 1), false};
                   model_.forward(std::span<models::BatchItem>(&item, 1), out_);
                   tok = static_cast<int32_t>(std::max_element(out_.row(0), out_.row(0) + out_.n_vocab) - out_.row(0));
                 }
                 return elapsed_ns(t0);
               }));
    return row;
  }

 private:
  template <class Run>
  std::vector<uint64_t> repeat(Run&& run) {
    run();
    std::vector<uint64_t> ns;
    for (int r = 0; r < reps_; ++r) {
      ns.push_back(run());
      bar_.add(1);
    }
    return ns;
  }

  models::Model& model_;
  const BenchModel& info_;
  int reps_;
  Progress& bar_;
  std::vector<int32_t> prompt_;
  models::ForwardOutput out_;
};

BenchReport run_resident(const BenchArgs& a) {
  auto model = load_model(a.model, a.streaming);
  const BenchModel info = describe_bench_model(a.model, model->file());
  auto positive = [](int n) { return n > 0; };
  const auto n_tests = std::count_if(a.n_prompt.begin(), a.n_prompt.end(), positive) +
                       std::count_if(a.n_gen.begin(), a.n_gen.end(), positive);
  Progress bar("bench", uint64_t(n_tests) * a.threads.size() * uint64_t(a.reps), Progress::Unit::Items, "runs");
  RoutingTraceRecorder trace(*model, a.trace_routing);
  ResidentBench bench(*model, info, a.reps, bar, *std::max_element(a.n_prompt.begin(), a.n_prompt.end()));
  BenchReport report;
  for (int threads : a.threads) {
    // One limit at a time: oneTBB applies the smallest of those alive.
    auto tc = limit_threads(threads);
    const int n_threads =
        static_cast<int>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
    for (int n : a.n_prompt)
      if (n > 0) report.rows.push_back(bench.prompt(n, n_threads));
    for (int n : a.n_gen)
      if (n > 0) report.rows.push_back(bench.generate(n, n_threads));
  }
  bar.finish();
  trace.finish();
  return report;
}

// Flag combinations that cannot mean what the user wants, refused before the model loads.
BenchFormat check_args(const BenchArgs& a) {
  if (a.json && a.output_opt->count() > 0 && a.output != "json")
    fail("--json and -o {} disagree: --json is short for -o json", a.output);
  const BenchFormat format = parse_bench_format(a.json ? "json" : a.output);
  auto positive = [](int n) { return n > 0; };
  if (!a.streaming.streamed()) {
    if (a.batch_opt->count() > 0)
      fail("-b/--batch only applies when streaming: add --memory-budget SIZE (it sets how many sequences decode "
           "together; without a budget each prompt already runs as one batch)");
    if (!a.load && std::none_of(a.n_prompt.begin(), a.n_prompt.end(), positive) &&
        std::none_of(a.n_gen.begin(), a.n_gen.end(), positive))
      fail("-p/--n-prompt and -n/--n-gen are all 0: nothing to measure");
  } else if (a.prompt_opt->count() > 0 && std::any_of(a.n_prompt.begin(), a.n_prompt.end(), positive)) {
    fail("-p/--n-prompt: the streamed bench (--memory-budget) measures decode only; leave -p out or give -p 0");
  }
  return format;
}

// The load benchmark (tools/load_bench.h) in place of the speed tests.
int run_load(const BenchArgs& a, BenchFormat format) {
  if (a.streaming.streamed()) fail("--load measures loading into RAM: leave out --memory-budget");
  if (!a.trace_routing.empty()) fail("--trace-routing: --load runs no forward steps, so there is no routing to trace");
  if (format != BenchFormat::Md && format != BenchFormat::Json) fail("--load prints a summary or JSON: use -o md or -o json");
  if (a.threads.size() > 1) fail("-t/--threads: --load takes one thread count, not a list");
  LoadBenchArgs l;
  l.model = a.model;
  // Each load repetition reads the whole file twice (raw, then load): the speed tests' default
  // of 5 would make a big model's run long for little gain, so only an explicit -r overrides.
  if (a.reps_opt->count() > 0) l.reps = a.reps;
  l.threads = a.threads.front();
  l.json = format == BenchFormat::Json;
  return run_load_bench(l);
}

int run(const BenchArgs& a) {
  const BenchFormat format = check_args(a);
  note_gpu_layers(a.n_gpu_layers);
  if (a.load) return run_load(a, format);
  BenchReport report;
  if (a.streaming.streamed()) {
    StreamBenchArgs s;
    s.model = a.model;
    s.streaming = a.streaming;
    s.n_gen = a.n_gen;
    s.batch = a.batch;
    s.threads = a.threads;
    s.reps = a.reps;
    s.compute_s_per_token = a.compute_s_per_token;
    s.trace_routing = a.trace_routing;
    report = run_stream_bench(s);
  } else {
    report = run_resident(a);
  }
  print_bench_report(report, format);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand(
      "bench", "Prompt and generation speed (llama-bench style); with --memory-budget, streaming decode speed");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  a->prompt_opt = c->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens, comma-separated list (0: no pp test)")
                      ->delimiter(',')
                      ->check(integer_at_least(0));
  c->add_option("-n,--n-gen", a->n_gen, "Generated tokens, comma-separated list (0: no tg test)")
      ->delimiter(',')
      ->check(integer_at_least(0));
  a->reps_opt = c->add_option("-r,--reps", a->reps, "Repetitions of each test")->check(integer_at_least(1));
  c->add_option("-t,--threads", a->threads, "Threads, comma-separated list (default: all cores)")
      ->delimiter(',')
      ->check(integer_at_least(1));
  a->batch_opt = c->add_option("-b,--batch", a->batch,
                               "Sequences decoded together, comma-separated list (streaming only)")
                     ->delimiter(',')
                     ->check(integer_at_least(1));
  a->output_opt = c->add_option("-o,--output", a->output, "Output: md (table), json, jsonl or csv")
                      ->check(CLI::IsMember({"md", "json", "jsonl", "csv"}));
  c->add_flag("--json", a->json, "Same as -o json");
  add_gpu_layers_flag(c, a->n_gpu_layers);
  c->add_flag("--load", a->load, "Measure loading into RAM against the file's raw read speed, instead of the speed tests");
  c->add_option("--compute-s-per-token", a->compute_s_per_token,
                "Streaming: the all-resident compute time per token (1 / a resident tg run's t/s), for the roofline "
                "max(bytes read per token / read speed, this) that ratio_to_roofline compares with")
      ->check(at_least(0));
  add_trace_routing_flag(c, a->trace_routing);
  add_streaming_flags(c, a->streaming);
  c->callback([a, &exit_code] { exit_code = run(*a); });
}

}  // namespace strata::tools
