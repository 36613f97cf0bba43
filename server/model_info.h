// What the model listing endpoints say about the served file: size, time, family, parameter
// count and quantization, read from the GGUF header (no tensor data).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace strata::gguf { class GGUFFile; }

#include "server/api_error.h"

namespace strata::server {

struct ModelDetails {
  std::string path;
  uint64_t size = 0;              // bytes over all split files
  int64_t modified = 0;           // unix seconds (mtime of the first file)
  std::string digest;             // 64 hex digits identifying path, size and mtime (not a content hash)
  std::string family;             // general.architecture
  uint64_t parameter_count = 0;
  std::string parameter_size;     // "46.7B", "137M"
  std::string quantization_level; // the type holding most bytes, e.g. "Q4_K"
  json model_info;      // scalar metadata (tokenizer arrays left out)
};

ModelDetails describe_model(const gguf::GGUFFile& file);

// "46.7B", "137M", "12.0K", "512".
std::string format_parameter_count(uint64_t n);

}  // namespace strata::server
