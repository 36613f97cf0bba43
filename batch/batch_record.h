// The lines a batch writes, in OpenAI's Batch output shape, and reading them back (resume, merge):
//   {"id":"batch_req_<digest>","custom_id":"...","response":{"status_code":200,
//    "request_id":"req_<digest>","body":{...}},"error":null}
// A request the API refuses keeps that shape with its status and error body; a line that is no
// request at all (not JSON, no custom_id, ...) has "response":null and
// "error":{"code","message"}. The digest (batch_input.h line_digest) ties a record to its input
// line, which is how a resumed run knows what is done.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "batch/batch_input.h"
#include "server/api_error.h"

namespace strata::batch {

// Each returns one whole line, '\n' included.
std::string answer_record(int64_t line_no, const std::string& custom_id, const json& body);
std::string refused_record(int64_t line_no, const std::string& custom_id, const server::ApiError& e);
std::string error_record(const LineError& e);

struct Record {
  std::string id;                        // "batch_req_<digest>"
  std::optional<std::string> custom_id;
  bool ok = false;                       // status 200 and no error
};

// A line this module wrote (without its '\n'); nullopt for anything else.
std::optional<Record> parse_record(std::string_view line);

// The record id of an input line (what parse_record gives back as `id`).
std::string record_id(int64_t line_no, std::string_view custom_id);

}  // namespace strata::batch
