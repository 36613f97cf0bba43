#include "server/api_error.h"

namespace strata::server {

std::string error_type_for(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "invalid_request_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

ApiError::ApiError(int status_, std::string message_, std::string param_, std::string code_)
    : status(status_), message(std::move(message_)), type(error_type_for(status_)), param(std::move(param_)),
      code(std::move(code_)) {}

void bad_param(const std::string& param, const std::string& message, const std::string& code) {
  throw ApiError(400, message, param, code);
}

json openai_error_body(const ApiError& e) {
  json err = {{"message", e.message},
                        {"type", e.type},
                        {"param", e.param.empty() ? json() : json(e.param)},
                        {"code", e.code.empty() ? json() : json(e.code)}};
  return {{"error", std::move(err)}};
}

json ollama_error_body(const ApiError& e) { return {{"error", e.message}}; }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace strata::server
