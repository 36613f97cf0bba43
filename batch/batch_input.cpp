#include "batch/batch_input.h"

#include <fmt/format.h>

#include "server/json_fields.h"

namespace strata::batch {
namespace {

LineError error(int64_t line, std::optional<std::string> id, std::string code, std::string message) {
  return LineError{line, std::move(id), std::move(code), fmt::format("line {}: {}", line, message)};
}

// A short, printable view of a value for messages (a hostile line may hold megabytes).
std::string shown(const json& v) {
  std::string s = server::dump(v);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

uint64_t fnv1a(std::string_view s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

bool is_blank_line(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

ParsedLine parse_input_line(std::string_view text, int64_t line_no) {
  if (text.size() > kMaxLineBytes)
    return error(line_no, std::nullopt, "line_too_long",
                 fmt::format("the line is {} bytes; at most {} are accepted", text.size(), kMaxLineBytes));
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);  // CRLF files
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    std::string why = e.what();
    if (auto p = why.find("parse error"); p != std::string::npos) why = why.substr(p);
    return error(line_no, std::nullopt, "invalid_json", fmt::format("not valid JSON: {}", why));
  }
  if (!j.is_object())
    return error(line_no, std::nullopt, "invalid_line",
                 fmt::format("expected a JSON object {{\"custom_id\", \"method\", \"url\", \"body\"}}, got {}",
                             server::json_type_name(j)));
  std::optional<std::string> id;
  const auto cid = j.find("custom_id");
  if (cid == j.end() || cid->is_null())
    return error(line_no, std::nullopt, "missing_custom_id", "'custom_id' is missing: every request needs one");
  if (!cid->is_string() || cid->get_ref<const std::string&>().empty())
    return error(line_no, std::nullopt, "invalid_custom_id",
                 fmt::format("'custom_id': expected a non-empty string, got {}", shown(*cid)));
  id = cid->get<std::string>();

  const auto method = j.find("method");
  if (method == j.end() || !(method->is_string() && *method == "POST"))
    return error(line_no, id, "invalid_method",
                 fmt::format("'method': expected \"POST\", got {}", method == j.end() ? std::string("nothing") : shown(*method)));

  InputLine in;
  in.line = line_no;
  const auto url = j.find("url");
  if (url == j.end() || !url->is_string())
    return error(line_no, id, "invalid_url",
                 fmt::format("'url': expected \"/v1/chat/completions\" or \"/v1/completions\", got {}",
                             url == j.end() ? std::string("nothing") : shown(*url)));
  const std::string& u = url->get_ref<const std::string&>();
  // The server routes both spellings; so does a batch.
  if (u == "/v1/chat/completions" || u == "/chat/completions") in.endpoint = Endpoint::Chat;
  else if (u == "/v1/completions" || u == "/completions") in.endpoint = Endpoint::Completion;
  else
    return error(line_no, id, "invalid_url",
                 fmt::format("'url': {} is not supported by strata batch; use /v1/chat/completions or "
                             "/v1/completions",
                             shown(*url)));

  const auto body = j.find("body");
  if (body == j.end() || body->is_null()) return error(line_no, id, "missing_body", "'body' is missing");
  if (!body->is_object())
    return error(line_no, id, "invalid_body",
                 fmt::format("'body': expected a JSON object (the request), got {}", server::json_type_name(*body)));
  in.custom_id = std::move(*id);
  in.body = std::move(*body);
  return in;
}

std::optional<std::string> custom_id_of(const ParsedLine& p) {
  if (const auto* in = std::get_if<InputLine>(&p)) return in->custom_id;
  return std::get<LineError>(p).custom_id;
}

ParsedLine CustomIdClaims::claim(ParsedLine p) {
  auto* in = std::get_if<InputLine>(&p);
  if (!in) return p;
  const auto [it, fresh] = owner_.try_emplace(in->custom_id, in->line);
  if (fresh) return p;
  return error(in->line, in->custom_id, "duplicate_custom_id",
               fmt::format("custom_id {} was already used on line {}; each request needs its own",
                           shown(json(in->custom_id)), it->second));
}

std::string line_digest(int64_t line_no, std::string_view custom_id) {
  const std::string key = fmt::format("{}\n{}", line_no, custom_id);
  const uint64_t a = fnv1a(key, 0xcbf29ce484222325ull);
  const uint64_t b = fnv1a(key, a ^ 0x9e3779b97f4a7c15ull);
  return fmt::format("{:016x}{:08x}", a, uint32_t(b));
}

}  // namespace strata::batch
