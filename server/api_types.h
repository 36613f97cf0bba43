// What the API mapping works with, free of HTTP and threads: the served model as requests see it
// (ModelContext), a validated request ready for the engine (PreparedRequest), the events of a
// finished request (Outcome), and the formatter that turns events into response bytes.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/engine/request.h"
#include "models/tokenizer/tokenizer.h"
#include "server/api_error.h"

namespace strata::server {

// Renders the chat template for a context {messages, tools, add_generation_prompt, bos_token,
// eos_token}; throws strata::Error when the template fails (a client-caused error: 400).
using ChatRenderer = std::function<std::string(const json& context)>;

struct ModelContext {
  std::string id;                  // the served alias, reported as "model"
  std::vector<std::string> names;  // further names a request may use (file name, its stem)
  const tok::Tokenizer* tokenizer = nullptr;
  ChatRenderer render_chat;
  std::string chat_template_source;  // shown by /api/show
  int64_t n_ctx = 0;                 // tokens per sequence
  int64_t created = 0;               // unix seconds (the model file's mtime)

  // The alias, one of `names`, or empty (requests may leave the model out).
  bool accepts(std::string_view name) const;
};

enum class ApiKind { Chat, Completion, OllamaGenerate, OllamaChat };

struct PreparedRequest {
  ApiKind kind = ApiKind::Chat;
  engine::Request request;
  std::string id;             // "chatcmpl-...", "cmpl-..."
  int64_t created = 0;        // unix seconds
  std::string model;          // the served alias
  bool stream = false;
  bool include_usage = false; // stream_options.include_usage
  bool logprobs = false;      // token logprobs go into the response
  std::string prompt_text;    // the rendered chat prompt or the completion prompt (for logs)
  // Ollama: a body with no prompt only loads the model; the answer needs no generation.
  bool load_only = false;
};

// A finished request's events, collected (non-streamed responses, the batch runner).
struct Outcome {
  std::vector<engine::TokenEvent> tokens;
  std::string text;
  engine::FinishEvent finish;
  bool finished = false;
  void add(const engine::TokenEvent& t) {
    text += t.text;
    tokens.push_back(t);
  }
  void end(const engine::FinishEvent& f) {
    text += f.text_tail;
    finish = f;
    finished = true;
  }
};

// "stop", or "length" for max_tokens, a full context and a cut (cancelled) sequence.
const char* finish_reason_name(const engine::FinishEvent& f);

// Turns one request's events into response bytes. Pure: the HTTP session writes what it returns,
// a batch runner may call body() on a collected Outcome.
class ResponseFormat {
 public:
  virtual ~ResponseFormat() = default;
  virtual const char* stream_content_type() const = 0;
  virtual std::string stream_begin() = 0;                                 // may be empty
  virtual std::string stream_token(const engine::TokenEvent& t) = 0;      // may be empty
  virtual std::string stream_finish(const engine::FinishEvent& f) = 0;    // the last bytes
  // Non-streamed response; throws ApiError (500) when the outcome is an engine error.
  virtual json body(const Outcome& o) = 0;
  virtual json error_body(const ApiError& e) const = 0;
};

// "<prefix><24 random alphanumerics>".
std::string random_id(std::string_view prefix);

}  // namespace strata::server
