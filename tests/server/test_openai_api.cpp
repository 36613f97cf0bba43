// The OpenAI mapping: request validation (each field named in the error), the prompt, and the
// shapes of responses and streamed chunks.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/json_fields.h"
#include "server/openai_api.h"
#include "tests/server/api_fixture.h"

using namespace strata;
using namespace strata::server;
using server::json;

namespace {

json chat_body(json extra = json::object()) {
  json b = {{"model", "tiny"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

// The ApiError a body gives, or a failed check when it is accepted.
ApiError chat_error(const test::ApiFixture& f, const json& body) {
  try {
    prepare_chat(body, f.m);
  } catch (const ApiError& e) {
    return e;
  }
  FAIL("accepted: " << body.dump());
  return {};
}

ApiError completion_error(const test::ApiFixture& f, const json& body) {
  try {
    prepare_completion(body, f.m);
  } catch (const ApiError& e) {
    return e;
  }
  FAIL("accepted: " << body.dump());
  return {};
}

// Splits an SSE stream into its JSON payloads ("[DONE]" kept as a string).
std::vector<json> sse_events(const std::string& s) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t end = s.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    const std::string ev = s.substr(pos, end - pos);
    REQUIRE(ev.rfind("data: ", 0) == 0);
    const std::string data = ev.substr(6);
    out.push_back(data == "[DONE]" ? json("[DONE]") : json::parse(data));
    pos = end + 2;
  }
  return out;
}

}  // namespace

TEST_CASE("chat request: defaults, prompt rendering and BOS") {
  test::ApiFixture f;
  PreparedRequest p = prepare_chat(chat_body(), f.m);
  CHECK(p.kind == ApiKind::Chat);
  CHECK(p.request.max_tokens == -1);
  CHECK(p.request.sampling.temperature == doctest::Approx(1.0));
  CHECK(p.request.top_logprobs == -1);
  CHECK(p.model == "tiny");
  CHECK(p.id.rfind("chatcmpl-", 0) == 0);
  CHECK(p.prompt_text == "user: hi\nassistant:");
  REQUIRE(!p.request.prompt.empty());
  CHECK(p.request.prompt.front() == 1);  // BOS added once
  CHECK(f.last_context["add_generation_prompt"] == true);
  CHECK(f.last_context["bos_token"] == "<s>");
  CHECK(f.last_context["eos_token"] == "</s>");
  CHECK(f.last_context["tools"].is_null());

  // Content parts, developer role, assistant tool call with null content.
  json msgs = json::array({{{"role", "developer"}, {"content", "be brief"}},
                           {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}})}},
                           {{"role", "assistant"}, {"content", nullptr},
                            {"tool_calls", json::array({{{"id", "c1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}})}},
                           {{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "42"}}});
  p = prepare_chat(chat_body({{"messages", msgs}, {"max_tokens", 7}, {"temperature", 0}, {"stop", "x"}, {"seed", -3},
                              {"logprobs", true}, {"top_logprobs", 3}, {"top_k", 5}, {"min_p", 0.1}, {"repeat_penalty", 1.2},
                              {"stream", true}, {"stream_options", {{"include_usage", true}}}, {"user", "u"}}),
                   f.m);
  CHECK(f.last_context["messages"][0]["role"] == "system");
  CHECK(f.last_context["messages"][1]["content"] == "ab");
  CHECK(f.last_context["messages"][2]["content"] == "");
  CHECK(f.last_context["messages"][2]["tool_calls"].size() == 1);
  CHECK(p.request.max_tokens == 7);
  CHECK(p.request.sampling.temperature == 0);
  CHECK(p.request.stop == std::vector<std::string>{"x"});
  CHECK(p.request.sampling.seed == uint64_t(int64_t(-3)));
  CHECK(p.request.top_logprobs == 3);
  CHECK(p.request.sampling.top_k == 5);
  CHECK(p.stream);
  CHECK(p.include_usage);
  // max_completion_tokens wins over max_tokens.
  p = prepare_chat(chat_body({{"max_tokens", 7}, {"max_completion_tokens", 9}}), f.m);
  CHECK(p.request.max_tokens == 9);
  // The file name is accepted as the model, and so is no model.
  json no_model = chat_body();
  no_model.erase("model");
  CHECK_NOTHROW(prepare_chat(no_model, f.m));
  CHECK_NOTHROW(prepare_chat(chat_body({{"model", "tiny.gguf"}}), f.m));
}

TEST_CASE("chat request: each malformed field is a 400 naming it") {
  test::ApiFixture f;
  struct Case {
    json extra;
    const char* param;
  };
  const std::vector<Case> cases = {
      {{{"messages", "hi"}}, "messages"},
      {{{"messages", json::array()}}, "messages"},
      {{{"messages", json::array({"hi"})}}, "messages[0]"},
      {{{"messages", json::array({{{"content", "x"}}})}}, "messages[0].role"},
      {{{"messages", json::array({{{"role", "wizard"}, {"content", "x"}}})}}, "messages[0].role"},
      {{{"messages", json::array({{{"role", "user"}}})}}, "messages[0].content"},
      {{{"messages", json::array({{{"role", "user"}, {"content", 5}}})}}, "messages[0].content"},
      {{{"messages", json::array({{{"role", "user"}, {"content", json::array({{{"type", "image_url"}}})}}})}}, "messages[0].content[0].type"},
      {{{"max_tokens", "10"}}, "max_tokens"},
      {{{"max_tokens", -1}}, "max_tokens"},
      {{{"max_tokens", 1.5}}, "max_tokens"},
      {{{"max_completion_tokens", 0}}, "max_completion_tokens"},
      {{{"temperature", "hot"}}, "temperature"},
      {{{"temperature", 2.5}}, "temperature"},
      {{{"temperature", -0.1}}, "temperature"},
      {{{"top_p", 1.5}}, "top_p"},
      {{{"seed", 1.5}}, "seed"},
      {{{"seed", "1"}}, "seed"},
      {{{"stop", 5}}, "stop"},
      {{{"stop", json::array({"a", 1})}}, "stop"},
      {{{"stop", json(std::vector<std::string>(17, "s"))}}, "stop"},
      {{{"stop", ""}}, "stop"},
      {{{"stream", "yes"}}, "stream"},
      {{{"stream_options", {{"include_usage", 1}}}}, "stream_options.include_usage"},
      {{{"presence_penalty", 3}}, "presence_penalty"},
      {{{"frequency_penalty", -2.5}}, "frequency_penalty"},
      {{{"logprobs", 1}}, "logprobs"},
      {{{"logprobs", true}, {"top_logprobs", 21}}, "top_logprobs"},
      {{{"top_logprobs", 2}}, "top_logprobs"},
      {{{"n", 2}}, "n"},
      {{{"n", 0}}, "n"},
      {{{"user", 5}}, "user"},
      {{{"top_k", -1}}, "top_k"},
      {{{"min_p", 2}}, "min_p"},
      {{{"repeat_penalty", 0}}, "repeat_penalty"},
      {{{"tools", "x"}}, "tools"},
      {{{"tools", json::array({{{"type", "function"}}})}}, "tools[0].function"},
      {{{"response_format", {{"type", "json_object"}}}}, "response_format.type"},
      {{{"messages", json::array({{{"role", "user"}, {"content", "raise"}}})}}, "messages"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.extra.dump());
    const ApiError e = chat_error(f, chat_body(c.extra));
    CHECK(e.status == 400);
    CHECK(e.param == c.param);
    CHECK(!e.message.empty());
    CHECK(e.type == "invalid_request_error");
  }
  CHECK(chat_error(f, chat_body({{"n", 2}})).message == "n > 1 is not supported");
  const ApiError unknown = chat_error(f, chat_body({{"model", "gpt-4"}}));
  CHECK(unknown.status == 404);
  CHECK(unknown.code == "model_not_found");
  CHECK(chat_error(f, chat_body({{"model", 4}})).status == 400);
  json missing = chat_body();
  missing.erase("messages");
  CHECK(chat_error(f, missing).param == "messages");
  // A prompt longer than the context.
  const ApiError big = chat_error(f, chat_body({{"messages", json::array({{{"role", "user"}, {"content", std::string(2000, 'z')}}})}}));
  CHECK(big.code == "context_length_exceeded");
  // Error body shape.
  const json body = openai_error_body(big);
  CHECK(body["error"]["message"].is_string());
  CHECK(body["error"]["type"] == "invalid_request_error");
  CHECK(body["error"]["param"] == "messages");
  CHECK(body["error"]["code"] == "context_length_exceeded");
}

TEST_CASE("request bodies must be JSON objects") {
  CHECK_THROWS_AS(parse_body("{"), ApiError);
  CHECK_THROWS_AS(parse_body("[1,2]"), ApiError);
  CHECK_THROWS_AS(parse_body("{\"a\":\"\xff\"}"), ApiError);  // invalid UTF-8
  CHECK(parse_body("{\"a\":1}")["a"] == 1);
}

TEST_CASE("completion request: prompt forms and limits") {
  test::ApiFixture f;
  PreparedRequest p = prepare_completion({{"prompt", "hello"}}, f.m);
  CHECK(p.request.max_tokens == 16);
  CHECK(p.request.prompt == f.tk->encode("hello", true, false));
  CHECK(p.id.rfind("cmpl-", 0) == 0);
  p = prepare_completion({{"prompt", json::array({"hello"})}, {"logprobs", 2}}, f.m);
  CHECK(p.request.prompt == f.tk->encode("hello", true, false));
  CHECK(p.request.top_logprobs == 2);
  p = prepare_completion({{"prompt", json::array({1, 280, 281})}}, f.m);
  CHECK(p.request.prompt == std::vector<int32_t>{1, 280, 281});
  p = prepare_completion({{"prompt", json::array({json::array({5, 6})})}}, f.m);
  CHECK(p.request.prompt == std::vector<int32_t>{5, 6});

  CHECK(completion_error(f, json::object()).param == "prompt");
  CHECK(completion_error(f, {{"prompt", 5}}).param == "prompt");
  CHECK(completion_error(f, {{"prompt", json::array({"a", "b"})}}).param == "prompt");
  CHECK(completion_error(f, {{"prompt", json::array({1, 5000})}}).param == "prompt");
  CHECK(completion_error(f, {{"prompt", json::array()}}).param == "prompt");
  CHECK(completion_error(f, {{"prompt", "x"}, {"logprobs", 6}}).param == "logprobs");
  CHECK(completion_error(f, {{"prompt", "x"}, {"logprobs", true}}).param == "logprobs");
  CHECK(completion_error(f, {{"prompt", "x"}, {"echo", true}}).param == "echo");
  CHECK(completion_error(f, {{"prompt", "x"}, {"best_of", 3}}).param == "best_of");
}

TEST_CASE("chat response, logprobs and usage") {
  test::ApiFixture f;
  PreparedRequest p = prepare_chat(chat_body({{"logprobs", true}, {"top_logprobs", 2}}), f.m);
  Outcome o;
  o.add(test::token(*f.tk, 280));
  o.add(test::token(*f.tk, 281));
  engine::FinishEvent fin = test::finish(engine::FinishReason::Length, 5, 2);
  fin.text_tail = "!";
  o.end(fin);
  const json r = chat_response(p, o, f.m);
  CHECK(r["object"] == "chat.completion");
  CHECK(r["id"] == p.id);
  CHECK(r["model"] == "tiny");
  CHECK(r["created"].is_number_integer());
  CHECK(r["choices"][0]["index"] == 0);
  CHECK(r["choices"][0]["message"]["role"] == "assistant");
  CHECK(r["choices"][0]["message"]["content"] == o.text);
  CHECK(o.text.back() == '!');
  CHECK(r["choices"][0]["finish_reason"] == "length");
  CHECK(r["usage"] == json{{"prompt_tokens", 5}, {"completion_tokens", 2}, {"total_tokens", 7}});
  const json& lp = r["choices"][0]["logprobs"]["content"];
  REQUIRE(lp.size() == 2);
  CHECK(lp[0]["token"] == f.tk->token_to_piece(280));
  CHECK(lp[0]["logprob"] == doctest::Approx(-0.5));
  CHECK(lp[0]["bytes"].is_array());
  CHECK(lp[0]["top_logprobs"].size() == 2);
  CHECK(lp[0]["top_logprobs"][1]["token"].is_string());

  o.finish.reason = engine::FinishReason::Error;
  o.finish.error = "boom";
  CHECK_THROWS_AS(chat_response(p, o, f.m), ApiError);
}

TEST_CASE("completion response logprobs shape") {
  test::ApiFixture f;
  PreparedRequest p = prepare_completion({{"prompt", "x"}, {"logprobs", 1}}, f.m);
  Outcome o;
  o.add(test::token(*f.tk, 280));
  o.add(test::token(*f.tk, 281));
  o.end(test::finish(engine::FinishReason::Stop, 2, 2));
  const json r = completion_response(p, o, f.m);
  CHECK(r["object"] == "text_completion");
  CHECK(r["choices"][0]["text"] == o.text);
  CHECK(r["choices"][0]["finish_reason"] == "stop");
  const json& lp = r["choices"][0]["logprobs"];
  CHECK(lp["tokens"].size() == 2);
  CHECK(lp["token_logprobs"].size() == 2);
  CHECK(lp["top_logprobs"][0].is_object());
  CHECK(lp["text_offset"][0] == 0);
  CHECK(lp["text_offset"][1] == f.tk->token_to_piece(280).size());
}

TEST_CASE("chat stream: role first, content deltas, finish, usage, [DONE]") {
  test::ApiFixture f;
  PreparedRequest p = prepare_chat(chat_body({{"stream", true}, {"stream_options", {{"include_usage", true}}}}), f.m);
  auto fmt = make_openai_format(p, f.m);
  CHECK(std::string(fmt->stream_content_type()) == "text/event-stream");
  std::string s = fmt->stream_begin();
  s += fmt->stream_token(test::token(*f.tk, 280));
  engine::TokenEvent held = test::token(*f.tk, 281);
  held.text.clear();
  CHECK(fmt->stream_token(held).empty());  // nothing released, no logprobs: no chunk
  s += fmt->stream_finish(test::finish(engine::FinishReason::Stop, 4, 2));
  const auto ev = sse_events(s);
  REQUIRE(ev.size() == 5);
  CHECK(ev[0]["object"] == "chat.completion.chunk");
  CHECK(ev[0]["choices"][0]["delta"]["role"] == "assistant");
  CHECK(ev[0]["choices"][0]["finish_reason"].is_null());
  CHECK(ev[1]["choices"][0]["delta"]["content"] == f.tk->token_to_piece(280));
  CHECK(ev[1]["id"] == ev[0]["id"]);
  CHECK(ev[2]["choices"][0]["finish_reason"] == "stop");
  CHECK(ev[2]["choices"][0]["delta"].empty());
  CHECK(ev[3]["choices"].empty());
  CHECK(ev[3]["usage"]["total_tokens"] == 6);
  CHECK(ev[4] == "[DONE]");

  // An engine error mid-stream: an error event, then [DONE].
  auto fmt2 = make_openai_format(p, f.m);
  engine::FinishEvent err = test::finish(engine::FinishReason::Error, 4, 0);
  err.error = "out of memory";
  const auto ev2 = sse_events(fmt2->stream_finish(err));
  REQUIRE(ev2.size() == 2);
  CHECK(ev2[0]["error"]["message"] == "out of memory");
  CHECK(ev2[1] == "[DONE]");
}

TEST_CASE("completion stream chunks") {
  test::ApiFixture f;
  PreparedRequest p = prepare_completion({{"prompt", "x"}, {"stream", true}, {"logprobs", 0}}, f.m);
  auto fmt = make_openai_format(p, f.m);
  CHECK(fmt->stream_begin().empty());
  std::string s = fmt->stream_token(test::token(*f.tk, 280));
  s += fmt->stream_finish(test::finish(engine::FinishReason::Length, 2, 1));
  const auto ev = sse_events(s);
  REQUIRE(ev.size() == 3);
  CHECK(ev[0]["object"] == "text_completion");
  CHECK(ev[0]["choices"][0]["text"] == f.tk->token_to_piece(280));
  CHECK(ev[0]["choices"][0]["logprobs"]["tokens"].size() == 1);
  CHECK(ev[1]["choices"][0]["finish_reason"] == "length");
  CHECK(ev[2] == "[DONE]");
}

TEST_CASE("models list") {
  test::ApiFixture f;
  const json l = models_list(f.m);
  CHECK(l["object"] == "list");
  CHECK(l["data"][0]["id"] == "tiny");
  CHECK(l["data"][0]["object"] == "model");
}

TEST_CASE("tool definitions reach the chat template in the client's key order") {
  test::ApiFixture f;
  // Keys deliberately out of alphabetical order: a sorting JSON type would reorder them, and
  // the template's tojson would then print a prompt transformers never produces.
  const std::string body = R"({"messages":[{"role":"user","content":"hi"}],
    "tools":[{"type":"function","function":{"name":"get_weather","description":"d",
      "parameters":{"type":"object","required":["city"],"properties":{"unit":{"type":"string"},"city":{"type":"string"}}}}}]})";
  PreparedRequest p = prepare_chat(parse_body(body), f.m);
  const server::json& fn = f.last_context["tools"][0]["function"];
  std::vector<std::string> keys, props;
  for (const auto& [k, v] : fn.items()) keys.push_back(k);
  for (const auto& [k, v] : fn["parameters"]["properties"].items()) props.push_back(k);
  CHECK(keys == std::vector<std::string>{"name", "description", "parameters"});
  CHECK(props == std::vector<std::string>{"unit", "city"});
  CHECK(fn["parameters"].dump() == R"({"type":"object","required":["city"],"properties":{"unit":{"type":"string"},"city":{"type":"string"}}})");
}
