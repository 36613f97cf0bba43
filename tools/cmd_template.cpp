// `strata template -t TEMPLATE.jinja -i CASE.json [--now "YYYY-MM-DD HH:MM:SS"]`: renders a chat
// template for one conversation (a record of ../shared/chat-templates/cases_input.json) and
// prints exactly the rendered text, with no newline added.
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "models/chat/chat_template.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace strata::tools {
namespace {

using Json = nlohmann::ordered_json;  // dicts keep their order, as tojson prints them

struct Options {
  std::string template_file, case_file, now;
};

// The variables transformers' apply_chat_template passes: documents is always there (None).
Json context_of(const Json& rec, const std::string& file) {
  if (!rec.is_object()) fail("{}: expected a JSON object (one case record)", file);
  Json ctx = Json::object();
  ctx["messages"] = rec.value("messages", Json::array());
  ctx["tools"] = rec.contains("tools") ? rec["tools"] : Json(nullptr);
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = rec.value("add_generation_prompt", false);
  ctx["bos_token"] = rec.value("bos_token", "");
  ctx["eos_token"] = rec.value("eos_token", "");
  if (rec.contains("extra") && rec["extra"].is_object())
    for (const auto& [k, v] : rec["extra"].items()) ctx[k] = v;
  return ctx;
}

std::time_t parse_now(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (!end || *end) fail("--now: expected \"YYYY-MM-DD HH:MM:SS\", got \"{}\"", text);
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

void run(const Options& o) {
  const std::optional<std::time_t> now = o.now.empty() ? std::nullopt : std::optional<std::time_t>(parse_now(o.now));
  Json rec;
  try {
    rec = Json::parse(read_file_bytes(o.case_file));
  } catch (const Json::parse_error& e) {
    fail("{}: not valid JSON: {}", o.case_file, e.what());
  }
  const auto tmpl = chat::ChatTemplate::parse(read_file_bytes(o.template_file), o.template_file);
  const std::string out = tmpl.render(context_of(rec, o.case_file), now);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void add_template_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("template", "Render a chat template (jinja2) for one conversation");
  auto o = std::make_shared<Options>();
  cmd->add_option("-t,--template", o->template_file, "Template file (.jinja)")->required();
  cmd->add_option("-i,--input", o->case_file,
                  "Case JSON: messages, tools, add_generation_prompt, bos_token, eos_token, extra")
      ->required();
  cmd->add_option("--now", o->now, "Local time strftime_now() sees, \"YYYY-MM-DD HH:MM:SS\" (default: now)");
  cmd->callback([&exit_code, o] {
    run(*o);
    exit_code = 0;
  });
}

}  // namespace strata::tools
