// End to end: `strata serve` on a synthesised MoE model, driven over HTTP by a small Beast
// client: health, models, chat (plain and streamed), completions, Ollama, auth, two dozen
// malformed requests (each a 4xx JSON error, the server serving on), /metrics through promtool,
// and SIGTERM during a stream (the stream still ends with [DONE]; exit status 0).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/shared_data.h"
#include "tests/tools/run_strata.h"

extern char** environ;

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;

namespace {

constexpr const char* kKey = "test-key-123";

// The server as a child process; killed (SIGKILL) when the guard goes out of scope unless it
// has already been reaped.
struct ServerProcess {
  pid_t pid = -1;
  int out_fd = -1;
  std::string stdout_text;
  ~ServerProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out_fd >= 0) ::close(out_fd);
  }
  // Waits for the child to exit (up to `timeout_s`); its exit status, or -1.
  int wait_exit(double timeout_s) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < end) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
};

// Starts `strata <args>` and reads its stdout until "listening on http://HOST:PORT"; the port.
int start_server(ServerProcess& sp, const std::vector<std::string>& args, const std::string& log_path) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv_s = {strata::test::strata_binary()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&sp.pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipefd[1]);
  sp.out_fd = pipefd[0];
  REQUIRE(rc == 0);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{sp.out_fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[256];
      const ssize_t n = ::read(sp.out_fd, buf, sizeof buf);
      if (n <= 0) break;
      sp.stdout_text.append(buf, size_t(n));
      const auto pos = sp.stdout_text.find("listening on http://");
      if (pos != std::string::npos && sp.stdout_text.find('\n', pos) != std::string::npos) {
        const auto colon = sp.stdout_text.rfind(':', sp.stdout_text.find('\n', pos));
        return std::stoi(sp.stdout_text.substr(colon + 1));
      }
    }
  }
  FAIL("the server did not print its listening line; stdout: " << sp.stdout_text);
  return -1;
}

struct Resp {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  json j() const { return json::parse(body); }
};

std::map<std::string, std::string> auth() { return {{"Authorization", fmt::format("Bearer {}", kKey)}}; }

Resp request(int port, http::verb method, const std::string& target, const std::string& body = "",
             std::map<std::string, std::string> headers = auth()) {
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), uint16_t(port)));
  timeval tv{15, 0};
  ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  http::request<http::string_body> req(method, target, 11);
  req.set(http::field::host, "127.0.0.1");
  for (auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  http::write(sock, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  http::read(sock, buf, parser);
  Resp r;
  r.status = int(parser.get().result_int());
  r.body = parser.get().body();
  for (auto& f : parser.get()) r.headers[std::string(f.name_string())] = std::string(f.value());
  return r;
}

Resp post(int port, const std::string& target, const json& body) { return request(port, http::verb::post, target, body.dump()); }

// Sends raw bytes and reads until the server closes (or `timeout_s`); what came back.
std::string raw_exchange(int port, const std::string& bytes, double timeout_s, double* took = nullptr) {
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), uint16_t(port)));
  net::write(sock, net::buffer(bytes));
  const auto t0 = std::chrono::steady_clock::now();
  std::string out;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_s) {
    pollfd p{sock.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(sock.native_handle(), buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  if (took) *took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

json chat(const std::string& content, json extra = json::object()) {
  json b = {{"model", "tiny-moe"}, {"messages", json::array({{{"role", "user"}, {"content", content}}})}, {"max_tokens", 8}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

}  // namespace

TEST_CASE("strata serve over HTTP") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("strata_test_serve_{}", getpid());
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  const std::string model = (dir / "tiny-moe.gguf").string();
  const auto synth = strata::test::run_strata(fmt::format(
      "synth -o {} --arch mixtral --layers 2 --dim 64 --heads 4 --kv-heads 2 --experts 4 --used 2 --ffn 128 "
      "--vocab 300 --ctx 4096 --type q8_0 --buffered", model));
  REQUIRE_MESSAGE(synth.status == 0, synth.output);

  ServerProcess sp;
  const std::string log = (dir / "server.log").string();
  const int port = start_server(sp, {"serve", "-m", model, "--memory-budget", "32M", "--io", "pread", "--port", "0",
                                     "--api-key", kKey, "--idle-timeout", "2", "--shutdown-grace", "0.3", "-t", "2"},
                                log);
  CAPTURE(port);
  auto server_log = [&] {
    std::ifstream in(log);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  CHECK(sp.stdout_text.rfind("listening on http://127.0.0.1:", 0) == 0);

  // /health: loading, then ok.
  Resp h;
  for (int i = 0; i < 300; ++i) {
    h = request(port, http::verb::get, "/health", "", {});
    if (h.status == 200) break;
    CHECK(h.status == 503);
    CHECK(h.j()["status"] == "loading");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE_MESSAGE(h.status == 200, server_log());
  CHECK(h.j()["status"] == "ok");

  Resp r = request(port, http::verb::get, "/v1/models");
  REQUIRE(r.status == 200);
  CHECK(r.j()["data"][0]["id"] == "tiny-moe");

  // A non-streamed chat completion.
  r = post(port, "/v1/chat/completions", chat("Hello there", {{"temperature", 0}}));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  json j = r.j();
  CHECK(j["object"] == "chat.completion");
  CHECK(j["model"] == "tiny-moe");
  CHECK(j["usage"]["prompt_tokens"].get<int>() > 0);
  CHECK(j["usage"]["completion_tokens"].get<int>() > 0);
  CHECK(j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  const std::string reason = j["choices"][0]["finish_reason"];
  CHECK((reason == "stop" || reason == "length"));
  // The same body gives the same answer (greedy here; sampled with the default seed too).
  Resp again = post(port, "/v1/chat/completions", chat("Hello there", {{"temperature", 0}}));
  CHECK(again.j()["choices"][0]["message"]["content"] == j["choices"][0]["message"]["content"]);

  // Streamed, with usage and logprobs.
  r = post(port, "/v1/chat/completions",
           chat("Tell me a story", {{"stream", true}, {"stream_options", {{"include_usage", true}}}, {"logprobs", true},
                                    {"top_logprobs", 2}, {"ignore_eos", true}}));
  REQUIRE(r.status == 200);
  CHECK(r.headers["Content-Type"] == "text/event-stream");
  CHECK(r.headers["Transfer-Encoding"] == "chunked");
  CHECK(r.body.find("data: ") == 0);
  CHECK(r.body.size() >= 14);
  CHECK(r.body.substr(r.body.size() - 14) == "data: [DONE]\n\n");
  CHECK(r.body.find("\"chat.completion.chunk\"") != std::string::npos);
  CHECK(r.body.find("\"finish_reason\":\"length\"") != std::string::npos);
  CHECK(r.body.find("\"top_logprobs\"") != std::string::npos);
  CHECK(r.body.find("\"completion_tokens\":8") != std::string::npos);

  // Completions, plain.
  r = post(port, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 5}, {"ignore_eos", true}, {"logprobs", 1}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.j()["usage"]["completion_tokens"] == 5);
  CHECK(r.j()["choices"][0]["logprobs"]["tokens"].size() == 5);

  // Ollama: NDJSON stream, then a plain body, the listings.
  r = post(port, "/api/generate", {{"model", "tiny-moe"}, {"prompt", "Why is the sky blue?"}, {"options", {{"num_predict", 6}}}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.headers["Content-Type"] == "application/x-ndjson");
  {
    std::istringstream in(r.body);
    std::string line, last;
    int n = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      last = line;
      ++n;
      CHECK(json::parse(line).contains("done"));
    }
    REQUIRE(n >= 1);
    const json fin = json::parse(last);
    CHECK(fin["done"] == true);
    CHECK(fin["eval_count"].get<int>() >= 1);
    CHECK(fin["prompt_eval_count"].get<int>() > 0);
    CHECK(fin.contains("total_duration"));
  }
  r = post(port, "/api/chat", {{"model", "tiny-moe"}, {"stream", false},
                               {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}, {"options", {{"num_predict", 3}}}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.j()["message"]["role"] == "assistant");
  CHECK(r.j()["done"] == true);
  r = request(port, http::verb::get, "/api/tags");
  REQUIRE(r.status == 200);
  CHECK(r.j()["models"][0]["details"]["format"] == "gguf");
  CHECK(r.j()["models"][0]["details"]["family"] == "llama");
  CHECK(post(port, "/api/show", {{"model", "tiny-moe"}}).status == 200);
  CHECK(request(port, http::verb::get, "/api/version").status == 200);
  CHECK(request(port, http::verb::get, "/api/ps").status == 200);

  // Auth: none, wrong, right.
  r = request(port, http::verb::get, "/v1/models", "", {});
  CHECK(r.status == 401);
  CHECK(r.j()["error"]["type"] == "authentication_error");
  CHECK(request(port, http::verb::get, "/v1/models", "", {{"Authorization", "Bearer wrong-key-123"}}).status == 401);
  CHECK(request(port, http::verb::get, "/v1/models", "", {{"Authorization", kKey}}).status == 401);

  // Malformed requests: each a 4xx with a JSON error, and the server keeps serving.
  struct Bad {
    const char* what;
    http::verb method;
    const char* target;
    std::string body;
    int status;
  };
  const std::string big(4u << 20 | 4096, 'x');
  const std::vector<Bad> bad = {
      {"bad JSON", http::verb::post, "/v1/chat/completions", "{\"messages\": [", 400},
      {"body not an object", http::verb::post, "/v1/chat/completions", "[1,2,3]", 400},
      {"messages a string", http::verb::post, "/v1/chat/completions", chat("x", {{"messages", "hi"}}).dump(), 400},
      {"max_tokens a string", http::verb::post, "/v1/chat/completions", chat("x", {{"max_tokens", "8"}}).dump(), 400},
      {"temperature a string", http::verb::post, "/v1/chat/completions", chat("x", {{"temperature", "warm"}}).dump(), 400},
      {"stop a number", http::verb::post, "/v1/chat/completions", chat("x", {{"stop", 3}}).dump(), 400},
      {"stream not bool", http::verb::post, "/v1/chat/completions", chat("x", {{"stream", "true"}}).dump(), 400},
      {"unknown model", http::verb::post, "/v1/chat/completions", chat("x", {{"model", "gpt-5"}}).dump(), 404},
      {"negative max_tokens", http::verb::post, "/v1/chat/completions", chat("x", {{"max_tokens", -4}}).dump(), 400},
      {"temperature too high", http::verb::post, "/v1/chat/completions", chat("x", {{"temperature", 7}}).dump(), 400},
      {"top_p out of range", http::verb::post, "/v1/chat/completions", chat("x", {{"top_p", 1.5}}).dump(), 400},
      {"n = 2", http::verb::post, "/v1/chat/completions", chat("x", {{"n", 2}}).dump(), 400},
      {"invalid UTF-8", http::verb::post, "/v1/chat/completions",
       "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}", 400},
      {"empty messages", http::verb::post, "/v1/chat/completions", chat("x", {{"messages", json::array()}}).dump(), 400},
      {"unknown role", http::verb::post, "/v1/chat/completions",
       chat("x", {{"messages", json::array({{{"role", "oracle"}, {"content", "x"}}})}}).dump(), 400},
      {"missing content", http::verb::post, "/v1/chat/completions",
       chat("x", {{"messages", json::array({{{"role", "user"}}})}}).dump(), 400},
      {"top_logprobs out of range", http::verb::post, "/v1/chat/completions",
       chat("x", {{"logprobs", true}, {"top_logprobs", 50}}).dump(), 400},
      {"stop list too long", http::verb::post, "/v1/chat/completions",
       chat("x", {{"stop", std::vector<std::string>(17, "s")}}).dump(), 400},
      {"seed not an integer", http::verb::post, "/v1/chat/completions", chat("x", {{"seed", "42"}}).dump(), 400},
      {"prompt missing", http::verb::post, "/v1/completions", json{{"max_tokens", 3}}.dump(), 400},
      {"completion logprobs out of range", http::verb::post, "/v1/completions",
       json{{"prompt", "x"}, {"logprobs", 9}}.dump(), 400},
      {"prompt longer than the context", http::verb::post, "/v1/completions",
       json{{"prompt", std::vector<int>(5000, 290)}}.dump(), 400},
      {"unknown endpoint", http::verb::get, "/v1/engines", "", 404},
      {"wrong method", http::verb::get, "/v1/chat/completions", "", 405},
      {"ollama options.temperature a string", http::verb::post, "/api/generate",
       json{{"prompt", "x"}, {"options", {{"temperature", "hot"}}}}.dump(), 400},
      {"ollama messages not an array", http::verb::post, "/api/chat", json{{"messages", 5}}.dump(), 400},
      {"ollama unknown model", http::verb::post, "/api/generate", json{{"model", "llama3"}, {"prompt", "x"}}.dump(), 404},
      {"body over the limit", http::verb::post, "/v1/chat/completions", big, 413},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.what);
    const Resp e = request(port, b.method, b.target, b.body);
    CHECK(e.status == b.status);
    json ej;
    CHECK_NOTHROW(ej = e.j());
    CHECK(ej.contains("error"));
    if (std::string(b.target).starts_with("/api/")) CHECK(ej["error"].is_string());
    else CHECK(ej["error"]["message"].is_string());
  }
  // A header over 8 KiB: 431.
  {
    Resp e = request(port, http::verb::get, "/v1/models", "",
                     {{"Authorization", fmt::format("Bearer {}", kKey)}, {"X-Padding", std::string(9000, 'p')}});
    CHECK(e.status == 431);
  }
  // A body shorter than its Content-Length: the connection is closed after the idle timeout.
  {
    double took = 0;
    const std::string got = raw_exchange(port,
                                         "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key-123\r\n"
                                         "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"messages\":",
                                         10, &took);
    CHECK(took < 8);
  }
  CHECK(request(port, http::verb::get, "/health", "", {}).status == 200);
  r = post(port, "/v1/chat/completions", chat("still there?"));
  CHECK(r.status == 200);

  // /metrics through promtool.
  r = request(port, http::verb::get, "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("strata_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}") != std::string::npos);
  CHECK(r.body.find("strata_time_to_first_token_seconds_count") != std::string::npos);
  CHECK(r.body.find("strata_generated_tokens_total") != std::string::npos);
  if (access("/usr/bin/promtool", X_OK) == 0) {
    const std::string mpath = (dir / "metrics.txt").string();
    std::ofstream(mpath) << r.body;
    const int rc = std::system(fmt::format("/usr/bin/promtool check metrics < {} > {}.out 2>&1", mpath, mpath).c_str());
    std::ifstream out(mpath + ".out");
    CAPTURE(std::string((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>()));
    CHECK(rc == 0);
  } else {
    MESSAGE("skipped promtool check: /usr/bin/promtool not installed");
  }

  // SIGTERM while a long stream runs: the stream still ends with a finish chunk and [DONE],
  // and the server exits 0.
  {
    net::io_context ioc;
    tcp::socket sock(ioc);
    sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), uint16_t(port)));
    const std::string body = chat("Go on", {{"stream", true}, {"max_tokens", 3500}, {"ignore_eos", true}}).dump();
    const std::string req = fmt::format(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\n\r\n{}", kKey, body.size(), body);
    net::write(sock, net::buffer(req));
    std::string got;
    bool signalled = false;
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
      pollfd p{sock.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char buf[8192];
        const ssize_t n = ::recv(sock.native_handle(), buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, size_t(n));
        if (got.find("0\r\n\r\n", got.size() > 16 ? got.size() - 16 : 0) != std::string::npos &&
            got.find("[DONE]") != std::string::npos)
          break;
      }
      if (!signalled && got.find("chat.completion.chunk") != std::string::npos) {
        ::kill(sp.pid, SIGTERM);
        signalled = true;
      }
    }
    CHECK(signalled);
    CHECK(got.find("HTTP/1.1 200") == 0);
    CHECK(got.find("\"finish_reason\":\"") != std::string::npos);
    CHECK(got.find("data: [DONE]\n\n") != std::string::npos);
  }
  const int status = sp.wait_exit(15);
  CHECK_MESSAGE(status == 0, server_log());
}
