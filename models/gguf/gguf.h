// GGUF (v2, v3) reader: header, metadata, tensor index. Tensor bytes are NOT read here: callers
// get each tensor's (file index, absolute offset, byte length) and fetch the bytes through a
// weight provider, so the same index serves resident and streaming runs.
//
// Every malformed input yields strata::Error("<path>: <what is wrong>"), never a crash, hang or
// allocation larger than the file could justify.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "compute/quant.h"

namespace strata::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::U8;
  std::vector<Value> items;
};

struct Value {
  ValueType type = ValueType::U8;
  // Integers (any width/sign) are held as int64/uint64, floats as double, bool, string, array.
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> v;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // ggml order: shape[0] is the row length (contiguous)
  compute::DType type = compute::DType::F32;
  uint32_t file_index = 0;     // which split file holds it
  uint64_t offset = 0;         // absolute byte offset in that file
  uint64_t nbytes = 0;
  int64_t n_elements = 0;
  int64_t rows() const;        // product of shape[1..]
};

class GGUFFile {
 public:
  // Opens a GGUF file. A name like "m-00001-of-00003.gguf" opens all splits as one model
  // (metadata from the first, tensors from all).
  static GGUFFile open(const std::string& path);

  uint32_t version() const { return version_; }
  const std::vector<std::string>& paths() const { return paths_; }
  const std::vector<uint64_t>& file_sizes() const { return file_sizes_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset(uint32_t file_index = 0) const { return data_offsets_.at(file_index); }

  // Keys in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed getters: std::nullopt when the key is absent; strata::Error naming the key and the
  // expected type when present with an incompatible type (ints convert between widths when the
  // value fits; floats accept any numeric).
  std::optional<uint64_t> get_uint(const std::string& key) const;
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  const Array* get_array(const std::string& key) const;
  // Same, but a missing key is an error naming it.
  uint64_t require_uint(const std::string& key) const;
  double require_float(const std::string& key) const;
  std::string require_string(const std::string& key) const;

  std::string architecture() const;  // general.architecture (required)

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;
  // Error "<path>: tensor '<name>' is missing (needed by <why>)".
  const TensorInfo& require_tensor(const std::string& name, const std::string& why) const;

 private:
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::string> paths_;
  std::vector<uint64_t> file_sizes_;
  std::vector<uint64_t> data_offsets_;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::map<std::string, size_t> meta_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  friend class Parser;
};

}  // namespace strata::gguf
