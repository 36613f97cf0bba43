// GGUF v3 writer that streams tensor data: metadata and the tensor index are collected first,
// then write() lays the file out and asks a callback for each tensor's bytes piece by piece, so
// a file far larger than memory is produced with two fixed-size buffers (one being filled in
// parallel while the other is on its way to disk).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "compute/quant.h"
#include "models/gguf/gguf.h"

namespace strata::gguf {

struct WriterTensor {
  std::string name;
  std::vector<int64_t> shape;  // ggml order: shape[0] is the row length
  compute::DType type = compute::DType::F32;
  uint64_t nbytes = 0;
  uint64_t offset = 0;  // relative to the start of the data section (aligned)
};

// Fills dst with bytes [offset, offset + dst.size()) of tensor `tensor` (index in add order).
// Called with arbitrary, non-overlapping ranges and, when WriteOptions::parallel_fill is set,
// concurrently from several threads: the bytes must depend only on (tensor, offset).
using FillFn = std::function<void(size_t tensor, uint64_t offset, std::span<uint8_t> dst)>;
// Bytes written so far and the file's total size; called from the writing thread.
using ProgressFn = std::function<void(uint64_t written, uint64_t total)>;

struct WriteOptions {
  size_t buffer_bytes = 32u << 20;  // each of the two staging buffers (rounded to 4 KiB)
  size_t piece_bytes = 1u << 20;    // the unit of parallel filling
  bool parallel_fill = true;
  bool direct_io = true;  // O_DIRECT where the file system allows it (keeps the page cache clean)
  ProgressFn progress;
};

class GGUFWriter {
 public:
  explicit GGUFWriter(uint32_t alignment = 32);

  // Metadata, written in the order added. A key added twice is an error naming it.
  void add_u8(const std::string& key, uint8_t v);
  void add_i8(const std::string& key, int8_t v);
  void add_u16(const std::string& key, uint16_t v);
  void add_i16(const std::string& key, int16_t v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_u64(const std::string& key, uint64_t v);
  void add_i64(const std::string& key, int64_t v);
  void add_f32(const std::string& key, float v);
  void add_f64(const std::string& key, double v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, std::string v);
  void add_array(const std::string& key, Array v);  // any element type, nested arrays included
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  // Any value; its type tag must match what it holds (checked when added, error names the key).
  void add_value(const std::string& key, Value v);

  // Tensors, stored in the order added. Errors (naming the tensor): duplicate name, empty or
  // non-positive shape, a row length the type's block does not divide. Returns the index.
  size_t add_tensor(const std::string& name, std::vector<int64_t> shape, compute::DType type);

  uint32_t alignment() const { return alignment_; }
  const std::vector<WriterTensor>& tensors() const { return tensors_; }
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  // Layout of the file as write() will produce it (general.alignment is added when absent).
  uint64_t data_offset() const;
  uint64_t data_bytes() const;
  uint64_t file_bytes() const { return data_offset() + data_bytes(); }

  // Creates `path` and writes the whole file. On any failure the partial file is removed and
  // strata::Error names the path (exceptions from `fill` propagate unchanged).
  void write(const std::string& path, const FillFn& fill, const WriteOptions& opts = {}) const;

  // The header, metadata and tensor index, padded to the data section.
  std::vector<uint8_t> serialize_header() const;

 private:
  void add_checked(const std::string& key, Value v);

  uint32_t alignment_;
  bool alignment_key_present_ = false;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::unordered_set<std::string> keys_;
  std::vector<WriterTensor> tensors_;
  std::unordered_set<std::string> tensor_names_;
  uint64_t data_bytes_ = 0;  // every tensor is padded to the alignment, the last one too
};

}  // namespace strata::gguf
