// The server's routing without any HTTP library: a request (method, target, headers, body)
// becomes either a complete response or a Generation for the session to run on the engine.
// Auth, CORS, /health, the listing endpoints and the error shapes live here; never throws.
#pragma once
#include <spdlog/logger.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/engine/request.h"
#include "server/api_types.h"
#include "server/metrics.h"
#include "server/model_info.h"

namespace strata::server {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query
  std::string body;
  std::string authorization;  // the Authorization header ("" when absent)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (CORS, Retry-After)
};

// How the server reaches the engine (the real engine::Engine in `strata serve`; tests may pass
// their own). submit/cancel are thread-safe; the sink runs on the engine's thread.
struct EngineHandle {
  std::function<engine::SubmitResult(engine::Request, engine::Sink)> submit;
  std::function<void(engine::RequestId)> cancel;
  std::function<engine::EngineStats()> stats;
};

// Everything requests need once the model is loaded.
struct LoadedModel {
  ModelContext context;
  ModelDetails details;
  EngineHandle engine;
};

// A request for the engine, prepared: what to submit and how to format its events.
struct Generation {
  PreparedRequest prepared;
  std::unique_ptr<ResponseFormat> format;
  std::shared_ptr<const LoadedModel> model;  // keeps the context alive while it runs
};

struct Routed {
  std::string endpoint;                   // the metrics label ("/v1/chat/completions", "other")
  HttpResponse response;                  // when there is no generation
  std::unique_ptr<Generation> generation;
};

struct AppOptions {
  std::string api_key;      // "" = no auth
  std::string cors_origin;  // "" = no CORS headers
};

class App {
 public:
  explicit App(AppOptions opts);

  // Thread-safe: /health turns 200 and model endpoints open once a model is set.
  void set_model(std::shared_ptr<const LoadedModel> m);
  std::shared_ptr<const LoadedModel> model() const;

  Routed route(const HttpRequest& req);

  // The response to an engine refusal (its status; Retry-After on 429).
  HttpResponse refused(const Generation& g, const engine::SubmitResult& r) const;
  // The non-streamed response of a finished generation (500 for an engine error).
  HttpResponse finished(const Generation& g, const Outcome& o) const;
  // An error response in the shape the target's API uses (Ollama for /api/*, else OpenAI).
  HttpResponse error(const std::string& target, const ApiError& e) const;
  // Adds the CORS headers when configured.
  void decorate(HttpResponse& r) const;
  const std::string& cors_origin() const { return opts_.cors_origin; }

  Metrics& metrics() { return metrics_; }

 private:
  bool authorized(const HttpRequest& req) const;
  HttpResponse json_response(int status, const json& body) const;
  Routed route_model(const std::string& path, const HttpRequest& req, const std::shared_ptr<const LoadedModel>& m);

  AppOptions opts_;
  std::shared_ptr<const LoadedModel> model_;  // read and written with std::atomic_load/store
  Metrics metrics_;
};

// The server's logger ("server", on stderr).
std::shared_ptr<spdlog::logger> server_log();

// Compares without an early exit, so the time taken does not reveal where a key differs.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace strata::server
