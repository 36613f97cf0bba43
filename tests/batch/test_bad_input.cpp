// Bad input: a file mixing 15 kinds of bad line with good ones gets one error record per bad
// line (in --errors, or in the output without it), the good ones the same answers as alone, and
// the command neither crashes nor stops.
#include <doctest/doctest.h>

#include "tests/batch/batch_test_util.h"

using namespace strata::test;

// Removes the temp folder (model included) when the test process ends.
static CliTempCleanup cleanup;
using nlohmann::json;

namespace {

struct Bad {
  std::string line;
  std::string code;  // error.code, or the API error's code/param for refused bodies
  int status;        // 0: no response (the line is no request); else the response's status_code
};

std::string req(const std::string& id, const std::string& url, const std::string& body, const std::string& method = "POST") {
  return fmt::format(R"({{"custom_id":"{}","method":"{}","url":"{}","body":{}}})", id, method, url, body);
}

std::vector<Bad> bad_lines() {
  std::string long_prompt;
  for (int i = 0; i < 700; ++i) long_prompt += "word ";
  return {
      {R"({"custom_id":"x1","method":"POST",)", "invalid_json", 0},
      {"{\"custom_id\":\"x2\xff\xfe\"}", "invalid_json", 0},
      {"42", "invalid_line", 0},
      {R"({"method":"POST","url":"/v1/completions","body":{"prompt":"a"}})", "missing_custom_id", 0},
      {R"({"custom_id":17,"method":"POST","url":"/v1/completions","body":{"prompt":"a"}})", "invalid_custom_id", 0},
      {req("good-1", "/v1/completions", R"({"prompt":"again"})"), "duplicate_custom_id", 0},
      {req("x7", "/v1/completions", R"({"prompt":"a"})", "GET"), "invalid_method", 0},
      {req("x8", "/v1/embeddings", R"({"input":"a"})"), "invalid_url", 0},
      {R"({"custom_id":"x9","method":"POST","url":"/v1/completions"})", "missing_body", 0},
      {req("x10", "/v1/completions", "[1,2]"), "invalid_body", 0},
      {req("x11", "/v1/chat/completions", R"({"model":"m"})"), "messages", 400},
      {req("x12", "/v1/completions", R"({"prompt":"a","temperature":7})"), "temperature", 400},
      {req("x13", "/v1/completions", R"({"prompt":"a","max_tokens":"ten"})"), "max_tokens", 400},
      {req("x14", "/v1/completions", fmt::format(R"({{"prompt":"{}"}})", long_prompt)), "context_length_exceeded", 400},
      {req("x15", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],"n":3})"), "n", 400},
  };
}

std::vector<std::string> good_lines() {
  return {req("good-0", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"hello"}],"max_tokens":5})"),
          req("good-1", "/v1/completions", R"({"prompt":"the river","max_tokens":5,"temperature":0})"),
          req("good-2", "/v1/completions", R"({"prompt":"a stone","max_tokens":4,"seed":9})"),
          req("good-3", "/v1/chat/completions",
              R"({"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"why"}],"max_tokens":5})")};
}

// custom_id -> the body's choices and usage (ids differ with the line number; answers must not).
std::map<std::string, std::string> answers(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const auto& l : lines_of(text)) {
    const json j = json::parse(l);
    if (j["response"].is_object() && j["response"]["status_code"] == 200)
      out[j["custom_id"]] = j["response"]["body"]["choices"].dump() + j["response"]["body"]["usage"].dump();
  }
  return out;
}

}  // namespace

TEST_CASE("every bad line gets one error record; the good ones their answers") {
  const std::string model = batch_model();
  const std::string dir = batch_dir("bad");
  const auto bad = bad_lines();
  const auto good = good_lines();
  std::string mixed, clean;
  // good-1 comes before its duplicate; blank lines are skipped without a record.
  mixed += good[0] + "\n" + good[1] + "\n\n";
  for (size_t i = 0; i < bad.size(); ++i) {
    mixed += bad[i].line + "\n";
    if (i == 6) mixed += good[2] + "\n   \n";
  }
  mixed += good[3] + "\n";
  for (const auto& g : good) clean += g + "\n";
  write_text(dir + "/mixed.jsonl", mixed);
  write_text(dir + "/clean.jsonl", clean);

  RunResult r = run_batch(fmt::format("-m {} -i {}/clean.jsonl -o {}/clean-out.jsonl -t 1", model, dir, dir));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  r = run_batch(fmt::format("-m {} -i {}/mixed.jsonl -o {}/out.jsonl --errors {}/err.jsonl -t 1 --json", model, dir, dir, dir));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("\"failed\": 15") != std::string::npos);
  CHECK(r.output.find("\"ok\": 4") != std::string::npos);

  // The good ones: the same answers as in a file of their own, and nothing else in the output.
  const std::string out = read_text(dir + "/out.jsonl");
  CHECK(lines_of(out).size() == 4);
  const auto expected = answers(read_text(dir + "/clean-out.jsonl"));
  CHECK(expected.size() == 4);
  CHECK(answers(out) == expected);
  for (const auto& l : lines_of(out)) CHECK(json::parse(l)["response"]["body"]["model"] == "batch-moe-q8_0");

  // One error record per bad line, in input order here (no generation in between).
  const auto errs = lines_of(read_text(dir + "/err.jsonl"));
  REQUIRE(errs.size() == bad.size());
  std::map<std::string, int> seen;
  for (size_t i = 0; i < errs.size(); ++i) {
    const json e = json::parse(errs[i]);
    std::string code;
    int status = 0;
    if (e["response"].is_null()) {
      code = e["error"]["code"];
      CHECK(e["error"]["message"].get<std::string>().starts_with("line "));
    } else {
      status = e["response"]["status_code"];
      const json& err = e["response"]["body"]["error"];
      code = err["code"] == "context_length_exceeded" ? std::string("context_length_exceeded") : err["param"].get<std::string>();
      CHECK(e["error"].is_null());
    }
    ++seen[code + "/" + std::to_string(status)];
  }
  std::map<std::string, int> want;
  for (const Bad& b : bad) ++want[b.code + "/" + std::to_string(b.status)];
  CHECK(want.size() >= 14);  // kinds of bad line (invalid JSON twice: syntax and UTF-8)
  CHECK(seen == want);

  // Without --errors everything goes to the output; a rerun writes nothing new.
  r = run_batch(fmt::format("-m {} -i {}/mixed.jsonl -o {}/all.jsonl -t 1", model, dir, dir));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(lines_of(read_text(dir + "/all.jsonl")).size() == bad.size() + good.size());
  const std::string before = read_text(dir + "/all.jsonl");
  r = run_batch(fmt::format("-m {} -i {}/mixed.jsonl -o {}/all.jsonl -t 1 --json", model, dir, dir));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("\"already_done\": 19") != std::string::npos);
  CHECK(read_text(dir + "/all.jsonl") == before);

  // A file that is not a batch output is refused, not truncated.
  write_text(dir + "/other.jsonl", "{\"a\":1}\n{\"b\":2}\n");
  r = run_batch(fmt::format("-m {} -i {}/mixed.jsonl -o {}/other.jsonl -t 1", model, dir, dir));
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.output.find("not a strata batch record") != std::string::npos, r.output);
  CHECK(read_text(dir + "/other.jsonl") == "{\"a\":1}\n{\"b\":2}\n");
}

TEST_CASE("progress lines are JSON when stderr is no terminal; the summary names the counts") {
  const std::string model = batch_model();
  const std::string dir = batch_dir("progress");
  std::string clean;
  for (const auto& g : good_lines()) clean += g + "\n";
  write_text(dir + "/in.jsonl", clean);
  const RunResult r = run_shell(fmt::format(
      "STRATA_PROGRESS=lines STRATA_PROGRESS_AFTER=0 \"{}\" batch -m {} -i {}/in.jsonl -o {}/out.jsonl -t 1 "
      "2>{}/stderr.txt",
      strata_binary(), model, dir, dir, dir));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("batch: 4 requests: 4 ok, 0 failed, 0 done before; complete") != std::string::npos, r.output);
  CHECK(r.output.find("generated tok/s") != std::string::npos);
  int progress_lines = 0;
  for (const auto& l : lines_of(read_text(dir + "/stderr.txt"))) {
    if (!l.starts_with("{")) continue;
    const json j = json::parse(l);
    CHECK(j["progress"] == "batch");
    CHECK(j["total"] == 4);
    CHECK(j.contains("generated_tok_s"));
    CHECK(j.contains("eta_s"));
    ++progress_lines;
  }
  CHECK(progress_lines >= 1);
}
