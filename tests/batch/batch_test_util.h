// Helpers for the batch command tests: a small synthesized MoE (written once per process), input
// files, running `strata batch` in the foreground or as a child to kill, reading JSONL back.
#pragma once
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "tests/tools/cli_model.h"
#include "tests/tools/run_strata.h"

namespace strata::test {

// Mixtral-style, 4 experts top-2, trained context 512 (room for ChatML prompts).
inline std::string batch_model() {
  static const std::string path = [] {
    const std::string p = (cli_temp_dir() / "batch-moe-q8_0.gguf").string();
    const RunResult r = run_strata(fmt::format(
        "synth -o \"{}\" --arch mixtral --layers 2 --dim 64 --heads 4 --kv-heads 2 --experts 4 --used 2 --ffn 64 "
        "--vocab 300 --ctx 512 --type q8_0 --seed 5 --buffered",
        p));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    return p;
  }();
  return path;
}

inline std::string batch_dir(const std::string& name) {
  const auto d = cli_temp_dir() / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// N valid requests: chat and completion, greedy and sampled (some with their own seed).
inline std::string valid_requests(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    nlohmann::ordered_json body;
    if (i % 2 == 0) {
      body = {{"model", "whatever"},
              {"messages", {{{"role", "user"}, {"content", fmt::format("question {} about rivers", i)}}}},
              {"max_tokens", 6 + i % 5}};
    } else {
      body = {{"prompt", fmt::format("once upon a time {}", i)}, {"max_tokens", 6 + i % 4}};
    }
    if (i % 3 == 0) body["temperature"] = 0;
    else body["temperature"] = 0.9;
    if (i % 5 == 0) body["seed"] = 1000 + i;
    const nlohmann::ordered_json line = {{"custom_id", fmt::format("req-{}", i)},
                                         {"method", "POST"},
                                         {"url", i % 2 == 0 ? "/v1/chat/completions" : "/v1/completions"},
                                         {"body", body}};
    s += line.dump() + "\n";
  }
  return s;
}

// `strata batch ARGS` with a fixed `created`, no progress output; stderr joins stdout.
inline RunResult run_batch(const std::string& args, const std::string& env = "") {
  return run_shell(fmt::format("{} STRATA_PROGRESS=0 \"{}\" batch {} --created 1700000000 2>&1", env, strata_binary(),
                               args));
}

// Starts `strata batch ARGS` as a child with stdout+stderr into `log`; returns its pid.
inline pid_t spawn_batch(const std::vector<std::string>& args, const std::string& log,
                         const std::vector<std::string>& env = {}) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<std::string> all = {strata_binary(), "batch"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// custom_id -> the whole record line; fails on a doubled custom_id or a line that is no JSON.
inline std::map<std::string, std::string> records_by_id(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const std::string& l : lines_of(text)) {
    const auto j = nlohmann::json::parse(l, nullptr, false);
    REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: ", l);
    const std::string id = j["custom_id"].is_string() ? j["custom_id"].get<std::string>() : j["id"].get<std::string>();
    CHECK_MESSAGE(!out.contains(id), "custom_id written twice: ", id);
    out[id] = l;
  }
  return out;
}

}  // namespace strata::test
