#include "server/openai_api.h"

#include <fmt/format.h>

#include <ctime>
#include <limits>

#include "models/sampling.h"
#include "server/chat_prompt.h"
#include "server/json_fields.h"
#include "storage/error.h"

namespace strata::server {


namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr size_t kMaxStop = 16;
constexpr const char* kFingerprint = "fp_strata";

// The fields /v1/chat/completions and /v1/completions share: sampling, stop, stream, n, user.
void read_common(const Fields& f, PreparedRequest& p) {
  models::SamplingParams& sp = p.request.sampling;
  sp.temperature = 1.0f;  // OpenAI's default
  if (auto v = f.number("temperature", 0, 2)) sp.temperature = float(*v);
  if (auto v = f.number("top_p", 0, 1)) {
    if (*v == 0) sp.temperature = 0;  // only the most likely token is left
    else sp.top_p = float(*v);
  }
  if (auto v = f.integer("seed", std::numeric_limits<int64_t>::min(), kMaxInt)) sp.seed = uint64_t(*v);
  if (auto v = f.number("presence_penalty", -2, 2)) sp.presence_penalty = float(*v);
  if (auto v = f.number("frequency_penalty", -2, 2)) sp.frequency_penalty = float(*v);
  // Extensions (llama.cpp's names).
  if (auto v = f.integer("top_k", 0, std::numeric_limits<int32_t>::max())) sp.top_k = int(*v);
  if (auto v = f.number("min_p", 0, 1)) sp.min_p = float(*v);
  if (auto v = f.number("repeat_penalty", 0, 100)) {
    if (*v <= 0) bad_param("repeat_penalty", "Invalid 'repeat_penalty': expected a value > 0.");
    sp.repeat_penalty = float(*v);
  }
  if (auto v = f.integer("repeat_last_n", -1, std::numeric_limits<int32_t>::max())) sp.repeat_last_n = int(*v);
  try {
    models::validate(sp);
  } catch (const Error& e) {
    bad_param("", e.what());
  }
  if (auto v = f.boolean("ignore_eos")) p.request.ignore_eos = *v;

  p.request.stop = f.string_list("stop", kMaxStop);
  if (auto v = f.boolean("stream")) p.stream = *v;
  if (const json* so = f.object("stream_options")) {
    if (auto v = Fields(*so, "stream_options.").boolean("include_usage")) p.include_usage = *v;
  }
  if (auto n = f.integer("n", 1, 128); n && *n > 1) bad_param("n", "n > 1 is not supported");
  f.string("user");  // accepted and ignored, but it must be a string
  if (const json* lb = f.object("logit_bias"); lb && !lb->empty()) bad_param("logit_bias", "logit_bias is not supported");
}

void finish_prepare(PreparedRequest& p, const ModelContext& m, const char* prefix) {
  p.id = random_id(prefix);
  p.created = int64_t(std::time(nullptr));
  p.model = m.id;
}

json usage_json(const engine::FinishEvent& f) {
  return {{"prompt_tokens", f.prompt_tokens},
          {"completion_tokens", f.completion_tokens},
          {"total_tokens", f.prompt_tokens + f.completion_tokens}};
}

json bytes_json(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}

std::string piece(const ModelContext& m, int32_t id) { return m.tokenizer->token_to_piece(id, true); }

// One entry of a chat choice's logprobs.content.
json chat_logprob(const engine::TokenEvent& t, const ModelContext& m) {
  json top = json::array();
  for (const auto& [id, lp] : t.top) {
    const std::string s = piece(m, id);
    top.push_back({{"token", s}, {"logprob", lp}, {"bytes", bytes_json(s)}});
  }
  return {{"token", t.piece}, {"logprob", t.logprob}, {"bytes", bytes_json(t.piece)}, {"top_logprobs", std::move(top)}};
}

// Completions' logprobs object for a run of tokens; `offset` is the text offset of the first.
json completion_logprobs(const engine::TokenEvent* tokens, size_t n, size_t& offset, const ModelContext& m) {
  json lp = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
             {"text_offset", json::array()}};
  for (size_t i = 0; i < n; ++i) {
    const engine::TokenEvent& t = tokens[i];
    lp["tokens"].push_back(t.piece);
    lp["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (const auto& [id, v] : t.top) top[piece(m, id)] = v;
    lp["top_logprobs"].push_back(std::move(top));
    lp["text_offset"].push_back(offset);
    offset += t.piece.size();
  }
  return lp;
}

void throw_if_error(const Outcome& o) {
  if (o.finish.reason == engine::FinishReason::Error)
    throw ApiError(500, o.finish.error.empty() ? std::string("generation failed") : o.finish.error, "", "engine_error");
}

}  // namespace

PreparedRequest prepare_chat(const json& body, const ModelContext& m) {
  check_model(m, body, false);
  Fields f(body);
  PreparedRequest p;
  p.kind = ApiKind::Chat;
  const json messages = normalize_messages(f.get("messages"), MessageDialect::OpenAI);
  json tools = normalize_tools(f.get("tools"));
  if (const json* tc = f.get("tool_choice")) {
    if (!tc->is_string() && !tc->is_object()) f.wrong_type("tool_choice", "a string or an object");
    if (tc->is_string() && *tc == "none") tools = nullptr;
  }
  if (const json* rf = f.object("response_format")) {
    const auto type = Fields(*rf, "response_format.").string("type");
    if (type && *type != "text")
      bad_param("response_format.type", fmt::format("response_format type '{}' is not supported; only 'text' is.", *type));
  }
  read_common(f, p);
  const auto mt = f.integer("max_tokens", 1, kMaxInt);
  const auto mct = f.integer("max_completion_tokens", 1, kMaxInt);
  p.request.max_tokens = mct ? *mct : mt ? *mt : -1;
  const auto logprobs = f.boolean("logprobs");
  const auto top = f.integer("top_logprobs", 0, 20);
  if (top && !logprobs.value_or(false))
    bad_param("top_logprobs", "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.");
  p.logprobs = logprobs.value_or(false);
  p.request.top_logprobs = p.logprobs ? int(top.value_or(0)) : -1;

  Prompt pr = chat_prompt(m, messages, tools);
  use_prompt(p, std::move(pr), m, "messages");
  finish_prepare(p, m, "chatcmpl-");
  return p;
}

PreparedRequest prepare_completion(const json& body, const ModelContext& m) {
  check_model(m, body, false);
  Fields f(body);
  PreparedRequest p;
  p.kind = ApiKind::Completion;
  read_common(f, p);
  p.request.max_tokens = f.integer("max_tokens", 0, kMaxInt).value_or(16);
  if (p.request.max_tokens == 0) bad_param("max_tokens", "Invalid 'max_tokens': expected a value >= 1 (echo is not supported).");
  if (auto lp = f.integer("logprobs", 0, 5)) {
    p.logprobs = true;
    p.request.top_logprobs = int(*lp);
  }
  if (f.boolean("echo").value_or(false)) bad_param("echo", "echo is not supported");
  if (auto bo = f.integer("best_of", 1, 20); bo && *bo > 1) bad_param("best_of", "best_of > 1 is not supported");
  if (auto sfx = f.string("suffix"); sfx && !sfx->empty()) bad_param("suffix", "suffix is not supported");

  const json* prompt = f.get("prompt");
  if (!prompt) bad_param("prompt", "Missing required parameter: 'prompt'.", "missing_required_parameter");
  auto token_ids = [&](const json& arr, const std::string& where) {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < arr.size(); ++i) {
      const json& v = arr[i];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= m.tokenizer->n_vocab())
        bad_param(where, fmt::format("Invalid '{}[{}]': expected a token id in [0, {}).", where, i, m.tokenizer->n_vocab()));
      ids.push_back(int32_t(v.get<int64_t>()));
    }
    return ids;
  };
  if (prompt->is_string()) {
    Prompt pr = text_prompt(m, prompt->get<std::string>());
    p.request.prompt = std::move(pr.tokens);
    p.prompt_text = std::move(pr.text);
  } else if (prompt->is_array()) {
    if (prompt->empty()) bad_param("prompt", "Invalid 'prompt': empty array.");
    const json& first = (*prompt)[0];
    if (first.is_string() || first.is_array()) {
      if (prompt->size() > 1) bad_param("prompt", "Only one prompt per request is supported.");
      if (first.is_string()) {
        Prompt pr = text_prompt(m, first.get<std::string>());
        p.request.prompt = std::move(pr.tokens);
        p.prompt_text = std::move(pr.text);
      } else {
        p.request.prompt = token_ids(first, "prompt[0]");
      }
    } else {
      p.request.prompt = token_ids(*prompt, "prompt");
    }
  } else {
    f.wrong_type("prompt", "a string, an array of one string, or an array of token ids");
  }
  check_prompt(m, p.request.prompt, "prompt");
  finish_prepare(p, m, "cmpl-");
  return p;
}

json chat_response(const PreparedRequest& p, const Outcome& o, const ModelContext& m) {
  throw_if_error(o);
  json logprobs = nullptr;
  if (p.logprobs) {
    json content = json::array();
    for (const auto& t : o.tokens) content.push_back(chat_logprob(t, m));
    logprobs = {{"content", std::move(content)}, {"refusal", nullptr}};
  }
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", o.text}, {"refusal", nullptr}}},
                 {"logprobs", std::move(logprobs)},
                 {"finish_reason", finish_reason_name(o.finish)}};
  return {{"id", p.id},
          {"object", "chat.completion"},
          {"created", p.created},
          {"model", p.model},
          {"system_fingerprint", kFingerprint},
          {"choices", json::array({std::move(choice)})},
          {"usage", usage_json(o.finish)}};
}

json completion_response(const PreparedRequest& p, const Outcome& o, const ModelContext& m) {
  throw_if_error(o);
  json logprobs = nullptr;
  if (p.logprobs) {
    size_t offset = 0;
    logprobs = completion_logprobs(o.tokens.data(), o.tokens.size(), offset, m);
  }
  json choice = {{"text", o.text}, {"index", 0}, {"logprobs", std::move(logprobs)},
                 {"finish_reason", finish_reason_name(o.finish)}};
  return {{"id", p.id},
          {"object", "text_completion"},
          {"created", p.created},
          {"model", p.model},
          {"system_fingerprint", kFingerprint},
          {"choices", json::array({std::move(choice)})},
          {"usage", usage_json(o.finish)}};
}

json model_object(const ModelContext& m) {
  return {{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", "strata"}};
}

json models_list(const ModelContext& m) { return {{"object", "list"}, {"data", json::array({model_object(m)})}}; }

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

namespace {

class OpenAIFormat final : public ResponseFormat {
 public:
  OpenAIFormat(const PreparedRequest& p, const ModelContext& m) : p_(p), m_(m) {}

  const char* stream_content_type() const override { return "text/event-stream"; }

  std::string stream_begin() override {
    if (p_.kind != ApiKind::Chat) return {};
    return sse(chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
  }

  std::string stream_token(const engine::TokenEvent& t) override {
    if (t.text.empty() && !p_.logprobs) return {};
    json lp = nullptr;
    if (p_.logprobs) {
      lp = p_.kind == ApiKind::Chat ? json{{"content", json::array({chat_logprob(t, m_)})}, {"refusal", nullptr}}
                                    : completion_logprobs(&t, 1, offset_, m_);
    }
    return sse(chunk(content_delta(t.text), std::move(lp), nullptr));
  }

  std::string stream_finish(const engine::FinishEvent& f) override {
    std::string out;
    if (f.reason == engine::FinishReason::Error) {
      ApiError e(500, f.error.empty() ? std::string("generation failed") : f.error, "", "engine_error");
      out += sse(openai_error_body(e));
      out += kSseDone;
      return out;
    }
    if (!f.text_tail.empty()) out += sse(chunk(content_delta(f.text_tail), nullptr, nullptr));
    out += sse(chunk(p_.kind == ApiKind::Chat ? json::object() : json(""), nullptr, finish_reason_name(f)));
    if (p_.include_usage) {
      json last = base();
      last["choices"] = json::array();
      last["usage"] = usage_json(f);
      out += sse(last);
    }
    out += kSseDone;
    return out;
  }

  json body(const Outcome& o) override {
    return p_.kind == ApiKind::Chat ? chat_response(p_, o, m_) : completion_response(p_, o, m_);
  }

  json error_body(const ApiError& e) const override { return openai_error_body(e); }

 private:
  json base() const {
    return {{"id", p_.id},
            {"object", p_.kind == ApiKind::Chat ? "chat.completion.chunk" : "text_completion"},
            {"created", p_.created},
            {"model", p_.model},
            {"system_fingerprint", kFingerprint}};
  }
  json content_delta(const std::string& text) const {
    return p_.kind == ApiKind::Chat ? json{{"content", text}} : json(text);
  }
  // Chat: `delta` is the delta object; completions: the text.
  json chunk(json delta, json logprobs, const char* finish) const {
    json c = base();
    json choice = {{"index", 0}};
    if (p_.kind == ApiKind::Chat) choice["delta"] = std::move(delta);
    else choice["text"] = std::move(delta);
    choice["logprobs"] = std::move(logprobs);
    choice["finish_reason"] = finish ? json(finish) : json(nullptr);
    c["choices"] = json::array({std::move(choice)});
    if (p_.include_usage) c["usage"] = nullptr;
    return c;
  }

  PreparedRequest p_;
  const ModelContext& m_;
  size_t offset_ = 0;  // completions' text_offset of the next token
};

}  // namespace

std::unique_ptr<ResponseFormat> make_openai_format(const PreparedRequest& p, const ModelContext& m) {
  return std::make_unique<OpenAIFormat>(p, m);
}

}  // namespace strata::server
