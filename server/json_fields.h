// Strict reading of request fields: each getter returns std::nullopt when the field is absent or
// null and throws ApiError (400, naming the field) when it has the wrong type or is out of range.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/api_error.h"

namespace strata::server {

// Parses a request body; 400 when it is not valid JSON (invalid UTF-8 included) or not an object.
json parse_body(std::string_view text);

// The JSON type as error messages name it ("a string", "an integer", ...).
std::string json_type_name(const json& v);

class Fields {
 public:
  // `prefix` names the object in messages ("options." gives 'options.temperature').
  Fields(const json& obj, std::string prefix = {}) : obj_(obj), prefix_(std::move(prefix)) {}

  bool has(const char* key) const;  // present and not null
  const json* get(const char* key) const;  // nullptr when absent or null
  std::string param(const char* key) const { return prefix_ + key; }

  std::optional<bool> boolean(const char* key) const;
  std::optional<int64_t> integer(const char* key, int64_t lo, int64_t hi) const;
  std::optional<double> number(const char* key, double lo, double hi) const;
  std::optional<std::string> string(const char* key) const;
  // A string or a list of strings (at most `max`, each non-empty).
  std::vector<std::string> string_list(const char* key, size_t max) const;
  // Present (not null) and an object / array, else 400.
  const json* object(const char* key) const;
  const json* array(const char* key) const;

  [[noreturn]] void wrong_type(const char* key, const char* expected) const;

 private:
  const json& obj_;
  std::string prefix_;
};

}  // namespace strata::server
