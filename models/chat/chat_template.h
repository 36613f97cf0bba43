// models/chat/chat_template.h
#pragma once
#include <nlohmann/json.hpp>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
namespace strata::chat {
struct RenderLimits {
  size_t max_output_bytes = 4u << 20;   // rendering stops with an error past this
  uint64_t max_steps = 20'000'000;      // evaluation steps (loop iterations, calls, nodes): a hostile template cannot hang
  int max_depth = 256;                  // nesting/recursion depth (macros calling macros, deep expressions)
};
class ChatTemplate {
 public:
  // Throws strata::Error ("<name>:<line>:<col>: <what was expected>") on a syntax error.
  static ChatTemplate parse(std::string_view source, std::string name = "chat template");
  // `context` is a JSON object whose keys become template variables (messages, tools, add_generation_prompt,
  // bos_token, eos_token, and any extras). raise_exception(msg) throws strata::Error whose message is msg,
  // unprefixed (it is the template author's text for the user). strftime_now(fmt) formats `now` (local
  // time as given; when `now` is empty use the current local time). Any runtime failure (calling an undefined, wrong
  // types, limits exceeded) throws strata::Error with a clear message naming the template, the line, and what failed.
  std::string render(const nlohmann::json& context, std::optional<std::time_t> now = std::nullopt,
                     const RenderLimits& limits = {}) const;
  // The same for a context parsed as ordered_json: nlohmann::json sorts object keys, so only this
  // overload keeps each dict's insertion order, which tojson and dict iteration print (as Python does).
  std::string render(const nlohmann::ordered_json& context, std::optional<std::time_t> now = std::nullopt,
                     const RenderLimits& limits = {}) const;
  const std::string& name() const;
 private:
  struct Impl; std::shared_ptr<const Impl> impl_;   // copyable, immutable after parse, thread-safe to render
};
// The ChatML template used when a model has none (<|im_start|>role\ncontent<|im_end|>\n ... with a generation prompt).
extern const char* const kChatMlTemplate;
}
