// `strata serve`: the OpenAI- and Ollama-compatible HTTP server. It listens first (so /health
// answers "loading"), loads the model, starts the engine, and serves until SIGINT/SIGTERM; then
// it stops accepting, lets running streams end (cut ones still get their final chunk) and exits 0.
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "models/engine/engine.h"
#include "models/model.h"
#include "server/app.h"
#include "server/http_server.h"
#include "server/model_info.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/model_context.h"
#include "tools/model_flags.h"
#include "tools/streaming_flags.h"
#include "tools/validators.h"

namespace strata::tools {
namespace {

struct ServeArgs {
  std::string model;
  StreamingFlags streaming;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key, api_key_file;
  int max_batch = 16;
  std::string kv_budget;
  int64_t ctx = 0;
  std::string alias;
  std::string chat_template;
  std::string cors_origin;
  int threads = 0;
  int gpu_layers = 0;
  int max_queue = 64;
  std::string body_limit = "4M";
  double idle_timeout = 60;
  int max_connections = 256;
  double shutdown_grace = 5;
  bool predict_experts = false;
};

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

int serve(const ServeArgs& a) {
  std::string api_key = a.api_key;
  if (!a.api_key_file.empty()) {
    api_key = trim(read_file_bytes(a.api_key_file));
    if (api_key.empty()) fail("--api-key-file {}: the file is empty", a.api_key_file);
  }
  engine::EngineOptions eo;
  eo.max_batch = a.max_batch;
  eo.kv_budget = a.kv_budget.empty() ? 0 : parse_size(a.kv_budget, "--kv-budget");
  eo.n_ctx = a.ctx;
  eo.max_queue = size_t(a.max_queue);
  check_streaming_flags(a.streaming);  // before listening: a bad flag never opens a port
  note_gpu_layers(a.gpu_layers);

  server::ServerOptions so;
  so.host = a.host;
  so.port = uint16_t(a.port);
  so.body_limit = parse_size(a.body_limit, "--body-limit");
  so.idle_timeout_s = a.idle_timeout;
  so.max_connections = a.max_connections;
  server::App app({api_key, a.cors_origin});
  auto tc = limit_threads(a.threads);

  // Declared in this order so that, on any exit, the server's threads stop before the engine
  // and model they call into are destroyed, and the engine stops before the server goes away.
  server::HttpServer http(app, so);
  std::unique_ptr<models::Model> model;
  std::unique_ptr<engine::Engine> eng;
  struct Shutdown {
    server::HttpServer& http;
    std::unique_ptr<engine::Engine>& eng;
    server::App& app;
    double grace;
    ~Shutdown() {
      http.stop_accepting();
      if (eng) eng->stop(grace);
      http.stop(2.0);
      app.set_model(nullptr);
    }
  } shutdown{http, eng, app, a.shutdown_grace};

  const uint16_t port = http.start();
  std::printf("listening on http://%s:%u\n", a.host.c_str(), unsigned(port));
  std::fflush(stdout);

  const auto t0 = std::chrono::steady_clock::now();
  model = load_model(a.model, a.streaming);
  model->set_expert_prediction(a.predict_experts);
  eo.n_ctx = context_size(eo.n_ctx, model->hparams(), "--ctx-size");
  if (a.kv_budget.empty()) eo.kv_budget = default_kv_budget(*model, eo.max_batch, eo.n_ctx);
  eng = std::make_unique<engine::Engine>(*model, eo);

  auto loaded = std::make_shared<server::LoadedModel>();
  server::ModelContext& ctx = loaded->context;
  fill_model_context(ctx, *model, a.model, a.alias, a.chat_template, eng->options().n_ctx);
  loaded->details = server::describe_model(model->file());
  ctx.created = loaded->details.modified;
  engine::Engine* e = eng.get();
  loaded->engine.submit = [e](engine::Request r, engine::Sink s) { return e->submit(std::move(r), std::move(s)); };
  loaded->engine.cancel = [e](engine::RequestId id) { e->cancel(id); };
  loaded->engine.stats = [e] { return e->stats(); };
  app.set_model(loaded);
  server::server_log()->info("model {} loaded in {:.1f} s as '{}' (context {} tokens, KV budget {:.1f} MiB)", a.model,
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), ctx.id, ctx.n_ctx,
                             double(eo.kv_budget) / (1 << 20));

  http.wait_for_stop();
  return 0;  // Shutdown's destructor stops accepting, drains the engine, then the server
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* c = app.add_subcommand("serve", "OpenAI- and Ollama-compatible HTTP server");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  add_streaming_flags(c, a->streaming);
  c->add_option("--host", a->host, "Address to listen on");
  c->add_option("--port", a->port, "Port (0: any free port)")->check(between(0, 65535));
  auto* key = c->add_option("--api-key", a->api_key, "Require 'Authorization: Bearer KEY' (all but /health)");
  auto* key_file = c->add_option("--api-key-file", a->api_key_file, "Read the API key from this file");
  key->excludes(key_file);
  c->add_option("--max-batch", a->max_batch, "Sequences in the running batch")->check(integer_at_least(1, 4096));
  c->add_option("--kv-budget", a->kv_budget,
                "KV cache budget across sequences (e.g. 2G; default: every slot's full context, at most a quarter of RAM)");
  c->add_flag("--predict-experts", a->predict_experts,
              "Read the next layer's predicted experts ahead (streaming; off: mispredictions cost reads)");
  add_context_flag(c, a->ctx, "Context per sequence (default 0: the model's trained length)");
  add_gpu_layers_flag(c, a->gpu_layers);
  c->add_option("--alias", a->alias, "Model name reported to clients (default: the file name without .gguf)");
  c->add_option("--chat-template", a->chat_template, "Jinja chat template file (default: the model's, else ChatML)");
  c->add_option("--cors-origin", a->cors_origin, "Send CORS headers allowing this origin ('*' for any)");
  add_threads_flag(c, a->threads);
  c->add_option("--max-queue", a->max_queue, "Requests waiting for a batch slot before 429")->check(integer_at_least(0, 1 << 20));
  c->add_option("--body-limit", a->body_limit, "Largest request body (e.g. 4M)");
  c->add_option("--idle-timeout", a->idle_timeout, "Seconds a silent connection stays open")->check(between(0.1, 86400.0));
  c->add_option("--max-connections", a->max_connections, "Open connections before 503")->check(integer_at_least(1, 1 << 20));
  c->add_option("--shutdown-grace", a->shutdown_grace, "Seconds running requests get to finish on SIGTERM")
      ->check(between(0.0, 3600.0));
  c->callback([a, &exit_code] { exit_code = serve(*a); });
}

}  // namespace strata::tools
