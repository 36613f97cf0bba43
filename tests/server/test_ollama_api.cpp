// The Ollama mapping: /api/generate and /api/chat bodies, NDJSON lines and the listing bodies.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "server/ollama_api.h"
#include "tests/server/api_fixture.h"

using namespace strata;
using namespace strata::server;
using server::json;

namespace {

ApiError generate_error(const test::ApiFixture& f, const json& body) {
  try {
    prepare_generate(body, f.m);
  } catch (const ApiError& e) {
    return e;
  }
  FAIL("accepted: " << body.dump());
  return {};
}

std::vector<json> lines(const std::string& s) {
  std::vector<json> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(json::parse(l));
  return out;
}

ModelDetails details() {
  ModelDetails d;
  d.path = "/models/tiny.gguf";
  d.size = 1234;
  d.modified = 1700000000;
  d.digest = std::string(64, 'a');
  d.family = "llama";
  d.parameter_count = 46'700'000'000ull;
  d.parameter_size = format_parameter_count(d.parameter_count);
  d.quantization_level = "Q4_K";
  d.model_info = {{"general.architecture", "llama"}};
  return d;
}

}  // namespace

TEST_CASE("generate: defaults, system prompt, raw, options") {
  test::ApiFixture f;
  PreparedRequest p = prepare_generate({{"model", "tiny"}, {"prompt", "hi"}, {"system", "be kind"}}, f.m);
  CHECK(p.kind == ApiKind::OllamaGenerate);
  CHECK(p.stream);  // Ollama streams unless told not to
  CHECK(p.prompt_text == "system: be kind\nuser: hi\nassistant:");
  CHECK(p.request.sampling.temperature == doctest::Approx(0.8));
  CHECK(p.request.sampling.top_k == 40);
  CHECK(p.request.max_tokens == -1);

  p = prepare_generate({{"prompt", "hi"}, {"raw", true}, {"stream", false},
                        {"options", {{"temperature", 0}, {"num_predict", 5}, {"stop", json::array({"a"})}, {"seed", 7},
                                     {"num_ctx", 4096}, {"top_p", 0.5}, {"repeat_penalty", 1.0}}}},
                       f.m);
  CHECK(!p.stream);
  CHECK(p.request.prompt == f.tk->encode("hi", true, false));
  CHECK(p.request.sampling.temperature == 0);
  CHECK(p.request.max_tokens == 5);
  CHECK(p.request.stop == std::vector<std::string>{"a"});
  CHECK(p.request.sampling.seed == 7);

  p = prepare_generate({{"model", "tiny"}}, f.m);
  CHECK(p.load_only);
  const json load = ollama_response(p, Outcome{});
  CHECK(load["done"] == true);
  CHECK(load["done_reason"] == "load");
}

TEST_CASE("generate: malformed bodies") {
  test::ApiFixture f;
  CHECK(generate_error(f, {{"model", "nope"}}).status == 404);
  CHECK(generate_error(f, {{"prompt", 5}}).param == "prompt");
  CHECK(generate_error(f, {{"prompt", "x"}, {"stream", "no"}}).param == "stream");
  CHECK(generate_error(f, {{"prompt", "x"}, {"options", 5}}).param == "options");
  CHECK(generate_error(f, {{"prompt", "x"}, {"options", {{"temperature", "hot"}}}}).param == "options.temperature");
  CHECK(generate_error(f, {{"prompt", "x"}, {"options", {{"num_predict", 0}}}}).param == "options.num_predict");
  CHECK(generate_error(f, {{"prompt", "x"}, {"options", {{"top_k", -1}}}}).param == "options.top_k");
  CHECK(generate_error(f, {{"prompt", "x"}, {"options", {{"seed", "s"}}}}).param == "options.seed");
  CHECK(generate_error(f, {{"prompt", "x"}, {"format", "json"}}).param == "format");
  CHECK(generate_error(f, {{"prompt", "x"}, {"template", "{{ .Prompt }}"}}).param == "template");
  CHECK(generate_error(f, {{"prompt", "x"}, {"images", json::array({"abc"})}}).param == "images");
  const json body = ollama_error_body(generate_error(f, {{"prompt", "x"}, {"raw", 1}}));
  CHECK(body["error"].is_string());
}

TEST_CASE("ollama chat and its NDJSON lines") {
  test::ApiFixture f;
  PreparedRequest p = prepare_ollama_chat(
      {{"model", "tiny"}, {"messages", json::array({{{"role", "user"}, {"content", "hello"}}})}}, f.m);
  CHECK(p.kind == ApiKind::OllamaChat);
  CHECK(p.prompt_text == "user: hello\nassistant:");
  auto fmt = make_ollama_format(p, f.m);
  CHECK(std::string(fmt->stream_content_type()) == "application/x-ndjson");
  std::string s = fmt->stream_token(test::token(*f.tk, 280));
  s += fmt->stream_finish(test::finish(engine::FinishReason::Stop, 3, 1));
  const auto l = lines(s);
  REQUIRE(l.size() == 2);
  CHECK(l[0]["model"] == "tiny");
  CHECK(l[0]["message"]["role"] == "assistant");
  CHECK(l[0]["message"]["content"] == f.tk->token_to_piece(280));
  CHECK(l[0]["done"] == false);
  CHECK(l[0]["created_at"].get<std::string>().size() == 30);
  CHECK(l[1]["done"] == true);
  CHECK(l[1]["done_reason"] == "stop");
  CHECK(l[1]["prompt_eval_count"] == 3);
  CHECK(l[1]["eval_count"] == 1);
  CHECK(l[1]["total_duration"] == 1'000'000'000);
  CHECK(l[1]["prompt_eval_duration"] == 250'000'000);
  CHECK(l[1]["eval_duration"] == 750'000'000);
  CHECK(!l[1].contains("context"));

  // Non-streamed body.
  Outcome o;
  o.add(test::token(*f.tk, 280));
  o.end(test::finish(engine::FinishReason::Length, 3, 1));
  const json b = fmt->body(o);
  CHECK(b["message"]["content"] == o.text);
  CHECK(b["done_reason"] == "length");

  try {
    prepare_ollama_chat({{"messages", json::array({{{"role", "robot"}, {"content", "x"}}})}}, f.m);
    FAIL("accepted an unknown role");
  } catch (const ApiError& e) {
    CHECK(e.param == "messages[0].role");
  }
  CHECK(prepare_ollama_chat({{"model", "tiny"}, {"messages", json::array()}}, f.m).load_only);
}

TEST_CASE("tags, show, ps, version") {
  test::ApiFixture f;
  const ModelDetails d = details();
  CHECK(d.parameter_size == "46.7B");
  const json tags = ollama_tags(f.m, d);
  const json& m = tags["models"][0];
  CHECK(m["name"] == "tiny");
  CHECK(m["model"] == "tiny");
  CHECK(m["modified_at"] == "2023-11-14T22:13:20Z");
  CHECK(m["size"] == 1234);
  CHECK(m["digest"].get<std::string>().size() == 64);
  CHECK(m["details"]["format"] == "gguf");
  CHECK(m["details"]["family"] == "llama");
  CHECK(m["details"]["parameter_size"] == "46.7B");
  CHECK(m["details"]["quantization_level"] == "Q4_K");
  const json show = ollama_show({{"model", "tiny"}}, f.m, d);
  CHECK(show["template"] == f.m.chat_template_source);
  CHECK(show["model_info"]["general.architecture"] == "llama");
  CHECK(show["modelfile"].get<std::string>().find("FROM /models/tiny.gguf") != std::string::npos);
  CHECK_THROWS_AS(ollama_show({{"model", "other"}}, f.m, d), ApiError);
  CHECK_THROWS_AS(ollama_show(json::object(), f.m, d), ApiError);
  CHECK(ollama_ps(f.m, d)["models"][0]["name"] == "tiny");
  CHECK(ollama_version()["version"].is_string());
  CHECK(format_parameter_count(137'000'000) == "137M");
}
