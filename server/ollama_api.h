// The Ollama API as pure functions: /api/generate and /api/chat bodies become PreparedRequests
// (stream defaults to true: NDJSON lines, the last with done:true and the timings), and the
// listing endpoints (/api/tags, /api/show, /api/ps, /api/version) become bodies.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "server/api_types.h"
#include "server/model_info.h"

namespace strata::server {

// Sampling defaults are Ollama's (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1);
// the seed defaults to 0 so a body always gives the same answer. A body without a prompt (or
// with no messages) only "loads" the model: load_only is set and nothing is generated.
PreparedRequest prepare_generate(const json& body, const ModelContext& m);
PreparedRequest prepare_ollama_chat(const json& body, const ModelContext& m);

// Non-streamed body (also the answer for load_only).
json ollama_response(const PreparedRequest& p, const Outcome& o);

json ollama_tags(const ModelContext& m, const ModelDetails& d);
json ollama_show(const json& body, const ModelContext& m, const ModelDetails& d);
json ollama_ps(const ModelContext& m, const ModelDetails& d);
json ollama_version();

// RFC 3339 UTC with nanoseconds, as Ollama writes created_at ("2024-05-01T12:00:00.123456789Z").
std::string rfc3339_now();
std::string rfc3339(int64_t unix_seconds);

std::unique_ptr<ResponseFormat> make_ollama_format(const PreparedRequest& p, const ModelContext& m);

}  // namespace strata::server
