// `strata template`: renders reference cases exactly (stdout, no added newline) and reports a
// template's raise_exception as "strata: <message>" with exit status 1.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/shared_data.h"
#include "tests/tools/run_strata.h"

using Json = nlohmann::ordered_json;
using strata::test::run_strata;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Json& find_case(const Json& cases, const std::string& name) {
  for (const Json& rec : cases)
    if (rec["name"] == name) return rec;
  FAIL("no reference case " << name);
  return cases[0];
}

// Writes one case record to a scratch file and runs `strata template` on it.
strata::test::RunResult run_case(const std::filesystem::path& dir, const Json& rec, bool stdout_only) {
  const auto file = std::filesystem::temp_directory_path() / fmt::format("strata_template_{}.json", ::getpid());
  std::ofstream(file, std::ios::binary) << rec.dump();
  const auto result = run_strata(fmt::format("template -t \"{}\" -i \"{}\" --now \"2026-01-15 12:00:00\"",
                                             (dir / "templates" / rec["template"].get<std::string>()).string(),
                                             file.string()),
                                 stdout_only);
  std::filesystem::remove(file);
  return result;
}

}  // namespace

TEST_CASE("strata template renders reference cases byte for byte") {
  STRATA_REQUIRE_SHARED(shared);
  const auto dir = shared / "chat-templates";
  const Json cases = Json::parse(slurp(dir / "cases.json"));
  // Tools (dict order, tojson), strftime_now (--now) and non-ASCII text in one go.
  for (const char* name : {"Qwen-Qwen3-0.6B/tool_call_roundtrip", "meta-llama-Llama-3.1-8B-Instruct/tools_prompt",
                           "Mistral-Small-3.2-24B-Instruct-2506/unicode_and_special_chars"}) {
    CAPTURE(name);
    const Json& rec = find_case(cases, name);
    const auto r = run_case(dir, rec, true);
    CHECK(r.status == 0);
    CHECK(r.output == rec["expected"].get<std::string>());
  }
}

TEST_CASE("strata template exits 1 with the template's own error message") {
  STRATA_REQUIRE_SHARED(shared);
  const auto dir = shared / "chat-templates";
  const Json cases = Json::parse(slurp(dir / "cases.json"));
  const Json& rec = find_case(cases, "google-gemma-2-2b-it/system_user");
  REQUIRE(rec.value("error", false));
  const auto r = run_case(dir, rec, false);
  CHECK(r.status == 1);
  CHECK(r.output == "strata: " + rec["error_message"].get<std::string>() + "\n");
}

TEST_CASE("strata template reports a syntax error with file, line and column") {
  const auto file = std::filesystem::temp_directory_path() / fmt::format("strata_bad_{}.jinja", ::getpid());
  const auto input = std::filesystem::temp_directory_path() / fmt::format("strata_bad_{}.json", ::getpid());
  std::ofstream(file, std::ios::binary) << "ok\n{% for m in messages %}{{ m.role }";
  std::ofstream(input, std::ios::binary) << R"({"messages": []})";
  const auto r = run_strata(fmt::format("template -t \"{}\" -i \"{}\"", file.string(), input.string()));
  std::filesystem::remove(file);
  std::filesystem::remove(input);
  CHECK(r.status == 1);
  CHECK(r.output.find(fmt::format("strata: {}:2:", file.string())) == 0);
}
