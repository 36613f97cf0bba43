#include "server/chat_prompt.h"

#include <fmt/format.h>

#include "server/json_fields.h"
#include "storage/error.h"

namespace strata::server {


namespace {

bool known_role(const std::string& role, MessageDialect d) {
  if (role == "system" || role == "user" || role == "assistant" || role == "tool") return true;
  return d == MessageDialect::OpenAI && role == "developer";
}

// Content as one string: a string, or (OpenAI) an array of {type:"text", text} parts.
std::string content_text(const json& content, const std::string& where, MessageDialect d) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array() || d == MessageDialect::Ollama)
    bad_param(where, fmt::format("Invalid type for '{}': expected {}, but got {} instead.", where,
                                 d == MessageDialect::Ollama ? "a string" : "a string or an array of content parts",
                                 json_type_name(content)), "invalid_type");
  std::string text;
  for (size_t j = 0; j < content.size(); ++j) {
    const json& part = content[j];
    const std::string pw = fmt::format("{}[{}]", where, j);
    if (!part.is_object())
      bad_param(pw, fmt::format("Invalid type for '{}': expected an object, but got {} instead.", pw, json_type_name(part)),
                "invalid_type");
    Fields pf(part, pw + ".");
    const auto type = pf.string("type");
    if (!type) bad_param(pw + ".type", fmt::format("Missing required parameter: '{}.type'.", pw), "missing_required_parameter");
    if (*type != "text")
      bad_param(pw + ".type", fmt::format("Invalid value: '{}'. This model supports only 'text' content parts.", *type));
    const auto t = pf.string("text");
    if (!t) bad_param(pw + ".text", fmt::format("Missing required parameter: '{}.text'.", pw), "missing_required_parameter");
    text += *t;
  }
  return text;
}

void check_tool_calls(const json& calls, const std::string& where) {
  if (!calls.is_array())
    bad_param(where, fmt::format("Invalid type for '{}': expected an array, but got {} instead.", where, json_type_name(calls)),
              "invalid_type");
  for (size_t j = 0; j < calls.size(); ++j) {
    const std::string cw = fmt::format("{}[{}]", where, j);
    const json& c = calls[j];
    if (!c.is_object()) bad_param(cw, fmt::format("Invalid type for '{}': expected an object.", cw), "invalid_type");
    const json* fn = Fields(c, cw + ".").object("function");
    if (!fn) bad_param(cw + ".function", fmt::format("Missing required parameter: '{}.function'.", cw), "missing_required_parameter");
    Fields ff(*fn, cw + ".function.");
    if (!ff.string("name"))
      bad_param(cw + ".function.name", fmt::format("Missing required parameter: '{}.function.name'.", cw),
                "missing_required_parameter");
    if (const json* a = ff.get("arguments"); a && !a->is_string() && !a->is_object())
      ff.wrong_type("arguments", "a string or an object");
  }
}

}  // namespace

json normalize_messages(const json* messages, MessageDialect d) {
  if (!messages) bad_param("messages", "Missing required parameter: 'messages'.", "missing_required_parameter");
  if (!messages->is_array())
    bad_param("messages", fmt::format("Invalid type for 'messages': expected an array, but got {} instead.",
                                      json_type_name(*messages)), "invalid_type");
  if (messages->empty())
    bad_param("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
              "empty_array");
  json out = json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object())
      bad_param(where, fmt::format("Invalid type for '{}': expected an object, but got {} instead.", where, json_type_name(m)),
                "invalid_type");
    Fields f(m, where + ".");
    const auto role = f.string("role");
    if (!role) bad_param(where + ".role", fmt::format("Missing required parameter: '{}.role'.", where), "missing_required_parameter");
    if (!known_role(*role, d))
      bad_param(where + ".role", fmt::format("Invalid value: '{}'. Supported values are: 'system', 'assistant', 'user', 'tool'{}.",
                                             *role, d == MessageDialect::OpenAI ? ", and 'developer'" : ""));
    json msg = {{"role", *role == "developer" ? std::string("system") : *role}};
    const json* calls = f.get("tool_calls");
    if (calls) {
      check_tool_calls(*calls, where + ".tool_calls");
      if (*role != "assistant")
        bad_param(where + ".tool_calls", fmt::format("Invalid '{}.tool_calls': only assistant messages carry tool calls.", where));
      if (!calls->empty()) msg["tool_calls"] = *calls;
    }
    if (const json* c = f.get("content")) {
      msg["content"] = content_text(*c, where + ".content", d);
    } else if (*role == "assistant" && msg.contains("tool_calls")) {
      msg["content"] = "";
    } else if (d == MessageDialect::Ollama) {
      msg["content"] = "";  // Ollama treats a missing content as empty
    } else {
      bad_param(where + ".content", fmt::format("Missing required parameter: '{}.content'.", where), "missing_required_parameter");
    }
    if (const auto name = f.string("name")) msg["name"] = *name;
    if (const auto id = f.string("tool_call_id")) msg["tool_call_id"] = *id;
    if (d == MessageDialect::Ollama) {
      if (const json* images = f.array("images"); images && !images->empty())
        bad_param(where + ".images", "This model does not support images.");
      if (const auto tool_name = f.string("tool_name")) msg["name"] = *tool_name;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

json normalize_tools(const json* tools) {
  if (!tools) return nullptr;
  if (!tools->is_array())
    bad_param("tools", fmt::format("Invalid type for 'tools': expected an array, but got {} instead.", json_type_name(*tools)),
              "invalid_type");
  if (tools->empty()) return nullptr;
  for (size_t i = 0; i < tools->size(); ++i) {
    const std::string where = fmt::format("tools[{}]", i);
    const json& t = (*tools)[i];
    if (!t.is_object()) bad_param(where, fmt::format("Invalid type for '{}': expected an object.", where), "invalid_type");
    Fields f(t, where + ".");
    const auto type = f.string("type");
    if (type && *type != "function")
      bad_param(where + ".type", fmt::format("Invalid value: '{}'. Supported values are: 'function'.", *type));
    const json* fn = f.object("function");
    if (!fn) bad_param(where + ".function", fmt::format("Missing required parameter: '{}.function'.", where), "missing_required_parameter");
    if (!Fields(*fn, where + ".function.").string("name"))
      bad_param(where + ".function.name", fmt::format("Missing required parameter: '{}.function.name'.", where),
                "missing_required_parameter");
  }
  return *tools;
}

Prompt chat_prompt(const ModelContext& m, const json& messages, const json& tools) {
  const tok::Tokenizer& tk = *m.tokenizer;
  const std::string bos = tk.bos() >= 0 ? tk.token_text(tk.bos()) : std::string();
  const std::string eos = tk.eos() >= 0 ? tk.token_text(tk.eos()) : std::string();
  json ctx = {{"messages", messages},
              {"tools", tools},
              {"add_generation_prompt", true},
              {"bos_token", bos},
              {"eos_token", eos}};
  Prompt p;
  try {
    p.text = m.render_chat(ctx);
  } catch (const Error& e) {
    throw ApiError(400, fmt::format("The chat template could not render these messages: {}", e.what()), "messages",
                   "template_error");
  }
  const bool add_bos = tk.add_bos() && tk.bos() >= 0 && !(bos.size() && p.text.starts_with(bos));
  if (add_bos) p.tokens.push_back(tk.bos());
  const auto body = tk.encode(p.text, false, true);
  p.tokens.insert(p.tokens.end(), body.begin(), body.end());
  return p;
}

Prompt text_prompt(const ModelContext& m, const std::string& text) {
  Prompt p;
  p.text = text;
  p.tokens = m.tokenizer->encode(text, true, false);
  return p;
}

void check_prompt(const ModelContext& m, const std::vector<int32_t>& tokens, const std::string& param) {
  if (tokens.empty()) bad_param(param, fmt::format("Invalid '{}': the prompt is empty.", param));
  if (m.n_ctx > 0 && int64_t(tokens.size()) >= m.n_ctx)
    throw ApiError(400,
                   fmt::format("This model's maximum context length is {} tokens, but the prompt has {} tokens "
                               "(leaving no room to generate).", m.n_ctx, tokens.size()),
                   param, "context_length_exceeded");
}

void use_prompt(PreparedRequest& p, Prompt pr, const ModelContext& m, const std::string& param) {
  check_prompt(m, pr.tokens, param);
  p.request.prompt = std::move(pr.tokens);
  p.prompt_text = std::move(pr.text);
}

void check_model(const ModelContext& m, const json& body, bool ollama) {
  const auto name = Fields(body).string("model");
  if (!name || m.accepts(*name)) return;
  if (ollama) throw ApiError(404, fmt::format("model '{}' not found", *name), "model", "model_not_found");
  throw ApiError(404, fmt::format("The model '{}' does not exist. This server serves '{}'.", *name, m.id), "model",
                 "model_not_found");
}

}  // namespace strata::server
