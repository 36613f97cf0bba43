// One line of an OpenAI Batch API input file, checked for its shape: {"custom_id", "method":
// "POST", "url", "body"} for /v1/chat/completions or /v1/completions. Pure and model-free (a
// fuzz target calls it on arbitrary bytes); whether the body itself is acceptable is the API
// mapping's question (batch_request.h), and duplicate custom_ids need the whole file
// (CustomIdClaims below).
#pragma once
#include <cstdint>
#include <optional>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "server/api_error.h"

namespace strata::batch {

using server::json;

enum class Endpoint { Chat, Completion };

struct InputLine {
  int64_t line = 0;  // 1-based, as editors count
  std::string custom_id;
  Endpoint endpoint = Endpoint::Chat;
  json body;         // an object; key order kept (tool definitions reach the template as sent)
};

struct LineError {
  int64_t line = 0;
  std::optional<std::string> custom_id;  // when the line had a string one
  std::string code;     // machine-readable: invalid_json, missing_custom_id, ... (see kinds below)
  std::string message;  // "line 7: 'url': expected /v1/chat/completions or /v1/completions, got ..."
};

using ParsedLine = std::variant<InputLine, LineError>;

// Longest input line accepted (the server's default body limit is 4 MiB; a line is a body plus
// a little envelope).
inline constexpr size_t kMaxLineBytes = 8u << 20;

// Error codes: line_too_long, invalid_json (not JSON, invalid UTF-8 included), invalid_line (not
// an object), missing_custom_id, invalid_custom_id (not a non-empty string), invalid_method,
// invalid_url, missing_body, invalid_body (not an object). Never throws.
ParsedLine parse_input_line(std::string_view text, int64_t line_no);

// True for a line with nothing but whitespace: skipped, not an error (editors leave them).
bool is_blank_line(std::string_view text);

// The custom_id a line carries (a string), without the other checks; for records of lines that
// failed (their id still names the custom_id when it had one).
std::optional<std::string> custom_id_of(const ParsedLine& p);

// First come, first served: the first well-formed line with a custom_id owns it; a later one
// with the same custom_id is an error (duplicate_custom_id). Every shard feeds every line of the
// file so duplicates across shards are found too.
class CustomIdClaims {
 public:
  // Returns the line itself, or a duplicate_custom_id error naming the first line.
  ParsedLine claim(ParsedLine p);

 private:
  std::map<std::string, int64_t, std::less<>> owner_;
};

// The record id of an input line: stable for the line number and custom_id, so a rerun, a
// resumed run and every shard name a line's answer the same way ("batch_req_" + this).
std::string line_digest(int64_t line_no, std::string_view custom_id);

}  // namespace strata::batch
