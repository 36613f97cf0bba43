#include "server/app.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>

#include "server/json_fields.h"
#include "server/ollama_api.h"
#include "server/openai_api.h"
#include "storage/error.h"

namespace strata::server {


namespace {

enum class Ep {
  Health, Metrics, Models, ModelObject, Chat, Completion,
  OllamaGenerate, OllamaChat, OllamaTags, OllamaShow, OllamaVersion, OllamaPs,
};

struct Route {
  const char* path;
  const char* method;
  Ep ep;
};

constexpr Route kRoutes[] = {
    {"/health", "GET", Ep::Health},
    {"/metrics", "GET", Ep::Metrics},
    {"/v1/models", "GET", Ep::Models},
    {"/v1/chat/completions", "POST", Ep::Chat},
    {"/chat/completions", "POST", Ep::Chat},
    {"/v1/completions", "POST", Ep::Completion},
    {"/completions", "POST", Ep::Completion},
    {"/api/generate", "POST", Ep::OllamaGenerate},
    {"/api/chat", "POST", Ep::OllamaChat},
    {"/api/tags", "GET", Ep::OllamaTags},
    {"/api/show", "POST", Ep::OllamaShow},
    {"/api/version", "GET", Ep::OllamaVersion},
    {"/api/ps", "GET", Ep::OllamaPs},
};
constexpr const char* kModelPrefix = "/v1/models/";

const Route* find_route(const std::string& path, std::string& label) {
  for (const Route& r : kRoutes) {
    if (path == r.path) {
      label = r.path;
      return &r;
    }
  }
  if (path.starts_with(kModelPrefix) && path.size() > std::string_view(kModelPrefix).size()) {
    static constexpr Route kModel = {"/v1/models/{id}", "GET", Ep::ModelObject};
    label = kModel.path;
    return &kModel;
  }
  label = "other";
  return nullptr;
}

bool is_ollama_path(const std::string& target) { return target.starts_with("/api/"); }

std::string path_of(const std::string& target) {
  const auto q = target.find('?');
  return q == std::string::npos ? target : target.substr(0, q);
}

// Percent-decoding for the model id in /v1/models/{id}.
std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit((unsigned char)s[i + 1]) &&
        std::isxdigit((unsigned char)s[i + 2])) {
      out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<spdlog::logger> server_log() {
  static std::shared_ptr<spdlog::logger> log = [] {
    if (auto existing = spdlog::get("server")) return existing;
    return spdlog::stderr_color_mt("server");
  }();
  return log;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= unsigned(x ^ y);
  }
  return diff == 0;
}

App::App(AppOptions opts) : opts_(std::move(opts)) {}

void App::set_model(std::shared_ptr<const LoadedModel> m) { std::atomic_store(&model_, std::move(m)); }
std::shared_ptr<const LoadedModel> App::model() const { return std::atomic_load(&model_); }

bool App::authorized(const HttpRequest& req) const {
  if (opts_.api_key.empty()) return true;
  static constexpr std::string_view kBearer = "Bearer ";
  if (!req.authorization.starts_with(kBearer)) return false;
  return constant_time_equal(req.authorization.substr(kBearer.size()), opts_.api_key);
}

void App::decorate(HttpResponse& r) const {
  if (opts_.cors_origin.empty()) return;
  r.headers.emplace_back("Access-Control-Allow-Origin", opts_.cors_origin);
  if (opts_.cors_origin != "*") r.headers.emplace_back("Vary", "Origin");
}

HttpResponse App::json_response(int status, const json& body) const {
  HttpResponse r;
  r.status = status;
  r.body = dump(body);
  return r;
}

HttpResponse App::error(const std::string& target, const ApiError& e) const {
  HttpResponse r = json_response(e.status, is_ollama_path(target) ? ollama_error_body(e) : openai_error_body(e));
  decorate(r);
  return r;
}

HttpResponse App::refused(const Generation& g, const engine::SubmitResult& sr) const {
  const int status = sr.http_status ? sr.http_status : 503;
  ApiError e(status, sr.error.empty() ? std::string("the engine refused the request") : sr.error, "",
             status == 429 ? "queue_full" : status == 503 ? "unavailable" : "invalid_request");
  HttpResponse r = json_response(status, g.format->error_body(e));
  if (status == 429 || status == 503) r.headers.emplace_back("Retry-After", std::to_string(std::max(1, sr.retry_after_s)));
  decorate(r);
  return r;
}

HttpResponse App::finished(const Generation& g, const Outcome& o) const {
  HttpResponse r;
  try {
    r = json_response(200, g.format->body(o));
  } catch (const ApiError& e) {
    r = json_response(e.status, g.format->error_body(e));
  }
  decorate(r);
  return r;
}

Routed App::route(const HttpRequest& req) {
  Routed out;
  const std::string path = path_of(req.target);
  try {
    const Route* r = find_route(path, out.endpoint);
    if (req.method == "OPTIONS" && !opts_.cors_origin.empty()) {
      out.response.status = 204;
      out.response.content_type.clear();
      out.response.headers = {{"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
                              {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                              {"Access-Control-Max-Age", "86400"}};
      decorate(out.response);
      return out;
    }
    if (!(r && r->ep == Ep::Health) && !authorized(req))
      throw ApiError(401, "Invalid or missing API key: send 'Authorization: Bearer <key>'.", "", "invalid_api_key");
    if (!r) throw ApiError(404, fmt::format("Unknown endpoint: {} {}", req.method, path), "", "unknown_endpoint");
    if (req.method != r->method) {
      out.response = error(path, ApiError(405, fmt::format("Method {} is not allowed for {}; use {}.", req.method, path, r->method),
                                          "", "method_not_allowed"));
      out.response.headers.emplace_back("Allow", r->method);
      return out;
    }
    const auto m = model();
    switch (r->ep) {
      case Ep::Health:
        out.response = json_response(m ? 200 : 503, json{{"status", m ? "ok" : "loading"}});
        break;
      case Ep::Metrics: {
        const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
        engine::EngineStats st;
        if (m) st = m->engine.stats();
        out.response.body = metrics_.render(m ? &st : nullptr, now);
        out.response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        break;
      }
      case Ep::OllamaVersion:
        out.response = json_response(200, ollama_version());
        break;
      default:
        if (!m) {
          ApiError e(503, "The model is still loading; try again shortly.", "", "model_loading");
          out.response = error(path, e);
          out.response.headers.emplace_back("Retry-After", "5");
          return out;
        }
        return route_model(path, req, m);
    }
  } catch (const ApiError& e) {
    out.response = error(path, e);
    return out;
  } catch (const Error& e) {
    out.response = error(path, ApiError(400, e.what()));
    return out;
  } catch (const std::exception& e) {
    server_log()->error("{} {}: internal error: {}", req.method, path, e.what());
    out.response = error(path, ApiError(500, fmt::format("internal error: {}", e.what()), "", "internal_error"));
    return out;
  }
  decorate(out.response);
  return out;
}

Routed App::route_model(const std::string& path, const HttpRequest& req, const std::shared_ptr<const LoadedModel>& m) {
  Routed out;
  std::string label;
  const Route* r = find_route(path, label);
  out.endpoint = label;
  const ModelContext& ctx = m->context;
  auto generation = [&](PreparedRequest p) {
    auto g = std::make_unique<Generation>();
    const bool ollama = p.kind == ApiKind::OllamaGenerate || p.kind == ApiKind::OllamaChat;
    g->format = ollama ? make_ollama_format(p, ctx) : make_openai_format(p, ctx);
    g->prepared = std::move(p);
    g->model = m;
    out.generation = std::move(g);
  };
  switch (r->ep) {
    case Ep::Models:
      out.response = json_response(200, models_list(ctx));
      break;
    case Ep::ModelObject: {
      const std::string id = url_decode(path.substr(std::string_view(kModelPrefix).size()));
      if (!ctx.accepts(id))
        throw ApiError(404, fmt::format("The model '{}' does not exist. This server serves '{}'.", id, ctx.id), "model",
                       "model_not_found");
      out.response = json_response(200, model_object(ctx));
      break;
    }
    case Ep::Chat:
      generation(prepare_chat(parse_body(req.body), ctx));
      break;
    case Ep::Completion:
      generation(prepare_completion(parse_body(req.body), ctx));
      break;
    case Ep::OllamaGenerate:
    case Ep::OllamaChat: {
      PreparedRequest p = r->ep == Ep::OllamaGenerate ? prepare_generate(parse_body(req.body), ctx)
                                                       : prepare_ollama_chat(parse_body(req.body), ctx);
      if (p.load_only) {
        out.response = json_response(200, ollama_response(p, Outcome{}));
        if (p.stream) {
          out.response.content_type = "application/x-ndjson";
          out.response.body += "\n";
        }
      } else {
        generation(std::move(p));
      }
      break;
    }
    case Ep::OllamaTags:
      out.response = json_response(200, ollama_tags(ctx, m->details));
      break;
    case Ep::OllamaShow:
      out.response = json_response(200, ollama_show(parse_body(req.body), ctx, m->details));
      break;
    case Ep::OllamaPs:
      out.response = json_response(200, ollama_ps(ctx, m->details));
      break;
    default:
      throw ApiError(500, "unrouted endpoint", "", "internal_error");
  }
  if (!out.generation) decorate(out.response);
  return out;
}

}  // namespace strata::server
