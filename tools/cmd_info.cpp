// `strata info MODEL [--json] [--metadata]`: what a GGUF model is (architecture, shape, tokenizer,
// tensor types) and what it costs: total tensor bytes and the bytes one decode token must touch,
// which bounds streaming speed when weights come from disk.
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "compute/quant.h"
#include "models/gguf/gguf.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/units.h"

namespace strata::tools {
namespace {

// Keys in the order written, so the JSON reads like the text output.
using json = nlohmann::ordered_json;

// Hyperparameters are usually scalars, but some architectures store per-layer arrays; both are
// reported as they are (null when absent).
json hparam_uint(const gguf::GGUFFile& f, const std::string& key) {
  const gguf::Value* v = f.find(key);
  if (!v) return nullptr;
  if (v->type != gguf::ValueType::ARRAY) return f.get_uint(key).value();
  json out = json::array();
  for (const auto& item : f.get_array(key)->items) {
    if (const auto* u = std::get_if<uint64_t>(&item.v))
      out.push_back(*u);
    else if (const auto* i = std::get_if<int64_t>(&item.v))
      out.push_back(*i);
    else
      f.get_uint(key);  // throws the usual "expected an unsigned integer" error
  }
  return out;
}

json hparam_float(const gguf::GGUFFile& f, const std::string& key) {
  auto v = f.get_float(key);
  if (!v) return nullptr;
  // An f32 value is shown as the shortest decimal that round-trips as f32 (1e-05, not
  // 9.999999747378752e-06).
  if (f.find(key)->type == gguf::ValueType::F32) return std::stod(fmt::format("{}", float(*v)));
  return *v;
}

json hparam_string(const gguf::GGUFFile& f, const std::string& key) {
  auto v = f.get_string(key);
  return v ? json(*v) : json(nullptr);
}

bool is_expert_tensor(const gguf::TensorInfo& t) {
  return t.shape.size() == 3 && t.name.find("_exps") != std::string::npos;
}

// Bytes one decode step reads: dense tensors in full, one embedding row (unless the embedding
// doubles as the output projection), and the routed share of each expert tensor.
uint64_t bytes_per_token(const gguf::GGUFFile& f, const json& n_expert_used) {
  const bool tied_output = f.find_tensor("output.weight") == nullptr;
  uint64_t total = 0;
  for (const auto& t : f.tensors()) {
    if (t.name == "token_embd.weight" && !tied_output) {
      total += compute::row_bytes(t.type, t.shape[0]);
    } else if (is_expert_tensor(t) && t.shape[2] > 0) {
      uint64_t n_expert = uint64_t(t.shape[2]);
      uint64_t used = n_expert_used.is_number_unsigned() ? n_expert_used.get<uint64_t>() : n_expert;
      total += t.nbytes / n_expert * std::min(used, n_expert);
    } else {
      total += t.nbytes;
    }
  }
  return total;
}

json describe(const gguf::GGUFFile& f) {
  const std::string arch = f.architecture();
  const std::string p = arch + ".";
  json j;
  j["files"] = f.paths();
  j["file_sizes"] = f.file_sizes();
  j["version"] = f.version();
  j["architecture"] = arch;
  j["name"] = hparam_string(f, "general.name");

  int64_t n_params = 0;
  uint64_t total_bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> histogram;  // type -> (count, bytes)
  for (const auto& t : f.tensors()) {
    n_params += t.n_elements;
    total_bytes += t.nbytes;
    auto& h = histogram[compute::type_name(t.type)];
    h.first++;
    h.second += t.nbytes;
  }
  j["n_params"] = n_params;
  j["n_tensors"] = f.tensors().size();
  j["n_layers"] = hparam_uint(f, p + "block_count");
  j["n_embd"] = hparam_uint(f, p + "embedding_length");
  j["n_ff"] = hparam_uint(f, p + "feed_forward_length");
  j["n_expert_ff"] = hparam_uint(f, p + "expert_feed_forward_length");
  j["n_head"] = hparam_uint(f, p + "attention.head_count");
  j["n_head_kv"] = hparam_uint(f, p + "attention.head_count_kv");
  j["head_dim_k"] = hparam_uint(f, p + "attention.key_length");
  j["head_dim_v"] = hparam_uint(f, p + "attention.value_length");
  if (j["head_dim_k"].is_null() && j["n_embd"].is_number() && j["n_head"].is_number() &&
      j["n_head"].get<uint64_t>() > 0) {
    // The architectures' default when the keys are absent.
    j["head_dim_k"] = j["head_dim_v"] = j["n_embd"].get<uint64_t>() / j["n_head"].get<uint64_t>();
  }
  j["n_expert"] = hparam_uint(f, p + "expert_count");
  j["n_expert_used"] = hparam_uint(f, p + "expert_used_count");
  j["context_length"] = hparam_uint(f, p + "context_length");
  j["rope"] = {{"freq_base", hparam_float(f, p + "rope.freq_base")},
               {"dimension_count", hparam_uint(f, p + "rope.dimension_count")},
               {"scaling_type", hparam_string(f, p + "rope.scaling.type")},
               {"scaling_factor", hparam_float(f, p + "rope.scaling.factor")}};
  json eps = hparam_float(f, p + "attention.layer_norm_rms_epsilon");
  j["norm_type"] = eps.is_null() ? "layer_norm" : "rms_norm";
  j["norm_epsilon"] = eps.is_null() ? hparam_float(f, p + "attention.layer_norm_epsilon") : eps;
  if (j["norm_epsilon"].is_null()) j["norm_type"] = nullptr;

  const gguf::Array* tokens = f.get_array("tokenizer.ggml.tokens");
  j["vocab_size"] = tokens ? json(tokens->items.size()) : hparam_uint(f, p + "vocab_size");
  j["tokenizer"] = {{"model", hparam_string(f, "tokenizer.ggml.model")},
                    {"pre", hparam_string(f, "tokenizer.ggml.pre")}};

  json hist = json::object();
  for (const auto& [type, h] : histogram) hist[type] = {{"count", h.first}, {"bytes", h.second}};
  j["type_histogram"] = hist;
  j["total_bytes"] = total_bytes;
  j["bytes_per_token"] = bytes_per_token(f, j["n_expert_used"]);
  return j;
}

std::string human_bytes(uint64_t b) { return format_bytes(double(b)); }

std::string human_count(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{} ({:.2f} B)", n, double(n) / 1e9);
  if (n >= 1'000'000) return fmt::format("{} ({:.2f} M)", n, double(n) / 1e6);
  if (n >= 1'000) return fmt::format("{} ({:.1f} K)", n, double(n) / 1e3);
  return fmt::format("{}", n);
}

// A JSON scalar/array as plain text; "-" when absent.
std::string text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:g}", v.get<double>());
  return v.dump();
}

std::string value_summary(const gguf::Value& v) {
  if (const auto* a = std::get_if<gguf::Array>(&v.v)) {
    std::string s = fmt::format("[{} x {}]", a->items.size(), gguf::value_type_name(a->elem_type));
    for (size_t i = 0; i < a->items.size() && i < 4; ++i) s += " " + value_summary(a->items[i]);
    return a->items.size() > 4 ? s + " ..." : s;
  }
  if (const auto* s = std::get_if<std::string>(&v.v))
    return json(s->size() > 60 ? s->substr(0, 60) + "..." : *s)
        .dump(-1, ' ', false, json::error_handler_t::replace);
  if (const auto* d = std::get_if<double>(&v.v)) return fmt::format("{:g}", *d);
  if (const auto* b = std::get_if<bool>(&v.v)) return *b ? "true" : "false";
  if (const auto* u = std::get_if<uint64_t>(&v.v)) return std::to_string(*u);
  return std::to_string(std::get<int64_t>(v.v));
}

void print_rows(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.first.size() + 1);
  for (const auto& [k, v] : rows)
    std::printf("%-*s %s\n", int(width), (k + ":").c_str(), v.c_str());
}

void print_human(const json& j, const gguf::GGUFFile& f, bool metadata) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& path : j["files"]) rows.emplace_back("file", path.get<std::string>());
  rows.emplace_back("GGUF version", text(j["version"]));
  rows.emplace_back("architecture", text(j["architecture"]));
  rows.emplace_back("name", text(j["name"]));
  rows.emplace_back("parameters", human_count(j["n_params"].get<int64_t>()));
  rows.emplace_back("layers", text(j["n_layers"]));
  rows.emplace_back("embedding length", text(j["n_embd"]));
  rows.emplace_back("feed-forward length", text(j["n_ff"]));
  if (!j["n_expert_ff"].is_null()) rows.emplace_back("expert feed-forward", text(j["n_expert_ff"]));
  rows.emplace_back("heads", text(j["n_head"]));
  rows.emplace_back("KV heads", text(j["n_head_kv"]));
  rows.emplace_back("head dims (k/v)", text(j["head_dim_k"]) + " / " + text(j["head_dim_v"]));
  if (!j["n_expert"].is_null())
    rows.emplace_back("experts (used/total)",
                      text(j["n_expert_used"]) + " / " + text(j["n_expert"]));
  rows.emplace_back("context length", text(j["context_length"]));
  const json& rope = j["rope"];
  std::string rope_text =
      fmt::format("base {}, dims {}", text(rope["freq_base"]), text(rope["dimension_count"]));
  if (!rope["scaling_type"].is_null())
    rope_text +=
        fmt::format(", scaling {} x{}", text(rope["scaling_type"]), text(rope["scaling_factor"]));
  rows.emplace_back("rope", rope_text);
  rows.emplace_back("norm epsilon", text(j["norm_epsilon"]) + " (" + text(j["norm_type"]) + ")");
  rows.emplace_back("vocab size", text(j["vocab_size"]));
  rows.emplace_back("tokenizer (model/pre)",
                    text(j["tokenizer"]["model"]) + " / " + text(j["tokenizer"]["pre"]));
  rows.emplace_back("tensors", text(j["n_tensors"]));
  for (const auto& [type, h] : j["type_histogram"].items())
    rows.emplace_back("  " + type, fmt::format("{} tensors, {}", h["count"].get<uint64_t>(),
                                               human_bytes(h["bytes"].get<uint64_t>())));
  rows.emplace_back("total tensor bytes", human_bytes(j["total_bytes"].get<uint64_t>()));
  rows.emplace_back("bytes per token", human_bytes(j["bytes_per_token"].get<uint64_t>()));
  print_rows(rows);
  if (metadata) {
    std::printf("\nmetadata (%zu keys):\n", f.metadata().size());
    rows.clear();
    for (const auto& [key, value] : f.metadata())
      rows.emplace_back("  " + key, value_summary(value));
    print_rows(rows);
  }
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  auto* cmd =
      app.add_subcommand("info", "Show a GGUF model's architecture, shape, tensor types and sizes");
  auto model = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto metadata = std::make_shared<bool>(false);
  // Positional as before, or -m like every other command (and llama.cpp's tools).
  auto* positional = cmd->add_option("model", *model, "GGUF file (the first part of a split model also works)");
  auto* flag = cmd->add_option("-m,--model", *model, "The same, as a flag");
  positional->excludes(flag);
  cmd->add_flag("--json", *as_json, "Print one JSON object instead of text");
  cmd->add_flag("--metadata", *metadata, "Also list every metadata key (text output)");
  cmd->callback([&exit_code, model, as_json, metadata] {
    if (model->empty()) fail("info: give the model as `strata info MODEL.gguf` or `-m MODEL.gguf`");
    gguf::GGUFFile f = gguf::GGUFFile::open(*model);
    json j = describe(f);
    if (*as_json)
      std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    else
      print_human(j, f, *metadata);
    exit_code = 0;
  });
}

}  // namespace strata::tools
