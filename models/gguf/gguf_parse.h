// Internal to the GGUF reader: parsing and validating ONE file (no split handling). gguf.cpp
// combines the parts of a split model from these results.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/gguf/gguf.h"

namespace strata::gguf::detail {

// Limits that keep hostile files from costing unbounded memory or recursion.
inline constexpr uint64_t kMaxKeyLength = 65535;  // the GGUF spec's key limit
inline constexpr uint64_t kMaxTensorNameLength = 65535;
inline constexpr int kMaxArrayDepth = 8;  // nested arrays deeper than this are rejected
// Elements of all metadata arrays together (real vocabularies need about 1M).
inline constexpr uint64_t kMaxArrayElements = uint64_t(1) << 25;
inline constexpr uint64_t kMaxAlignment = 1u << 30;

struct ParsedFile {
  std::string path;
  uint64_t file_size = 0;
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // absolute offset of the data section
  std::vector<std::pair<std::string, Value>> metadata;
  std::vector<TensorInfo> tensors;  // offsets absolute, file_index set to the given index
};

// A key or tensor name from a file, made safe for an error message: non-printable bytes as
// \xNN, long names cut short.
std::string printable(std::string_view s);

// Reads the header, metadata and tensor index of one file; validates everything that can be
// validated within one file (tensor ranges included). Throws strata::Error("<path>: ...").
ParsedFile parse_file(const std::string& path, uint32_t file_index);

}  // namespace strata::gguf::detail
