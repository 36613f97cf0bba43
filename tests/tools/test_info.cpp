// `strata info`: run the built binary on reference models and check what it reports.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "compute/quant.h"
#include "models/gguf/gguf.h"
#include "tests/shared_data.h"
#include "tests/tools/run_strata.h"

using nlohmann::json;

namespace {

using strata::test::RunResult;
using strata::test::run_strata;

json info_json(const std::string& model) {
  RunResult r = run_strata(fmt::format("info --json \"{}\"", model));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  return json::parse(r.output);
}

}  // namespace

TEST_CASE("info --json on stories260K-f32") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string path = (shared / "models/stories260K-f32.gguf").string();
  json j = info_json(path);
  CHECK(j["files"] == json::array({path}));
  CHECK(j["version"] == 3);
  CHECK(j["architecture"] == "llama");
  CHECK(j["n_params"] == 292800);
  CHECK(j["n_layers"] == 5);
  CHECK(j["n_embd"] == 64);
  CHECK(j["n_ff"] == 172);
  CHECK(j["n_head"] == 8);
  CHECK(j["n_head_kv"] == 4);
  CHECK(j["head_dim_k"] == 8);
  CHECK(j["n_expert"].is_null());
  CHECK(j["context_length"] == 128);  // what the llama2.c converter wrote
  CHECK(j["rope"]["freq_base"].is_null());
  CHECK(j["norm_epsilon"].get<double>() == doctest::Approx(1e-5));
  CHECK(j["vocab_size"] == 512);
  CHECK(j["tokenizer"]["model"] == "llama");
  CHECK(j["type_histogram"] == json{{"f32", {{"count", 48}, {"bytes", 292800 * 4}}}});
  CHECK(j["total_bytes"] == 292800 * 4);
  // Everything once, except the 512 x 64 embedding, of which one row is read.
  CHECK(j["bytes_per_token"] == 292800 * 4 - 512 * 64 * 4 + 64 * 4);
}

TEST_CASE("info --json on the MoE models: experts counted at their routed share") {
  STRATA_REQUIRE_SHARED(shared);
  for (const char* name : {"stories260K-w256-moe8x2-q8_0.gguf", "tiny-random-qwen3moe-q8_0.gguf"}) {
    CAPTURE(name);
    const std::string path = (shared / "models" / name).string();
    json j = info_json(path);
    auto f = strata::gguf::GGUFFile::open(path);
    const uint64_t n_expert = j["n_expert"].get<uint64_t>();
    const uint64_t n_used = j["n_expert_used"].get<uint64_t>();
    const bool tied = f.find_tensor("output.weight") == nullptr;
    uint64_t expect = 0, total = 0;
    int expert_tensors = 0;
    for (const auto& t : f.tensors()) {
      total += t.nbytes;
      if (t.name.ends_with("_exps.weight")) {
        expect += t.nbytes * n_used / n_expert;
        expert_tensors++;
      } else if (t.name == "token_embd.weight" && !tied) {
        expect += strata::compute::row_bytes(t.type, t.shape[0]);
      } else {
        expect += t.nbytes;
      }
    }
    CHECK(expert_tensors > 0);
    CHECK(j["total_bytes"] == total);
    CHECK(j["bytes_per_token"] == expect);
    if (std::string(name).starts_with("tiny")) {
      CHECK(tied);
      CHECK(j["architecture"] == "qwen3moe");
      CHECK(j["n_expert"] == 16);
      CHECK(j["n_expert_used"] == 4);
      CHECK(j["n_expert_ff"] == 128);
      CHECK(j["head_dim_k"] == 64);
      CHECK(j["vocab_size"] == 50257);
      CHECK(j["tokenizer"]["pre"] == "gpt-2");
      CHECK(j["rope"]["freq_base"].get<double>() == doctest::Approx(1e6));
      CHECK(j["type_histogram"]["q8_0"]["count"] == 29);
      CHECK(j["type_histogram"]["f32"]["count"] == 21);
    } else {
      CHECK(j["n_expert"] == 8);
      CHECK(j["n_expert_used"] == 2);
      CHECK(j["n_embd"] == 256);
      CHECK(j["bytes_per_token"].get<uint64_t>() < total / 2);
      CHECK(j["head_dim_k"] == 8);
      CHECK(j["rope"]["dimension_count"] == 8);
    }
  }
}

TEST_CASE("info text output and errors") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string path = (shared / "models/stories260K-w256-q4_k_m.gguf").string();
  RunResult r = run_strata(fmt::format("info \"{}\"", path));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("architecture:") != std::string::npos);
  CHECK(r.output.find(" llama\n") != std::string::npos);
  CHECK(r.output.find("q4_K:") != std::string::npos);
  CHECK(r.output.find(" KiB") != std::string::npos);  // an under-1-MiB model reads in KiB, not "0.86 MiB"

  RunResult missing = run_strata("info /nonexistent/model.gguf");
  CHECK(missing.status == 1);
  CHECK(missing.output.find("strata: /nonexistent/model.gguf: cannot open") != std::string::npos);

  RunResult not_gguf =
      run_strata(fmt::format("info \"{}\"", (shared / "models/README.md").string()));
  CHECK(not_gguf.status == 1);
  CHECK(not_gguf.output.find("bad magic") != std::string::npos);
}
