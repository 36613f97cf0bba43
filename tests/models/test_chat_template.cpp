// The chat-template interpreter against jinja2's renderings of real templates (../shared), and
// unit cases for the jinja2 semantics and limits that need no reference data.
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "models/chat/chat_template.h"
#include "storage/error.h"
#include "tests/shared_data.h"

using strata::chat::ChatTemplate;
using strata::chat::RenderLimits;
using json = nlohmann::ordered_json;  // keeps key order, as Python dicts do

namespace {

// 2026-01-15 12:00:00 local time, the instant the reference renderings were made at.
std::time_t pinned_now() {
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 15;
  tm.tm_hour = 12;
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

std::string render(std::string_view source, const json& context = json::object(), const RenderLimits& limits = {}) {
  return ChatTemplate::parse(source, "t").render(context, pinned_now(), limits);
}

// The strata::Error message rendering (or parsing) gives; fails the test when none is thrown.
std::string error_of(std::string_view source, const json& context = json::object(), const RenderLimits& limits = {}) {
  try {
    const std::string out = render(source, context, limits);
    FAIL_CHECK("expected an error, rendered: " << out);
  } catch (const strata::Error& e) {
    return e.what();
  }
  return "";
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The render context exactly as the reference renderer (render_reference.py) builds it.
json context_of(const json& record) {
  json ctx = json::object();
  ctx["messages"] = record["messages"];
  ctx["tools"] = record.contains("tools") ? record["tools"] : json(nullptr);
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = record["add_generation_prompt"];
  ctx["bos_token"] = record["bos_token"];
  ctx["eos_token"] = record["eos_token"];
  if (record.contains("extra") && record["extra"].is_object())
    for (const auto& [k, v] : record["extra"].items()) ctx[k] = v;
  return ctx;
}

}  // namespace

TEST_CASE("every reference case renders byte-for-byte as jinja2 does") {
  STRATA_REQUIRE_SHARED(shared);
  const std::filesystem::path dir = shared / "chat-templates";
  const json cases = json::parse(read_file(dir / "cases.json"));
  REQUIRE(cases.size() == 210);
  std::map<std::string, ChatTemplate> templates;
  int passed = 0;
  for (const json& rec : cases) {
    const std::string name = rec["name"];
    const std::string tname = rec["template"];
    CAPTURE(name);
    if (!templates.count(tname))
      templates.emplace(tname, ChatTemplate::parse(read_file(dir / "templates" / tname), tname));
    const ChatTemplate& t = templates.at(tname);
    const json ctx = context_of(rec);
    if (rec.value("error", false)) {
      std::string message;
      try {
        const std::string out = t.render(ctx, pinned_now());
        FAIL_CHECK("expected an error, rendered: " << out);
        continue;
      } catch (const strata::Error& e) {
        message = e.what();
      }
      CHECK(!message.empty());
      if (rec.value("error_type", "") == "TemplateError") CHECK(message.find(rec["error_message"].get<std::string>()) != std::string::npos);
      ++passed;
      continue;
    }
    std::string out;
    try {
      out = t.render(ctx, pinned_now());
    } catch (const strata::Error& e) {
      FAIL_CHECK("render failed: " << e.what());
      continue;
    }
    const std::string expected = rec["expected"];
    CHECK(out == expected);
    if (out == expected) ++passed;
  }
  MESSAGE(passed << " of " << cases.size() << " reference cases pass");
  CHECK(passed == 210);
}

TEST_CASE("syntax errors name the template, line and column") {
  const std::string e = error_of("hello\n{% if x %}\n{{ 1 + }}\n{% endif %}");
  CHECK(e.rfind("t:3:", 0) == 0);
  CHECK(e.find("expected an expression") != std::string::npos);
  CHECK(error_of("{% for x in y %}").find("t:1:") == 0);
  CHECK(error_of("{% for x in y %}").find("endfor") != std::string::npos);
  CHECK(error_of("{{ x | nosuchfilter }}") == "t:1:8: no filter named 'nosuchfilter'");
  CHECK(error_of("{% endif %}").find("unknown tag 'endif'") != std::string::npos);
  CHECK(error_of("{{ 'abc }}").find("unterminated string") != std::string::npos);
  CHECK(error_of("{% break %}").find("outside of a for loop") != std::string::npos);
}
