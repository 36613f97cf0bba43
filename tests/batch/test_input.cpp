// batch_input: one input line becomes a request or an error naming the line, field and what was
// expected; duplicates across the file; the record ids and lines the output is made of.
#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "batch/batch_input.h"
#include "batch/batch_record.h"
#include "batch/batch_request.h"

using namespace strata::batch;

namespace {

LineError err(std::string_view text, int64_t line = 3) {
  ParsedLine p = parse_input_line(text, line);
  REQUIRE_MESSAGE(std::holds_alternative<LineError>(p), text);
  return std::get<LineError>(p);
}

}  // namespace

TEST_CASE("a well-formed chat and completion line") {
  ParsedLine p = parse_input_line(
      R"({"custom_id":"a-1","method":"POST","url":"/v1/chat/completions","body":{"model":"x","messages":[],"z":1,"a":2}})", 4);
  REQUIRE(std::holds_alternative<InputLine>(p));
  const InputLine& in = std::get<InputLine>(p);
  CHECK(in.line == 4);
  CHECK(in.custom_id == "a-1");
  CHECK(in.endpoint == Endpoint::Chat);
  CHECK(in.body.dump() == R"({"model":"x","messages":[],"z":1,"a":2})");  // key order kept
  ParsedLine c = parse_input_line("{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{}}\r", 1);
  REQUIRE(std::holds_alternative<InputLine>(c));
  CHECK(std::get<InputLine>(c).endpoint == Endpoint::Completion);
}

TEST_CASE("each kind of bad line has its code and names the line") {
  struct Case {
    const char* text;
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      {"{not json", "invalid_json", "not valid JSON"},
      {"\xff\xfe", "invalid_json", "not valid JSON"},
      {"[1,2]", "invalid_line", "an array"},
      {R"({"method":"POST","url":"/v1/completions","body":{}})", "missing_custom_id", "'custom_id' is missing"},
      {R"({"custom_id":7,"method":"POST","url":"/v1/completions","body":{}})", "invalid_custom_id", "got 7"},
      {R"({"custom_id":"","method":"POST","url":"/v1/completions","body":{}})", "invalid_custom_id", "non-empty"},
      {R"({"custom_id":"a","method":"GET","url":"/v1/completions","body":{}})", "invalid_method", "\"GET\""},
      {R"({"custom_id":"a","url":"/v1/completions","body":{}})", "invalid_method", "got nothing"},
      {R"({"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{}})", "invalid_url", "/v1/embeddings"},
      {R"({"custom_id":"a","method":"POST","body":{}})", "invalid_url", "got nothing"},
      {R"({"custom_id":"a","method":"POST","url":"/v1/completions"})", "missing_body", "'body' is missing"},
      {R"({"custom_id":"a","method":"POST","url":"/v1/completions","body":"hi"})", "invalid_body", "a string"},
  };
  for (const Case& c : cases) {
    const LineError e = err(c.text);
    CHECK_MESSAGE(e.code == c.code, c.text);
    CHECK_MESSAGE(e.message.starts_with("line 3: "), e.message);
    CHECK_MESSAGE(e.message.find(c.says) != std::string::npos, e.message);
  }
  CHECK(err(R"({"custom_id":"a","method":"GET","url":"/v1/completions","body":{}})").custom_id == "a");
  CHECK_FALSE(err("{not json").custom_id);
  CHECK(err(std::string(kMaxLineBytes + 1, ' ')).code == "line_too_long");
}

TEST_CASE("blank lines") {
  CHECK(is_blank_line(""));
  CHECK(is_blank_line(" \t\r"));
  CHECK_FALSE(is_blank_line(" {}"));
}

TEST_CASE("the first well-formed line owns a custom_id; later ones are duplicates") {
  CustomIdClaims claims;
  auto line = [](const char* id, int64_t n) {
    return parse_input_line(fmt::format(R"({{"custom_id":"{}","method":"POST","url":"/v1/completions","body":{{}}}})", id), n);
  };
  CHECK(std::holds_alternative<InputLine>(claims.claim(line("x", 1))));
  CHECK(std::holds_alternative<InputLine>(claims.claim(line("y", 2))));
  // A malformed line with the same custom_id does not take it.
  CHECK(std::holds_alternative<LineError>(claims.claim(parse_input_line(R"({"custom_id":"z","method":"GET"})", 3))));
  CHECK(std::holds_alternative<InputLine>(claims.claim(line("z", 4))));
  ParsedLine dup = claims.claim(line("x", 5));
  REQUIRE(std::holds_alternative<LineError>(dup));
  CHECK(std::get<LineError>(dup).code == "duplicate_custom_id");
  CHECK(std::get<LineError>(dup).message.find("line 1") != std::string::npos);
  CHECK(std::get<LineError>(dup).custom_id == "x");
}

TEST_CASE("record ids are stable, differ by line and custom_id, and read back") {
  CHECK(record_id(1, "a") == record_id(1, "a"));
  CHECK(record_id(1, "a") != record_id(2, "a"));
  CHECK(record_id(1, "a") != record_id(1, "b"));
  CHECK(seed_for("a") != seed_for("b"));

  const std::string ok = answer_record(5, "q", json{{"object", "text_completion"}});
  CHECK(ok.back() == '\n');
  CHECK(ok.find('\n') == ok.size() - 1);
  auto r = parse_record(std::string_view(ok).substr(0, ok.size() - 1));
  REQUIRE(r);
  CHECK(r->id == record_id(5, "q"));
  CHECK(r->custom_id == "q");
  CHECK(r->ok);
  CHECK(ok.starts_with(R"({"id":"batch_req_)"));
  CHECK(ok.find(R"("response":{"status_code":200,"request_id":"req_)") != std::string::npos);

  const std::string refused = refused_record(6, "r", strata::server::ApiError(400, "bad", "messages"));
  auto rr = parse_record(refused);
  REQUIRE(rr);
  CHECK_FALSE(rr->ok);
  CHECK(refused.find(R"("status_code":400)") != std::string::npos);

  const std::string e = error_record(err("{bad", 9));
  auto re = parse_record(e);
  REQUIRE(re);
  CHECK_FALSE(re->ok);
  CHECK_FALSE(re->custom_id);
  CHECK(re->id == record_id(9, ""));
  CHECK(e.find(R"("response":null)") != std::string::npos);

  CHECK_FALSE(parse_record(R"({"id":"batch_req_1","custom_id":"a","respo)"));
  CHECK_FALSE(parse_record(R"({"id":"x","response":null,"error":null})"));
  CHECK_FALSE(parse_record(""));
}
