// `strata run`: generate text from a prompt, streaming it, then one line of speed figures
// (or one JSON object with --json).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "models/generate.h"
#include "models/model.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/streaming_flags.h"

namespace strata::tools {
namespace {

struct RunArgs {
  std::string model, prompt, prompt_file;
  int n_predict = 64;
  int threads = 0;
  int64_t ctx = 0;
  bool json = false;
  StreamingFlags streaming;
  models::SamplingParams sp;
  std::vector<std::string> stop;
};

int run(const RunArgs& a) {
  auto tc = limit_threads(a.threads);
  std::string prompt = a.prompt_file.empty() ? a.prompt : read_file_bytes(a.prompt_file);
  models::validate(a.sp);
  const auto t0 = std::chrono::steady_clock::now();
  auto model = models::Model::load(a.model, load_options(a.streaming));
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  models::GenerateOptions opts;
  opts.n_predict = a.n_predict;
  opts.sampling = a.sp;
  opts.stop = a.stop;
  opts.n_ctx = a.ctx;
  std::function<void(std::string_view)> sink;
  if (!a.json) {
    sink = [](std::string_view s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    };
  }
  models::GenerateResult r = models::generate(*model, prompt, opts, sink);
  r.stats.load_s = load_s;
  StreamSummary sum;
  sum.seconds = r.stats.gen_s;
  sum.tokens = r.stats.gen_tokens;
  sum.before = r.decode_start;
  sum.after = r.decode_end;
  sum.routing = r.decode_routing;
  sum.peak_rss = peak_rss_bytes();
  sum.kv_cache_bytes = r.stats.kv_cache_bytes;
  const bool streamed = !a.streaming.memory_budget.empty();
  if (a.json) {
    nlohmann::json j;
    j["prompt_tokens"] = r.prompt_ids;
    j["tokens"] = r.tokens;
    j["text"] = r.text;
    nlohmann::json top = nlohmann::json::array();
    for (auto& [id, v] : r.top_logits) top.push_back({id, v});
    j["top_logits"] = top;
    j["stats"] = {{"load_s", r.stats.load_s},
                  {"prompt_tokens", r.stats.prompt_tokens},
                  {"prompt_s", r.stats.prompt_s},
                  {"prompt_tokens_per_s", r.stats.prompt_tps()},
                  {"gen_tokens", r.stats.gen_tokens},
                  {"gen_s", r.stats.gen_s},
                  {"gen_tokens_per_s", r.stats.gen_tps()}};
    if (streamed) j["stats"]["streaming"] = sum.to_json();
    // Generated text may hold invalid UTF-8 (a token split mid-character): replace, don't throw.
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::printf("\n");
    std::fflush(stdout);  // the text ends before the figures on stderr begin
    std::fprintf(stderr, "prompt: %lld tokens, %.1f tok/s | generation: %lld tokens, %.1f tok/s\n",
                 static_cast<long long>(r.stats.prompt_tokens), r.stats.prompt_tps(),
                 static_cast<long long>(r.stats.gen_tokens), r.stats.gen_tps());
    if (streamed) std::fprintf(stderr, "%s\n", sum.line().c_str());
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* c = app.add_subcommand("run", "Generate text from a prompt");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  auto* p = c->add_option("-p,--prompt", a->prompt, "Prompt text");
  auto* f = c->add_option("-f,--file", a->prompt_file, "Prompt file (read as exact bytes)");
  p->excludes(f);
  c->add_option("-n,--n-predict", a->n_predict, "Tokens to generate")->check(CLI::NonNegativeNumber);
  c->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  c->add_option("-c,--ctx", a->ctx, "Context size (default: prompt + n)");
  c->add_option("--temp", a->sp.temperature, "Temperature (0: greedy)");
  c->add_option("--seed", a->sp.seed, "Random seed");
  c->add_option("--top-k", a->sp.top_k, "Top-k (0: off)");
  c->add_option("--top-p", a->sp.top_p, "Top-p (1: off)");
  c->add_option("--min-p", a->sp.min_p, "Min-p (0: off)");
  c->add_option("--repeat-penalty", a->sp.repeat_penalty, "Repetition penalty (1: off)");
  c->add_option("--repeat-last-n", a->sp.repeat_last_n, "Window of the repetition penalty");
  c->add_option("--frequency-penalty", a->sp.frequency_penalty, "Frequency penalty");
  c->add_option("--presence-penalty", a->sp.presence_penalty, "Presence penalty");
  c->add_option("--stop", a->stop, "Stop string (repeatable)");
  c->add_flag("--json", a->json, "Print one JSON object instead of streaming text");
  add_streaming_flags(c, a->streaming);
  c->callback([a, c, &exit_code] {
    if (a->prompt.empty() && a->prompt_file.empty() && c->count("--prompt") == 0)
      throw CLI::RequiredError("one of --prompt or --file");
    exit_code = run(*a);
  });
}

}  // namespace strata::tools
