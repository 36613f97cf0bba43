// `strata perplexity`: llama.cpp-compatible perplexity of a text file, printed as llama.cpp's
// tool prints it: the running value after each window ("[1]5.1234,[2]...") and then
// "Final estimate: PPL = X +/- Y".
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "models/generate.h"
#include "models/model.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/model_flags.h"
#include "tools/progress.h"
#include "tools/streaming_flags.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

// llama.cpp's perplexity default window, used unless the model was trained on fewer tokens.
constexpr int64_t kDefaultWindow = 512;

struct PplArgs {
  std::string model, file;
  int64_t ctx = 0;
  int threads = 0;
  int batch = 2048;  // tokens per forward batch, as llama.cpp's -b: windows = max(1, b / ctx)
  int gpu_layers = 0;
  bool json = false;
  StreamingFlags streaming;
};

int run(const PplArgs& a) {
  check_streaming_flags(a.streaming);
  auto tc = limit_threads(a.threads);
  note_gpu_layers(a.gpu_layers);
  std::string text = read_file_bytes(a.file);
  auto model = load_model(a.model, a.streaming);
  const int64_t ctx = context_size(a.ctx, model->hparams(), "--ctx-size", kDefaultWindow);
  const int windows = static_cast<int>(std::max<int64_t>(1, a.batch / ctx));

  // The running values are the progress on a terminal; elsewhere (stdout to a file) a bar on
  // stderr says how far along it is.
  const bool values_live = !a.json;
  std::unique_ptr<Progress> bar;
  if (!values_live || ::isatty(STDOUT_FILENO) != 1) bar = std::make_unique<Progress>("perplexity", 0, Progress::Unit::Items, "chunks");
  auto on_chunk = [&](int64_t chunk, int64_t n_chunks, double running) {
    if (values_live) {
      std::printf("[%lld]%.4f,", static_cast<long long>(chunk + 1), running);
      std::fflush(stdout);
    }
    if (bar) {
      bar->set_total(static_cast<uint64_t>(n_chunks));
      bar->update(static_cast<uint64_t>(chunk + 1));
    }
  };
  models::PerplexityResult r = models::perplexity(*model, text, ctx, windows, on_chunk);
  if (bar) bar->finish();
  if (!std::isfinite(r.ppl))
    fail("perplexity is {}: the model's logits are not finite numbers", r.ppl);
  if (a.json) {
    nlohmann::json j{{"ppl", r.ppl},           {"ppl_stderr", r.ppl_stderr}, {"n_chunks", r.n_chunks},
                     {"n_ctx", ctx},           {"n_scored", r.n_scored},     {"seconds", r.seconds},
                     {"running_ppl", r.running_ppl}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_stderr);
    std::fprintf(stderr, "perplexity: %lld chunks of %lld tokens, %d per batch, %.2f s\n",
                 static_cast<long long>(r.n_chunks), static_cast<long long>(ctx), windows, r.seconds);
  }
  return 0;
}

}  // namespace

void add_perplexity_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<PplArgs>();
  CLI::App* c = app.add_subcommand("perplexity", "Perplexity of a text file (llama.cpp's method)");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("-f,--file", a->file, "Text file")->required();
  add_context_flag(c, a->ctx, "Window size in tokens (default: 512, or the model's trained length when shorter)");
  add_threads_flag(c, a->threads);
  c->add_option("-b,--batch-size", a->batch,
                "Tokens per forward batch, as llama.cpp's -b: max(1, b / ctx) windows are evaluated together")
      ->check(integer_at_least(1));
  add_gpu_layers_flag(c, a->gpu_layers);
  c->add_flag("--json", a->json, "Print one JSON object");
  add_streaming_flags(c, a->streaming);
  c->callback([a, &exit_code] { exit_code = run(*a); });
}

}  // namespace strata::tools
