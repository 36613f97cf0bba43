// The prompt side shared by the OpenAI and Ollama APIs: checking chat messages and tools,
// rendering the chat template and tokenizing, tokenizing plain prompts, and the context check.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "server/api_types.h"

namespace strata::server {

enum class MessageDialect { OpenAI, Ollama };

// Validates `messages` (param "messages") and returns them as the template sees them: content a
// string (text parts joined), "developer" mapped to "system", null content of an assistant
// message with tool_calls made "". Throws ApiError naming the message and field at fault.
json normalize_messages(const json* messages, MessageDialect dialect);

// Validates `tools` (an array of {type:"function", function:{name, ...}}); null when absent.
json normalize_tools(const json* tools);

struct Prompt {
  std::vector<int32_t> tokens;
  std::string text;
};

// Renders the chat template with add_generation_prompt and the tokenizer's BOS/EOS texts, then
// tokenizes with special tokens parsed; BOS is added when the tokenizer wants one and the
// rendered text does not already begin with it. A template error is a 400 naming "messages".
Prompt chat_prompt(const ModelContext& m, const json& messages, const json& tools);

// A plain prompt: BOS as the tokenizer says, special-token texts not parsed.
Prompt text_prompt(const ModelContext& m, const std::string& text);

// 400 (context_length_exceeded) when the prompt leaves no room to generate; 400 when empty.
void check_prompt(const ModelContext& m, const std::vector<int32_t>& tokens, const std::string& param);

// check_prompt, then the prompt becomes the request's (tokens for the engine, text for logs).
void use_prompt(PreparedRequest& p, Prompt pr, const ModelContext& m, const std::string& param);

// 404 model_not_found unless `name` is absent or a name the model answers to. `ollama` picks
// Ollama's message.
void check_model(const ModelContext& m, const json& body, bool ollama);

}  // namespace strata::server
