// The OpenAI API as pure functions: a request body becomes a PreparedRequest for the engine,
// and collected events become a response body or streamed SSE chunks. No HTTP, no threads, so
// an offline batch runner gets the same answer for the same body.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "server/api_types.h"

namespace strata::server {

// /v1/chat/completions. Throws ApiError (400 naming the param, 404 for an unknown model).
PreparedRequest prepare_chat(const json& body, const ModelContext& m);
// /v1/completions (max_tokens defaults to 16, as OpenAI's).
PreparedRequest prepare_completion(const json& body, const ModelContext& m);

// Non-streamed bodies ("chat.completion" / "text_completion"); ApiError 500 for an engine error.
json chat_response(const PreparedRequest& p, const Outcome& o, const ModelContext& m);
json completion_response(const PreparedRequest& p, const Outcome& o, const ModelContext& m);

// /v1/models and /v1/models/{id}.
json models_list(const ModelContext& m);
json model_object(const ModelContext& m);

// One server-sent event: "data: <json>\n\n".
std::string sse(const json& j);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// Streams chat.completion.chunk or text_completion chunks (see ResponseFormat).
std::unique_ptr<ResponseFormat> make_openai_format(const PreparedRequest& p, const ModelContext& m);

}  // namespace strata::server
