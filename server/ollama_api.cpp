#include "server/ollama_api.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <limits>

#include "models/sampling.h"
#include "server/chat_prompt.h"
#include "server/json_fields.h"
#include "storage/error.h"

namespace strata::server {


namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

// The fields /api/generate and /api/chat share: model, stream, format, options.
void read_common(const Fields& f, PreparedRequest& p) {
  p.stream = f.boolean("stream").value_or(true);
  if (const json* fmt = f.get("format")) {
    if (!(fmt->is_string() && fmt->get<std::string>().empty()))
      bad_param("format", "structured output ('format') is not supported");
  }
  f.boolean("raw");
  f.boolean("think");
  if (const json* ka = f.get("keep_alive"); ka && !ka->is_string() && !ka->is_number())
    f.wrong_type("keep_alive", "a string or a number");

  models::SamplingParams& sp = p.request.sampling;
  sp.temperature = 0.8f;
  sp.top_k = 40;
  sp.top_p = 0.9f;
  sp.repeat_penalty = 1.1f;
  const json* opts = f.object("options");
  if (!opts) return;
  Fields o(*opts, "options.");
  if (auto v = o.number("temperature", 0, 100)) sp.temperature = float(*v);
  if (auto v = o.number("top_p", 0, 1)) {
    if (*v == 0) sp.temperature = 0;
    else sp.top_p = float(*v);
  }
  if (auto v = o.integer("top_k", 0, std::numeric_limits<int32_t>::max())) sp.top_k = int(*v);
  if (auto v = o.number("min_p", 0, 1)) sp.min_p = float(*v);
  if (auto v = o.integer("seed", std::numeric_limits<int64_t>::min(), kMaxInt)) sp.seed = uint64_t(*v);
  if (auto v = o.number("repeat_penalty", 0, 100)) {
    if (*v <= 0) bad_param("options.repeat_penalty", "Invalid 'options.repeat_penalty': expected a value > 0.");
    sp.repeat_penalty = float(*v);
  }
  if (auto v = o.integer("repeat_last_n", -1, std::numeric_limits<int32_t>::max())) sp.repeat_last_n = int(*v);
  if (auto v = o.number("presence_penalty", -100, 100)) sp.presence_penalty = float(*v);
  if (auto v = o.number("frequency_penalty", -100, 100)) sp.frequency_penalty = float(*v);
  if (auto v = o.integer("num_predict", -2, kMaxInt)) {
    if (*v == 0) bad_param("options.num_predict", "Invalid 'options.num_predict': expected -1, -2 or a value >= 1.");
    p.request.max_tokens = *v < 0 ? -1 : *v;
  }
  o.integer("num_ctx", 0, kMaxInt);  // the server's --ctx decides; checked, then ignored
  p.request.stop = o.string_list("stop", 16);
  try {
    models::validate(sp);
  } catch (const Error& e) {
    bad_param("options", e.what());
  }
}

void finish_prepare(PreparedRequest& p, const ModelContext& m) {
  p.id = random_id("ollama-");
  p.created = int64_t(std::time(nullptr));
  p.model = m.id;
}

double ns(double seconds) { return seconds > 0 ? seconds * 1e9 : 0; }

// The fields of the last line: done, done_reason and the timings in nanoseconds.
void add_done(json& j, const engine::FinishEvent& f) {
  j["done"] = true;
  j["done_reason"] = finish_reason_name(f);
  const double first = f.t_first_token > 0 ? f.t_first_token : f.t_end;
  j["total_duration"] = int64_t(ns(f.t_end - f.t_submit));
  j["load_duration"] = 0;
  j["prompt_eval_count"] = f.prompt_tokens;
  j["prompt_eval_duration"] = int64_t(ns(first - f.t_submit));
  j["eval_count"] = f.completion_tokens;
  j["eval_duration"] = int64_t(ns(f.t_end - first));
}

json line(const PreparedRequest& p, const std::string& text) {
  json j = {{"model", p.model}, {"created_at", rfc3339_now()}};
  if (p.kind == ApiKind::OllamaChat) j["message"] = {{"role", "assistant"}, {"content", text}};
  else j["response"] = text;
  j["done"] = false;
  return j;
}

json details_json(const ModelDetails& d) {
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", d.family},
          {"families", json::array({d.family})},
          {"parameter_size", d.parameter_size},
          {"quantization_level", d.quantization_level}};
}

}  // namespace

PreparedRequest prepare_generate(const json& body, const ModelContext& m) {
  check_model(m, body, true);
  Fields f(body);
  PreparedRequest p;
  p.kind = ApiKind::OllamaGenerate;
  read_common(f, p);
  const auto prompt = f.string("prompt");
  const auto system = f.string("system");
  if (auto t = f.string("template"); t && !t->empty())
    bad_param("template", "custom prompt templates are not supported; the model's chat template is used");
  if (auto s = f.string("suffix"); s && !s->empty()) bad_param("suffix", "suffix is not supported");
  if (const json* images = f.array("images"); images && !images->empty()) bad_param("images", "This model does not support images.");
  if (const json* ctx = f.array("context"); ctx && !ctx->empty()) bad_param("context", "context is not supported");
  finish_prepare(p, m);
  if (!prompt || prompt->empty()) {
    p.load_only = true;
    return p;
  }
  Prompt pr;
  if (f.boolean("raw").value_or(false)) {
    pr = text_prompt(m, *prompt);
  } else {
    json messages = json::array();
    if (system && !system->empty()) messages.push_back({{"role", "system"}, {"content", *system}});
    messages.push_back({{"role", "user"}, {"content", *prompt}});
    pr = chat_prompt(m, messages, nullptr);
  }
  use_prompt(p, std::move(pr), m, "prompt");
  return p;
}

PreparedRequest prepare_ollama_chat(const json& body, const ModelContext& m) {
  check_model(m, body, true);
  Fields f(body);
  PreparedRequest p;
  p.kind = ApiKind::OllamaChat;
  read_common(f, p);
  finish_prepare(p, m);
  const json* msgs = f.get("messages");
  if (!msgs || (msgs->is_array() && msgs->empty())) {
    p.load_only = true;
    return p;
  }
  const json messages = normalize_messages(msgs, MessageDialect::Ollama);
  const json tools = normalize_tools(f.get("tools"));
  Prompt pr = chat_prompt(m, messages, tools);
  use_prompt(p, std::move(pr), m, "messages");
  return p;
}

json ollama_response(const PreparedRequest& p, const Outcome& o) {
  if (p.load_only) {
    json j = line(p, "");
    j["done"] = true;
    j["done_reason"] = "load";
    return j;
  }
  if (o.finish.reason == engine::FinishReason::Error)
    throw ApiError(500, o.finish.error.empty() ? std::string("generation failed") : o.finish.error, "", "engine_error");
  json j = line(p, o.text);
  add_done(j, o.finish);
  return j;
}

json ollama_tags(const ModelContext& m, const ModelDetails& d) {
  json model = {{"name", m.id},
                {"model", m.id},
                {"modified_at", rfc3339(d.modified)},
                {"size", d.size},
                {"digest", d.digest},
                {"details", details_json(d)}};
  return {{"models", json::array({std::move(model)})}};
}

json ollama_show(const json& body, const ModelContext& m, const ModelDetails& d) {
  Fields f(body);
  auto name = f.string("model");
  if (!name) name = f.string("name");
  if (!name) bad_param("model", "model is required");
  if (!m.accepts(*name)) throw ApiError(404, fmt::format("model '{}' not found", *name), "model", "model_not_found");
  f.boolean("verbose");
  return {{"license", ""},
          {"modelfile", fmt::format("# Modelfile generated by strata\nFROM {}\n", d.path)},
          {"parameters", ""},
          {"template", m.chat_template_source},
          {"details", details_json(d)},
          {"model_info", d.model_info},
          {"capabilities", json::array({"completion"})},
          {"modified_at", rfc3339(d.modified)}};
}

json ollama_ps(const ModelContext& m, const ModelDetails& d) {
  json model = {{"name", m.id},
                {"model", m.id},
                {"size", d.size},
                {"digest", d.digest},
                {"details", details_json(d)},
                {"expires_at", "9999-12-31T23:59:59Z"},
                {"size_vram", 0}};
  return {{"models", json::array({std::move(model)})}};
}

json ollama_version() { return {{"version", "0.1.0"}}; }

std::string rfc3339(int64_t unix_seconds) {
  std::time_t t = std::time_t(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const int64_t total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  std::string s = rfc3339(total_ns / 1'000'000'000);
  s.pop_back();  // 'Z'
  return s + fmt::format(".{:09}Z", total_ns % 1'000'000'000);
}

namespace {

class OllamaFormat final : public ResponseFormat {
 public:
  explicit OllamaFormat(const PreparedRequest& p) : p_(p) {}
  const char* stream_content_type() const override { return "application/x-ndjson"; }
  std::string stream_begin() override { return {}; }
  std::string stream_token(const engine::TokenEvent& t) override {
    if (t.text.empty()) return {};
    return dump(line(p_, t.text)) + "\n";
  }
  std::string stream_finish(const engine::FinishEvent& f) override {
    if (f.reason == engine::FinishReason::Error)
      return dump(json{{"error", f.error.empty() ? std::string("generation failed") : f.error}}) + "\n";
    json j = line(p_, f.text_tail);
    add_done(j, f);
    return dump(j) + "\n";
  }
  json body(const Outcome& o) override { return ollama_response(p_, o); }
  json error_body(const ApiError& e) const override { return ollama_error_body(e); }

 private:
  PreparedRequest p_;
};

}  // namespace

std::unique_ptr<ResponseFormat> make_ollama_format(const PreparedRequest& p, const ModelContext&) {
  return std::make_unique<OllamaFormat>(p);
}

}  // namespace strata::server
