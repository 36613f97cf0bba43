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
#include "tools/model_flags.h"
#include "tools/routing_trace_flag.h"
#include "tools/streaming_flags.h"
#include "tools/utf8_printer.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

struct RunArgs {
  std::string model, prompt, prompt_file;
  int n_predict = 64;
  int threads = 0;
  int64_t ctx = 0;
  int gpu_layers = 0;
  bool json = false, no_display_prompt = false, ignore_eos = false;
  StreamingFlags streaming;
  std::string trace_routing;
  models::SamplingParams sp;
  std::vector<std::string> stop;
};

int run(const RunArgs& a) {
  check_streaming_flags(a.streaming);
  auto tc = limit_threads(a.threads);
  std::string prompt = a.prompt_file.empty() ? a.prompt : read_file_bytes(a.prompt_file);
  models::validate(a.sp);
  note_gpu_layers(a.gpu_layers);
  const auto t0 = std::chrono::steady_clock::now();
  auto model = load_model(a.model, a.streaming);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RoutingTraceRecorder trace(*model, a.trace_routing);

  models::GenerateOptions opts;
  opts.n_predict = a.n_predict;
  opts.sampling = a.sp;
  opts.stop = a.stop;
  // 0 stays 0 so that generate's messages can say the context is the model's trained length.
  opts.n_ctx = a.ctx == 0 ? 0 : context_size(a.ctx, model->hparams(), "--ctx-size");
  opts.ignore_eos = a.ignore_eos;
  std::function<void(std::string_view)> sink;
  Utf8Printer printer(stdout);
  // As llama.cpp's CLI does, the prompt is shown before its continuation: once generation has
  // started, so that a prompt refused (too long for the context) is not echoed first.
  bool prompt_shown = a.no_display_prompt;
  auto show_prompt = [&] {
    if (!prompt_shown) printer.write(prompt);
    prompt_shown = true;
  };
  if (!a.json) {
    sink = [&](std::string_view s) {
      show_prompt();
      printer.write(s);
    };
  }
  models::GenerateResult r = models::generate(*model, prompt, opts, sink);
  if (!a.json) show_prompt();
  printer.flush();
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
    // Token ids are lists named *_ids; counts live under stats (prompt_tokens, gen_tokens).
    j["prompt_ids"] = r.prompt_ids;
    j["token_ids"] = r.tokens;
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
                  {"gen_tokens_per_s", r.stats.gen_tps()},
                  {"n_ctx", r.n_ctx},
                  {"context_full", r.context_full}};
    if (streamed) j["stats"]["streaming"] = sum.to_json();
    // Generated text may hold invalid UTF-8 (a token split mid-character): replace, don't throw.
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::printf("\n");
    std::fflush(stdout);  // the text ends before the figures on stderr begin
    if (r.context_full)
      std::fprintf(stderr, "strata: stopped after %lld tokens: the context of %lld positions is full (--ctx-size)\n",
                   static_cast<long long>(r.stats.gen_tokens), static_cast<long long>(r.n_ctx));
    std::fprintf(stderr, "prompt: %lld tokens, %.1f tok/s | generation: %lld tokens, %.1f tok/s\n",
                 static_cast<long long>(r.stats.prompt_tokens), r.stats.prompt_tps(),
                 static_cast<long long>(r.stats.gen_tokens), r.stats.gen_tps());
    if (streamed) std::fprintf(stderr, "%s\n", sum.line().c_str());
  }
  trace.finish();
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
  c->add_option("-n,--n-predict", a->n_predict, "Tokens to generate (-1: until the end token or a full context)")
      ->check(integer_at_least(-1));
  add_threads_flag(c, a->threads);
  add_context_flag(c, a->ctx, "Context size in tokens, prompt included (default 0: the model's trained length)");
  add_gpu_layers_flag(c, a->gpu_layers);
  add_sampling_flags(c, a->sp);
  c->add_option("--stop", a->stop, "Stop string (repeatable)");
  c->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-generation tokens");
  c->add_flag("--no-display-prompt", a->no_display_prompt, "Print only the generated text, not the prompt before it");
  c->add_flag("--json", a->json, "Print one JSON object instead of streaming text");
  add_trace_routing_flag(c, a->trace_routing);
  add_streaming_flags(c, a->streaming);
  c->callback([a, c, &exit_code] {
    if (a->prompt.empty() && a->prompt_file.empty() && c->count("--prompt") == 0)
      throw CLI::RequiredError("one of --prompt or --file");
    exit_code = run(*a);
  });
}

}  // namespace strata::tools
