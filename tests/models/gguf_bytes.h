// Test helpers: building GGUF bytes by hand (valid or deliberately broken) and temp files.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "models/gguf/gguf.h"

namespace strata::test {

// Little-endian byte accumulator with GGUF field writers.
struct GgufBytes {
  std::string b;

  template <typename T>
  GgufBytes& raw(T v) {
    char tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.append(tmp, sizeof(T));
    return *this;
  }
  GgufBytes& u8(uint8_t v) { return raw(v); }
  GgufBytes& u32(uint32_t v) { return raw(v); }
  GgufBytes& u64(uint64_t v) { return raw(v); }
  GgufBytes& str(std::string_view s) {
    u64(s.size());
    b.append(s);
    return *this;
  }
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b.append("GGUF", 4);
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  GgufBytes& kv_u32(std::string_view key, uint32_t v) {
    return str(key).u32(uint32_t(gguf::ValueType::U32)).u32(v);
  }
  GgufBytes& kv_u64(std::string_view key, uint64_t v) {
    return str(key).u32(uint32_t(gguf::ValueType::U64)).u64(v);
  }
  GgufBytes& kv_str(std::string_view key, std::string_view v) {
    return str(key).u32(uint32_t(gguf::ValueType::STRING)).str(v);
  }
  GgufBytes& tensor(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type,
                    uint64_t offset) {
    str(name).u32(uint32_t(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  GgufBytes& pad_to(size_t alignment) {
    while (b.size() % alignment) b.push_back('\0');
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    b.append(n, '\0');
    return *this;
  }
  // Any parsed value, written back in GGUF encoding (used to re-emit real metadata).
  GgufBytes& value(const gguf::Value& v) {
    using VT = gguf::ValueType;
    switch (v.type) {
      case VT::U8: return u8(uint8_t(std::get<uint64_t>(v.v)));
      case VT::U16: return raw(uint16_t(std::get<uint64_t>(v.v)));
      case VT::U32: return u32(uint32_t(std::get<uint64_t>(v.v)));
      case VT::U64: return u64(std::get<uint64_t>(v.v));
      case VT::I8: return raw(int8_t(std::get<int64_t>(v.v)));
      case VT::I16: return raw(int16_t(std::get<int64_t>(v.v)));
      case VT::I32: return raw(int32_t(std::get<int64_t>(v.v)));
      case VT::I64: return raw(std::get<int64_t>(v.v));
      case VT::F32: return raw(float(std::get<double>(v.v)));
      case VT::F64: return raw(std::get<double>(v.v));
      case VT::BOOL: return u8(std::get<bool>(v.v) ? 1 : 0);
      case VT::STRING: return str(std::get<std::string>(v.v));
      case VT::ARRAY: {
        const auto& a = std::get<gguf::Array>(v.v);
        u32(uint32_t(a.elem_type)).u64(a.items.size());
        for (const auto& item : a.items) value(item);
        return *this;
      }
    }
    return *this;
  }
  GgufBytes& kv(std::string_view key, const gguf::Value& v) {
    return str(key).u32(uint32_t(v.type)).value(v);
  }
};

// A per-process scratch folder, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(std::string_view tag) {
    path = std::filesystem::temp_directory_path() /
           ("strata-" + std::string(tag) + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, std::string_view bytes) const {
    std::string p = (path / name).string();
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    return p;
  }
};

inline std::string read_bytes(const std::string& path, uint64_t offset, uint64_t n) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(std::streamoff(offset));
  std::string s(n, '\0');
  in.read(s.data(), std::streamsize(n));
  if (uint64_t(in.gcount()) != n) s.clear();
  return s;
}

}  // namespace strata::test
