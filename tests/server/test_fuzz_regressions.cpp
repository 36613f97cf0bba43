// Request bodies the libFuzzer targets (fuzz/fuzz_openai.cpp, fuzz_ollama.cpp) found handled
// wrongly, reduced, each with the answer that replaced the failure. Each fails without its fix.
#include <doctest/doctest.h>

#include <string>

#include "server/json_fields.h"
#include "server/openai_api.h"
#include "tests/server/api_fixture.h"

using namespace strata;
using namespace strata::server;

namespace {

ApiError body_error(const std::string& body) {
  try {
    parse_body(body);
  } catch (const ApiError& e) {
    return e;
  }
  FAIL("accepted: " << body);
  return {};
}

}  // namespace

TEST_CASE("a number too large for a double is a 400 invalid_json, not an internal error") {
  // nlohmann throws out_of_range (not parse_error) for "number overflow": it escaped parse_body
  // and the server answered 500.
  for (const std::string body : {"922331e30876854775807", R"({"model":"tiny","temperature":1e400})",
                                 R"({"messages":[],"max_tokens":-1e999})"}) {
    CAPTURE(body);
    ApiError e = body_error(body);
    CHECK(e.status == 400);
    CHECK(e.code == "invalid_json");
    CHECK(e.message.find("not valid JSON: number overflow") != std::string::npos);
  }
  // Syntax errors keep nlohmann's reason with the position.
  ApiError e = body_error("{\"model\":");
  CHECK(e.code == "invalid_json");
  CHECK(e.message.find("not valid JSON: parse error at line 1") != std::string::npos);
}
