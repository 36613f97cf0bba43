// `strata perplexity`: llama.cpp-compatible perplexity of a text file.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "models/generate.h"
#include "models/model.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/streaming_flags.h"

namespace strata::tools {
namespace {

struct PplArgs {
  std::string model, file;
  int64_t ctx = 512;
  int threads = 0;
  int batch = 4;
  bool json = false;
  StreamingFlags streaming;
};

int run(const PplArgs& a) {
  auto tc = limit_threads(a.threads);
  std::string text = read_file_bytes(a.file);
  auto model = models::Model::load(a.model, load_options(a.streaming));
  models::PerplexityResult r = models::perplexity(*model, text, a.ctx, a.batch);
  if (a.json) {
    nlohmann::json j{{"ppl", r.ppl},           {"ppl_stderr", r.ppl_stderr}, {"n_chunks", r.n_chunks},
                     {"n_ctx", a.ctx},         {"n_scored", r.n_scored},     {"seconds", r.seconds},
                     {"running_ppl", r.running_ppl}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("perplexity: %.4f +/- %.5f (%lld chunks of %lld tokens, %.2f s)\n", r.ppl, r.ppl_stderr,
                static_cast<long long>(r.n_chunks), static_cast<long long>(a.ctx), r.seconds);
  }
  return 0;
}

}  // namespace

void add_perplexity_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<PplArgs>();
  CLI::App* c = app.add_subcommand("perplexity", "Perplexity of a text file (llama.cpp's method)");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("-f,--file", a->file, "Text file")->required();
  c->add_option("-c,--ctx", a->ctx, "Window size in tokens");
  c->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  c->add_option("-b,--batch", a->batch, "Windows evaluated together as one batch");
  c->add_flag("--json", a->json, "Print one JSON object");
  add_streaming_flags(c, a->streaming);
  c->callback([a, &exit_code] { exit_code = run(*a); });
}

}  // namespace strata::tools
