// A request the server refuses, with the HTTP status and the fields of OpenAI's error object.
// Thrown by the API mapping (openai_api, ollama_api) and caught where a handler turns it into a
// response; it never crosses an Asio handler.
#pragma once
#include <nlohmann/json.hpp>

#include <exception>
#include <string>

namespace strata::server {

// Request and response bodies keep their keys in the order they came in or were written:
// tool definitions reach the chat template as the client sent them (as transformers renders
// them), and responses list fields in OpenAI's order.
using json = nlohmann::ordered_json;

struct ApiError : std::exception {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault ("" when none)
  std::string code;   // a machine-readable reason ("" when none)

  ApiError() = default;
  ApiError(int status_, std::string message_, std::string param_ = {}, std::string code_ = {});
  const char* what() const noexcept override { return message.c_str(); }
};

// A 400 naming the field at fault.
[[noreturn]] void bad_param(const std::string& param, const std::string& message,
                            const std::string& code = "invalid_value");

// {"error":{"message","type","param","code"}} (param/code null when empty).
json openai_error_body(const ApiError& e);
// {"error":"message"}
json ollama_error_body(const ApiError& e);

// The error type OpenAI uses for a status (400 invalid_request_error, 401 authentication_error,
// 404 invalid_request_error, 429 rate_limit_error, 5xx server_error).
std::string error_type_for(int status);

// JSON text for the wire: invalid UTF-8 (a token split mid-character) is replaced, never thrown.
std::string dump(const json& j);

}  // namespace strata::server
