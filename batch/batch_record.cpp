#include "batch/batch_record.h"

namespace strata::batch {
namespace {

std::string line_of(const json& j) { return server::dump(j) + "\n"; }

json response(int64_t line_no, const std::string& custom_id, int status, json body) {
  return {{"status_code", status}, {"request_id", "req_" + line_digest(line_no, custom_id)}, {"body", std::move(body)}};
}

}  // namespace

std::string record_id(int64_t line_no, std::string_view custom_id) { return "batch_req_" + line_digest(line_no, custom_id); }

std::string answer_record(int64_t line_no, const std::string& custom_id, const json& body) {
  return line_of({{"id", record_id(line_no, custom_id)},
                  {"custom_id", custom_id},
                  {"response", response(line_no, custom_id, 200, body)},
                  {"error", nullptr}});
}

std::string refused_record(int64_t line_no, const std::string& custom_id, const server::ApiError& e) {
  return line_of({{"id", record_id(line_no, custom_id)},
                  {"custom_id", custom_id},
                  {"response", response(line_no, custom_id, e.status, server::openai_error_body(e))},
                  {"error", nullptr}});
}

std::string error_record(const LineError& e) {
  return line_of({{"id", record_id(e.line, e.custom_id.value_or(""))},
                  {"custom_id", e.custom_id ? json(*e.custom_id) : json(nullptr)},
                  {"response", nullptr},
                  {"error", {{"code", e.code}, {"message", e.message}, {"line", e.line}}}});
}

std::optional<Record> parse_record(std::string_view line) {
  json j;
  try {
    j = json::parse(line.begin(), line.end());
  } catch (const json::exception&) {
    return std::nullopt;
  }
  if (!j.is_object()) return std::nullopt;
  const auto id = j.find("id");
  const auto resp = j.find("response");
  const auto err = j.find("error");
  if (id == j.end() || !id->is_string() || !id->get_ref<const std::string&>().starts_with("batch_req_")) return std::nullopt;
  if (resp == j.end() || err == j.end()) return std::nullopt;
  Record r;
  r.id = id->get<std::string>();
  if (auto c = j.find("custom_id"); c != j.end() && c->is_string()) r.custom_id = c->get<std::string>();
  r.ok = err->is_null() && resp->is_object() && resp->value("status_code", 0) == 200;
  return r;
}

}  // namespace strata::batch
