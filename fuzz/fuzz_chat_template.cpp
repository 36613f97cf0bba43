// The chat-template interpreter: parse the input as a template and render it on a fixed chat
// (system/user/assistant with a tool call, tools, a generation prompt), as the server does for
// a template embedded in a downloaded GGUF. Tight step/output limits keep each run short; the
// limits themselves are under test (a template must not hang or exhaust memory).
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "models/chat/chat_template.h"
#include "storage/error.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "What is the weather in Paris? ünïcödé \u00e9"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
      {"role": "user", "content": [{"type": "text", "text": "thanks"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"},
      "days": {"type": "integer"}}, "required": ["city"]}}}],
    "add_generation_prompt": true,
    "bos_token": "<s>",
    "eos_token": "</s>"
  })");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  const std::string_view src(reinterpret_cast<const char*>(data), size);
  chat::RenderLimits limits;
  limits.max_output_bytes = 1u << 16;
  limits.max_steps = 100'000;
  try {
    chat::ChatTemplate t = chat::ChatTemplate::parse(src, "fuzz.jinja");
    (void)t.render(context(), std::time_t{1736942400}, limits);
  } catch (const Error&) {
  }
  return 0;
}
