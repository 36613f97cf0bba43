#include "server/model_info.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cctype>
#include <map>

#include "compute/quant.h"
#include "models/gguf/gguf.h"

namespace strata::server {

namespace {

uint64_t fnv1a(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

json scalar_json(const gguf::Value& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gguf::Array>) return nullptr;
        else return x;
      },
      v.v);
}

}  // namespace

std::string format_parameter_count(uint64_t n) {
  if (n >= 1'000'000'000ull) return fmt::format("{:.1f}B", double(n) / 1e9);
  if (n >= 1'000'000ull) return fmt::format("{:.0f}M", double(n) / 1e6);
  if (n >= 1'000ull) return fmt::format("{:.1f}K", double(n) / 1e3);
  return std::to_string(n);
}

ModelDetails describe_model(const gguf::GGUFFile& file) {
  ModelDetails d;
  d.path = file.paths().empty() ? std::string() : file.paths().front();
  for (uint64_t s : file.file_sizes()) d.size += s;
  struct stat st {};
  if (!d.path.empty() && ::stat(d.path.c_str(), &st) == 0) d.modified = int64_t(st.st_mtime);
  const std::string key = fmt::format("{}|{}|{}", d.path, d.size, d.modified);
  for (uint64_t i = 0; i < 4; ++i) d.digest += fmt::format("{:016x}", fnv1a(key, i));
  d.family = file.architecture();

  std::map<compute::DType, uint64_t> bytes_by_type;
  for (const auto& t : file.tensors()) {
    d.parameter_count += uint64_t(t.n_elements);
    bytes_by_type[t.type] += t.nbytes;
  }
  d.parameter_size = format_parameter_count(d.parameter_count);
  uint64_t most = 0;
  for (const auto& [type, b] : bytes_by_type) {
    if (b > most) {
      most = b;
      d.quantization_level = compute::type_name(type);
    }
  }
  for (auto& c : d.quantization_level) c = char(std::toupper(static_cast<unsigned char>(c)));

  d.model_info = json::object();
  for (const auto& [k, v] : file.metadata()) {
    if (v.type == gguf::ValueType::ARRAY) continue;
    if (k == "tokenizer.chat_template") continue;  // /api/show gives it as "template"
    d.model_info[k] = scalar_json(v);
  }
  d.model_info["general.parameter_count"] = d.parameter_count;
  return d;
}

}  // namespace strata::server
