// Reading the tokenizer.ggml.* metadata and choosing the tokenizer it describes.
#include "models/tokenizer/tokenizer.h"

#include <spdlog/spdlog.h>

#include "models/gguf/gguf.h"
#include "models/tokenizer/vocab_tokenizer.h"
#include "storage/error.h"

namespace strata::tok {

namespace {

const std::string& path_of(const gguf::GGUFFile& file) {
  static const std::string unknown = "<gguf>";
  return file.paths().empty() ? unknown : file.paths().front();
}

const gguf::Array* array_of(const gguf::GGUFFile& file, const std::string& key, bool required) {
  const gguf::Value* v = file.find(key);
  if (!v) {
    if (required) fail("{}: key '{}' is missing (needed by the tokenizer)", path_of(file), key);
    return nullptr;
  }
  const auto* arr = std::get_if<gguf::Array>(&v->v);
  if (!arr) fail("{}: key '{}' has type {}, expected an array", path_of(file), key, gguf::value_type_name(v->type));
  return arr;
}

[[noreturn]] void wrong_elements(const gguf::GGUFFile& file, const std::string& key, const gguf::Array& arr,
                                 const char* expected) {
  fail("{}: key '{}' is an array of {}, expected an array of {}", path_of(file), key,
       gguf::value_type_name(arr.elem_type), expected);
}

std::vector<std::string> strings_of(const gguf::GGUFFile& file, const std::string& key, bool required) {
  std::vector<std::string> out;
  if (const gguf::Array* arr = array_of(file, key, required)) {
    out.reserve(arr->items.size());
    for (const gguf::Value& item : arr->items) {
      const auto* s = std::get_if<std::string>(&item.v);
      if (!s) wrong_elements(file, key, *arr, "strings");
      out.push_back(*s);
    }
  }
  return out;
}

std::vector<float> floats_of(const gguf::GGUFFile& file, const std::string& key) {
  std::vector<float> out;
  if (const gguf::Array* arr = array_of(file, key, false)) {
    out.reserve(arr->items.size());
    for (const gguf::Value& item : arr->items) {
      if (const auto* d = std::get_if<double>(&item.v)) out.push_back(float(*d));
      else if (const auto* i = std::get_if<int64_t>(&item.v)) out.push_back(float(*i));
      else if (const auto* u = std::get_if<uint64_t>(&item.v)) out.push_back(float(*u));
      else wrong_elements(file, key, *arr, "numbers");
    }
  }
  return out;
}

std::vector<int32_t> ints_of(const gguf::GGUFFile& file, const std::string& key) {
  std::vector<int32_t> out;
  if (const gguf::Array* arr = array_of(file, key, false)) {
    out.reserve(arr->items.size());
    for (const gguf::Value& item : arr->items) {
      if (const auto* i = std::get_if<int64_t>(&item.v)) out.push_back(int32_t(*i));
      else if (const auto* u = std::get_if<uint64_t>(&item.v)) out.push_back(int32_t(*u));
      else wrong_elements(file, key, *arr, "integers");
    }
  }
  return out;
}

// Token ids are written as u32 by some converters and i32 by others; -1 / 0xFFFFFFFF mean
// "none" and are dropped later as out of range.
std::optional<int64_t> id_of(const gguf::GGUFFile& file, const std::string& key) {
  const gguf::Value* v = file.find(key);
  if (!v) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&v->v)) return *u > uint64_t(INT64_MAX) ? -1 : int64_t(*u);
  if (const auto* i = std::get_if<int64_t>(&v->v)) return *i;
  fail("{}: key '{}' has type {}, expected an integer token id", path_of(file), key,
       gguf::value_type_name(v->type));
}

VocabSpec read_spec(const gguf::GGUFFile& file) {
  VocabSpec spec;
  spec.source = path_of(file);
  const std::optional<std::string> model = file.get_string("tokenizer.ggml.model");
  if (!model) fail("{}: key 'tokenizer.ggml.model' is missing (the file has no tokenizer)", spec.source);
  spec.model = *model;
  spec.pre = file.get_string("tokenizer.ggml.pre").value_or("");
  spec.model_name = file.get_string("general.name").value_or("");
  spec.tokens = strings_of(file, "tokenizer.ggml.tokens", true);

  spec.scores = floats_of(file, "tokenizer.ggml.scores");
  spec.token_types = ints_of(file, "tokenizer.ggml.token_type");
  if (spec.model == "gpt2") spec.merges = strings_of(file, "tokenizer.ggml.merges", true);

  spec.bos_id = id_of(file, "tokenizer.ggml.bos_token_id");
  spec.eos_id = id_of(file, "tokenizer.ggml.eos_token_id");
  spec.unk_id = id_of(file, "tokenizer.ggml.unknown_token_id");
  spec.pad_id = id_of(file, "tokenizer.ggml.padding_token_id");
  spec.eot_id = id_of(file, "tokenizer.ggml.eot_token_id");
  spec.eom_id = id_of(file, "tokenizer.ggml.eom_token_id");
  spec.add_bos = file.get_bool("tokenizer.ggml.add_bos_token");
  spec.add_eos = file.get_bool("tokenizer.ggml.add_eos_token");
  spec.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix");
  return spec;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::GGUFFile& file) { return from_spec(read_spec(file)); }

std::unique_ptr<Tokenizer> Tokenizer::from_spec(const VocabSpec& spec) {
  if (spec.model == "llama") return detail::make_spm_tokenizer(spec);
  if (spec.model == "gpt2") {
    if (spec.pre.empty())
      spdlog::warn("{}: tokenizer.ggml.pre is missing; using llama.cpp's default BPE pre-tokenizer", spec.source);
    return detail::make_bpe_tokenizer(spec);
  }
  fail("{}: tokenizer.ggml.model '{}' is not supported (expected 'llama' or 'gpt2')", spec.source, spec.model);
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool special) const {
  std::string text;
  for (TokenId id : ids) text += token_to_piece(id, special);
  return text;
}

}  // namespace strata::tok
