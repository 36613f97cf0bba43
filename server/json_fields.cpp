#include "server/json_fields.h"

#include <fmt/format.h>

#include <cmath>

#include "server/api_error.h"

namespace strata::server {


json parse_body(std::string_view text) {
  json body;
  try {
    body = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // Syntax errors are parse_error; a number too large for a double (1e400) is out_of_range
    // ("number overflow"), which must be a 400 as well, not an internal error. nlohmann's
    // message names the byte position; keep its reason but not its class prefix.
    std::string why = e.what();
    if (auto p = why.find("] "); p != std::string::npos) why = why.substr(p + 2);
    throw ApiError(400, fmt::format("The request body is not valid JSON: {}", why), "", "invalid_json");
  }
  if (!body.is_object())
    throw ApiError(400, fmt::format("The request body must be a JSON object, but got {}", json_type_name(body)), "",
                   "invalid_json");
  return body;
}

std::string json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a decimal";
    default: return "an unsupported value";
  }
}

bool Fields::has(const char* key) const { return get(key) != nullptr; }

const json* Fields::get(const char* key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

void Fields::wrong_type(const char* key, const char* expected) const {
  const json* v = get(key);
  bad_param(param(key), fmt::format("Invalid type for '{}': expected {}, but got {} instead.", param(key), expected,
                                    v ? json_type_name(*v) : std::string("null")),
            "invalid_type");
}

std::optional<bool> Fields::boolean(const char* key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(key, "a boolean");
  return v->get<bool>();
}

std::optional<int64_t> Fields::integer(const char* key, int64_t lo, int64_t hi) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(INT64_MAX))
      bad_param(param(key), fmt::format("Invalid '{}': integer above maximum value. Expected a value <= {}, but got {} instead.",
                                        param(key), hi, u));
    x = int64_t(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else {
    wrong_type(key, "an integer");
  }
  if (x < lo)
    bad_param(param(key), fmt::format("Invalid '{}': integer below minimum value. Expected a value >= {}, but got {} instead.",
                                      param(key), lo, x));
  if (x > hi)
    bad_param(param(key), fmt::format("Invalid '{}': integer above maximum value. Expected a value <= {}, but got {} instead.",
                                      param(key), hi, x));
  return x;
}

std::optional<double> Fields::number(const char* key, double lo, double hi) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number");
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo)
    bad_param(param(key), fmt::format("Invalid '{}': decimal below minimum value. Expected a value >= {}, but got {} instead.",
                                      param(key), lo, x));
  if (x > hi)
    bad_param(param(key), fmt::format("Invalid '{}': decimal above maximum value. Expected a value <= {}, but got {} instead.",
                                      param(key), hi, x));
  return x;
}

std::optional<std::string> Fields::string(const char* key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(key, "a string");
  return v->get<std::string>();
}

std::vector<std::string> Fields::string_list(const char* key, size_t max) const {
  const json* v = get(key);
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > max)
      bad_param(param(key), fmt::format("Invalid '{}': array too long. Expected an array with maximum length {}, but got an "
                                        "array with length {} instead.", param(key), max, v->size()));
    for (size_t i = 0; i < v->size(); ++i) {
      const json& s = (*v)[i];
      if (!s.is_string())
        bad_param(param(key), fmt::format("Invalid type for '{}[{}]': expected a string, but got {} instead.", param(key), i,
                                          json_type_name(s)), "invalid_type");
      out.push_back(s.get<std::string>());
    }
  } else {
    wrong_type(key, "a string or an array of strings");
  }
  for (const auto& s : out)
    if (s.empty()) bad_param(param(key), fmt::format("Invalid '{}': stop strings must not be empty.", param(key)));
  return out;
}

const json* Fields::object(const char* key) const {
  const json* v = get(key);
  if (v && !v->is_object()) wrong_type(key, "an object");
  return v;
}

const json* Fields::array(const char* key) const {
  const json* v = get(key);
  if (v && !v->is_array()) wrong_type(key, "an array");
  return v;
}

}  // namespace strata::server
