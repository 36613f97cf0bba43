// The chat-template interpreter against jinja2's renderings of real templates (../shared), and
// unit cases for the jinja2 semantics and limits that need no reference data.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

TEST_CASE("rendering a real template for ten messages is fast") {
  STRATA_REQUIRE_SHARED(shared);
  const auto t = ChatTemplate::parse(read_file(shared / "chat-templates" / "templates" / "Qwen-Qwen3-0.6B.jinja"), "qwen3");
  json ctx = {{"add_generation_prompt", true}, {"bos_token", ""}, {"eos_token", "<|im_end|>"}, {"tools", nullptr}};
  ctx["messages"] = json::array();
  for (int i = 0; i < 10; ++i)
    ctx["messages"].push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "message number " + std::to_string(i)}});
  const int reps = 200;
  const auto start = std::chrono::steady_clock::now();
  size_t bytes = 0;
  for (int i = 0; i < reps; ++i) bytes += t.render(ctx, pinned_now()).size();
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / reps;
  MESSAGE("qwen3, 10 messages: " << us << " us per render");
  CHECK(bytes > 0);
#ifndef __SANITIZE_ADDRESS__  // sanitizer builds run many times slower; only optimised builds are timed
  CHECK(us < 1000.0);  // the budget for a prompt render; far above what it takes
#endif
}

TEST_CASE("runtime errors name the template, line and what failed; raise_exception is the template's text") {
  CHECK(error_of("a\n{{ x.y }}") == "t:2:5: 'x' is undefined");
  CHECK(error_of("{{ x() }}") == "t:1:5: 'x' is undefined");
  CHECK(error_of("{% for m in none %}{% endfor %}") == "t:1:4: 'NoneType' object is not iterable");
  CHECK(error_of("{{ 'a' + 1 }}") == "t:1:8: can only concatenate str (not \"int\") to str");
  CHECK(error_of("{{ 1 // 0 }}") == "t:1:6: integer division or modulo by zero");
  CHECK(error_of("{{ raise_exception('Only user and assistant roles') }}") == "Only user and assistant roles");
  CHECK(error_of("{{ x|tojson }}").find("not JSON serializable") != std::string::npos);
}

TEST_CASE("limits stop hostile templates with a clear error") {
  SUBCASE("a huge loop runs out of steps") {
    CHECK(error_of("{% for i in range(100000000) %}{% endfor %}").find("step limit of 20000000") != std::string::npos);
    RenderLimits small;
    small.max_steps = 100000;
    const std::string e = error_of("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", {}, small);
    CHECK(e.find("t:1:") == 0);
    CHECK(e.find("100000") != std::string::npos);
    CHECK(render("{% for i in range(100) %}{% endfor %}ok", {}, small) == "ok");
  }
  SUBCASE("output larger than the limit") {
    RenderLimits small;
    small.max_output_bytes = 10000;
    CHECK(error_of("{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}", {}, small).find("output exceeds the limit of 10000 bytes") != std::string::npos);
    CHECK(render("{% for i in range(99) %}{{ 'x' * 100 }}{% endfor %}", {}, small).size() == 9900);
    // A string that doubles itself is stopped before it can exhaust memory.
    CHECK(error_of("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", {}, small)
              .find("exceeds the output limit") != std::string::npos);
  }
  SUBCASE("runaway recursion hits the depth limit") {
    const std::string e = error_of("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}");
    CHECK(e.find("t:1:") == 0);
    CHECK(e.find("limit of 256") != std::string::npos);
    CHECK(render("{% macro r(n) %}{% if n < 20 %}{{ r(n + 1) }}{% else %}{{ n }}{% endif %}{% endmacro %}{{ r(0) }}") == "20");
  }
  SUBCASE("deep nesting in the source is a syntax error, not a crash") {
    CHECK(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nesting deeper") != std::string::npos);
  }
}

TEST_CASE("whitespace control: trim_blocks, lstrip_blocks and - markers") {
  CHECK(render("a\n  {% if true %}\n  b\n  {% endif %}\nc") == "a\n  b\nc");
  CHECK(render("a  {% if true %}b{% endif %}  c") == "a  b  c");
  CHECK(render("{{ 'x' }}  {% if true %}y{% endif %}\n  {{ 'z' }}") == "x  y  z");
  CHECK(render("  {{ 'x' }}\n  {%- if true -%}\n    y\n  {%- endif %}\n") == "  xy");  // trailing newline dropped
  CHECK(render("line\n    {%+ if true %}kept{% endif %}") == "line\n    kept");
  CHECK(render("a {#- c #} b {# c -#} d\n  {# comment #}\ne") == "a b d\ne");
  CHECK(render("{% raw %}{{ not evaluated }}{% endraw %}") == "{{ not evaluated }}");
  CHECK(render("{% generation %}{{ 'kept' }}{% endgeneration %}") == "kept");
}

TEST_CASE("scoping: loops do not leak, namespaces carry state out") {
  CHECK(render("{% set x = 1 %}{% for i in [5, 6] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}") == "15161");
  CHECK(render("{% set ns = namespace(x=1) %}{% for i in [1, 2, 3] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}") == "7");
  CHECK(render("{% set s = 'x' %}{% macro show() %}{{ s }}{% endmacro %}{% set s = 'y' %}{{ show() }}") == "y");
  CHECK(render("{% with a = 5 %}{{ a }}{% endwith %}[{{ a }}]") == "5[]");
  CHECK(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c %}block {{ a }}{% endset %}[{{ c }}]") == "12[block 1]");
  CHECK(render("{% macro m(a, b=2, c='x') %}[{{ a }}{{ b }}{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(1, c='z') }}") ==
        "[12x][13x][12z]");
  CHECK(render("{% macro outer() %}<{{ caller() }}>{% endmacro %}{% call outer() %}inner{% endcall %}") == "<inner>");
}

TEST_CASE("loop variables, loop filters, else, break and continue") {
  CHECK(render("{% for x in [3, 1, 2] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
               "{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }};{% endfor %}") ==
        "1032TrueFalse31a;2121FalseFalse332b;3210FalseTrue31a;");
  CHECK(render("{% for x in [3, 1, 2] if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}{% for x in [] %}{% else %}empty{% endfor %}") ==
        "3222empty");
  CHECK(render("{% for i in [1, 2, 3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}|"
               "{% for i in [1, 2, 3] %}{% if i == 2 %}{% continue %}{% endif %}{{ i }}{% endfor %}") == "1|13");
  CHECK(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}") == "a=1,b=2,");
}

TEST_CASE("slicing and indexing as Python") {
  const json ctx = {{"l", {3, 1, 2}}, {"s", "Hello World"}, {"u", "héllo 日本"}};
  CHECK(render("{{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[::-1] }} {{ l[5] }}|{{ l[10:] }}", ctx) == "3 2 [1, 2] [2, 1, 3] |[]");
  CHECK(render("{{ s[1:4] }} {{ s[::2] }} {{ s[-5:] }} {{ u[1:3] }} {{ u[-2:] }} {{ u|length }}", ctx) == "ell HloWrd World él 日本 8");
}

TEST_CASE("printing follows Python's str() and repr()") {
  const json ctx = {{"d", {{"a", 1}, {"b", {true, nullptr, 1.5}}}}, {"n", nullptr}};
  CHECK(render("{{ d }}|{{ n }}|{{ true }}|{{ 1.0 }}|{{ 1e16 }}|{{ 1.5e-7 }}|{{ 0.1 + 0.2 }}|{{ (1,) }}", ctx) ==
        "{'a': 1, 'b': [True, None, 1.5]}|None|True|1.0|1e+16|1.5e-07|0.30000000000000004|(1,)");
  CHECK(render(R"({{ ["it's", 'say "x"', 'both \' "', "a\nb"] }})") == R"(["it's", 'say "x"', 'both \' "', 'a\nb'])");
  CHECK(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ -2 ** 2 }}") == "3 -4 2 3.5 1024 4");
  CHECK(render("{{ '%s-%d-%05.2f' % ('a', 3, 2.5) }} {{ '{} {name}'.format(1, name='x') }}") == "a-3-02.50 1 x");
}

TEST_CASE("tojson is json.dumps with ensure_ascii off, order kept") {
  json ctx = json::object();
  ctx["d"] = json::parse(R"({"z": 1, "a": [1.0, "é\n\"", null, true], "m": {}})");
  CHECK(render("{{ d|tojson }}", ctx) == R"({"z": 1, "a": [1.0, "é\n\"", null, true], "m": {}})");
  CHECK(render("{{ d|tojson(indent=2) }}", ctx) ==
        "{\n  \"z\": 1,\n  \"a\": [\n    1.0,\n    \"é\\n\\\"\",\n    null,\n    true\n  ],\n  \"m\": {}\n}");
  CHECK(render("{{ d|tojson(sort_keys=true) }}", ctx) == R"({"a": [1.0, "é\n\"", null, true], "m": {}, "z": 1})");
  CHECK(render("{{ 'é'|tojson(ensure_ascii=true) }}") == R"("\u00e9")");
}

TEST_CASE("filters, tests and methods the chat templates use") {
  const json ctx = {{"msgs", {{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", "yo"}}}}};
  CHECK(render("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}", ctx) == "hi");
  CHECK(render("{{ msgs|rejectattr('role', 'eq', 'user')|list|length }}", ctx) == "1");
  CHECK(render("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'a']|sort }} {{ [1, 2, 1]|unique|list }} {{ [1, 2]|sum }}") ==
        "[1, 2, 3] ['A', 'a', 'b'] [1, 2] 3");
  CHECK(render("{{ '  x  '|trim }}|{{ 'a b'.split() }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'xxaxx'.strip('x') }}") ==
        "x|['a', 'b'] ['a,b', 'c'] a");
  CHECK(render("{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ true is number }} {{ {} is mapping }} "
               "{{ 9 is divisibleby 3 }} {{ [] is iterable }} {{ 'ab' is lower }}") ==
        "False True True True True True True True");
  CHECK(render("{{ x|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }}") == "d d None");
  CHECK(render("{{ 'l1\nl2\n\nl3'|indent(2) }}") == "l1\n  l2\n\n  l3");
  CHECK(render("{{ {'a': 1}.get('b', 5) }} {{ {'a': 1}.items()|list }} {{ {'items': 3}['items'] }}") == "5 [('a', 1)] 3");
  CHECK(render("{% set l = [1] %}{% set _ = l.append(2) %}{{ l }}") == "[1, 2]");
  CHECK(render("{{ strftime_now('%Y-%m-%d %H:%M') }}") == "2026-01-15 12:00");
}

TEST_CASE("the ChatML fallback template") {
  json ctx = {{"add_generation_prompt", true}};
  ctx["messages"] = json::parse(R"([{"role": "user", "content": "hi"}])");
  CHECK(ChatTemplate::parse(strata::chat::kChatMlTemplate).render(ctx) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("one parsed template renders concurrently from many threads") {
  const auto t = ChatTemplate::parse("{% for i in range(n) %}{{ i }},{% endfor %}");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int r = 0; r < 200; ++r) {
        std::string want;
        for (int i = 0; i < k + 3; ++i) want += std::to_string(i) + ",";
        if (t.render(json{{"n", k + 3}}) != want) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
}

TEST_CASE("self-referencing and deeply nested values fail cleanly instead of crashing") {
  CHECK(error_of("{% set l = [] %}{% set _ = l.append(l) %}{{ l }}").find("nested deeper than") != std::string::npos);
  CHECK(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns|tojson }}").find("not JSON serializable") != std::string::npos);
  // A million-level chain is built, dropped and freed without recursing once per level.
  CHECK(render("{% set ns = namespace(x=[]) %}{% for i in range(1000000) %}{% set ns.x = [ns.x] %}{% endfor %}"
               "{% set ns.x = none %}done") == "done");
}
