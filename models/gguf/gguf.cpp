// GGUFFile: split-model assembly over the single-file parser, and the typed metadata getters.
#include "models/gguf/gguf.h"

#include <filesystem>
#include <limits>
#include <regex>

#include "models/gguf/gguf_parse.h"
#include "storage/error.h"
#include "storage/placement.h"

namespace strata::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "unknown";
}

int64_t TensorInfo::rows() const {
  int64_t r = 1;
  for (size_t i = 1; i < shape.size(); ++i) r *= shape[i];
  return r;
}

namespace {

std::optional<uint64_t> as_uint(const Value& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.v)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v.v); i && *i >= 0) return uint64_t(*i);
  return std::nullopt;
}

std::optional<int64_t> as_int(const Value& v) {
  if (const auto* i = std::get_if<int64_t>(&v.v)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v.v);
      u && *u <= uint64_t(std::numeric_limits<int64_t>::max()))
    return int64_t(*u);
  return std::nullopt;
}

std::optional<double> as_float(const Value& v) {
  if (const auto* d = std::get_if<double>(&v.v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v.v)) return double(*i);
  if (const auto* u = std::get_if<uint64_t>(&v.v)) return double(*u);
  return std::nullopt;
}

[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const Value& v,
                             const char* expected) {
  if (const auto* i = std::get_if<int64_t>(&v.v))
    fail("{}: key '{}' is {}, expected {}", path, key, *i, expected);
  if (const auto* u = std::get_if<uint64_t>(&v.v))
    fail("{}: key '{}' is {}, expected {}", path, key, *u, expected);
  fail("{}: key '{}' has type {}, expected {}", path, key, value_type_name(v.type), expected);
}

const Value* find_in(const std::vector<std::pair<std::string, Value>>& md, const std::string& key) {
  for (const auto& [k, v] : md)
    if (k == key) return &v;
  return nullptr;
}

// Checks an optional split.* key of one part against what the file names say.
void check_split_key(const detail::ParsedFile& part, const std::string& key, uint64_t expected) {
  const Value* v = find_in(part.metadata, key);
  if (!v) return;
  std::optional<uint64_t> got = as_uint(*v);
  if (!got) wrong_type(part.path, key, *v, "an unsigned integer");
  if (*got != expected)
    fail("{}: {} is {} but the file name says {}", part.path, key, *got, expected);
}

struct SplitName {
  std::string prefix;
  uint32_t number = 0;  // 1-based, as in the file name
  uint32_t count = 0;
};

std::optional<SplitName> parse_split_name(const std::string& path) {
  static const std::regex pattern(R"(^(.*)-([0-9]{5})-of-([0-9]{5})\.gguf$)");
  std::smatch m;
  if (!std::regex_match(path, m, pattern)) return std::nullopt;
  return SplitName{m[1].str(), uint32_t(std::stoul(m[2].str())), uint32_t(std::stoul(m[3].str()))};
}

}  // namespace

class Parser {
 public:
  static GGUFFile open(const std::string& path) {
    std::vector<std::string> part_paths;
    // A placement manifest (`strata place`) names its logical files itself: one for a whole
    // model, one per split part for a split one.
    const bool placed = storage::is_manifest(path);
    std::optional<SplitName> split = placed ? std::nullopt : parse_split_name(path);
    if (placed) {
      part_paths = storage::model_locators(path);
      if (part_paths.size() > 1) split = SplitName{path, 1, static_cast<uint32_t>(part_paths.size())};
    } else if (split) {
      if (split->count == 0 || split->number == 0 || split->number > split->count)
        fail("{}: split number {} of {} in the file name is invalid", path, split->number,
             split->count);
      for (uint32_t i = 1; i <= split->count; ++i) {
        std::string part = fmt::format("{}-{:05d}-of-{:05d}.gguf", split->prefix, i, split->count);
        if (!std::filesystem::exists(part))
          fail("{}: split part {} of {} is missing (opening {})", part, i, split->count, path);
        part_paths.push_back(std::move(part));
      }
    } else {
      part_paths.push_back(path);
    }

    GGUFFile f;
    for (uint32_t i = 0; i < part_paths.size(); ++i) {
      detail::ParsedFile part = detail::parse_file(part_paths[i], i);
      if (split) {
        check_split_key(part, "split.count", split->count);
        check_split_key(part, "split.no", i);
      } else if (const Value* c = find_in(part.metadata, "split.count")) {
        std::optional<uint64_t> n = as_uint(*c);
        if (n && *n > 1)
          fail(
              "{}: split.count is {} but the name lacks the -NNNNN-of-MMMMM.gguf form needed "
              "to find the other parts",
              path, *n);
      }
      if (i == 0) {
        f.version_ = part.version;
        f.alignment_ = part.alignment;
        f.metadata_ = std::move(part.metadata);
      }
      f.paths_.push_back(part.path);
      f.file_sizes_.push_back(part.file_size);
      f.data_offsets_.push_back(part.data_offset);
      for (TensorInfo& t : part.tensors) {
        if (!f.tensor_index_.emplace(t.name, f.tensors_.size()).second)
          fail("{}: duplicate tensor name '{}' (also in an earlier split part)", part.path, t.name);
        f.tensors_.push_back(std::move(t));
      }
    }
    for (size_t i = 0; i < f.metadata_.size(); ++i) f.meta_index_.emplace(f.metadata_[i].first, i);
    return f;
  }
};

GGUFFile GGUFFile::open(const std::string& path) { return Parser::open(path); }

const Value* GGUFFile::find(const std::string& key) const {
  auto it = meta_index_.find(key);
  return it == meta_index_.end() ? nullptr : &metadata_[it->second].second;
}

std::optional<uint64_t> GGUFFile::get_uint(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto u = as_uint(*v)) return u;
  wrong_type(paths_.at(0), key, *v, "an unsigned integer");
}

std::optional<int64_t> GGUFFile::get_int(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto i = as_int(*v)) return i;
  wrong_type(paths_.at(0), key, *v, "a signed 64-bit integer");
}

std::optional<double> GGUFFile::get_float(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto d = as_float(*v)) return d;
  wrong_type(paths_.at(0), key, *v, "a number");
}

std::optional<bool> GGUFFile::get_bool(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (const auto* b = std::get_if<bool>(&v->v)) return *b;
  wrong_type(paths_.at(0), key, *v, "a bool");
}

std::optional<std::string> GGUFFile::get_string(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(&v->v)) return *s;
  wrong_type(paths_.at(0), key, *v, "a string");
}

const Array* GGUFFile::get_array(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return nullptr;
  if (const auto* a = std::get_if<Array>(&v->v)) return a;
  wrong_type(paths_.at(0), key, *v, "an array");
}

uint64_t GGUFFile::require_uint(const std::string& key) const {
  if (auto u = get_uint(key)) return *u;
  fail("{}: required key '{}' is missing", paths_.at(0), key);
}

double GGUFFile::require_float(const std::string& key) const {
  if (auto d = get_float(key)) return *d;
  fail("{}: required key '{}' is missing", paths_.at(0), key);
}

std::string GGUFFile::require_string(const std::string& key) const {
  if (auto s = get_string(key)) return *s;
  fail("{}: required key '{}' is missing", paths_.at(0), key);
}

std::string GGUFFile::architecture() const { return require_string("general.architecture"); }

const TensorInfo* GGUFFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& GGUFFile::require_tensor(const std::string& name, const std::string& why) const {
  if (const TensorInfo* t = find_tensor(name)) return *t;
  fail("{}: tensor '{}' is missing (needed by {})", paths_.at(0), name, why);
}

}  // namespace strata::gguf
