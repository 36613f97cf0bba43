// Single-file GGUF parsing. The file is read front to back through a small buffer; every count
// and length is checked against the bytes left in the file BEFORE anything is allocated, so a
// hostile header can cost at most memory proportional to the file's real size.
#include "models/gguf/gguf_parse.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <string_view>
#include <unordered_set>

#include "storage/error.h"
#include "storage/placement.h"

namespace strata::gguf::detail {

static_assert(std::endian::native == std::endian::little, "GGUF fields are read as host integers");

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kMaxValueType = static_cast<uint32_t>(ValueType::F64);
// Smallest on-disk sizes, used to bound counts before allocating.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                  // key length, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name len, n_dims, dim, type, offset

}  // namespace

std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out.push_back(char(c));
    else
      out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > kMaxShown) out += fmt::format("...({} bytes)", s.size());
  return out;
}

namespace {

// Names the field being read, formatted only when an error is reported (the hot path reads
// hundreds of thousands of vocabulary strings).
struct What {
  const char* label;
  std::string_view name = {};
  uint64_t index = std::numeric_limits<uint64_t>::max();
  std::string text() const {
    if (!name.empty()) return fmt::format("{} '{}'", label, printable(name));
    if (index != std::numeric_limits<uint64_t>::max()) return fmt::format("{} {}", label, index);
    return label;
  }
};

// Buffered sequential reader over a File with a hard end at the file size.
class Reader {
 public:
  Reader(const storage::Placement& file, uint64_t size) : file_(file), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  const std::string& path() const { return file_.locator(); }

  void read(void* dst, uint64_t n, const What& what) {
    if (n > remaining())
      fail("{}: unexpected end of file reading {} at offset {} (needs {} bytes, {} left)", path(),
           what.text(), pos_, n, remaining());
    auto* out = static_cast<char*>(dst);
    while (n > 0) {
      if (pos_ < buf_start_ || pos_ >= buf_start_ + buf_len_) {
        if (n >= kChunk) {  // large reads bypass the buffer
          file_.read_exact(out, n, pos_);
          pos_ += n;
          return;
        }
        refill();
      }
      uint64_t in_buf = buf_start_ + buf_len_ - pos_;
      uint64_t take = std::min(n, in_buf);
      std::memcpy(out, buf_.data() + (pos_ - buf_start_), take);
      out += take;
      pos_ += take;
      n -= take;
    }
  }

  template <typename T>
  T scalar(const What& what) {
    T v;
    read(&v, sizeof(T), what);
    return v;
  }

  // A GGUF string: u64 length then bytes. `max_len` bounds keys and names; every length is also
  // bounded by the bytes left in the file.
  std::string string(const What& what, uint64_t max_len = std::numeric_limits<uint64_t>::max()) {
    uint64_t len = scalar<uint64_t>(what);
    if (len > max_len)
      fail("{}: {} is {} bytes long, more than the limit of {}", path(), what.text(), len, max_len);
    if (len > remaining())
      fail("{}: unexpected end of file: {} claims {} bytes at offset {} but only {} are left",
           path(), what.text(), len, pos_, remaining());
    std::string s(len, '\0');
    read(s.data(), len, what);
    return s;
  }

 private:
  static constexpr uint64_t kChunk = 1 << 20;

  void refill() {
    // No bigger than the file: opening a small file (a vocab-only GGUF, a fuzz input) should
    // not allocate and clear a whole chunk.
    buf_.resize(std::min<uint64_t>(kChunk, size_));
    buf_start_ = pos_;
    buf_len_ = std::min<uint64_t>(kChunk, remaining());
    file_.read_exact(buf_.data(), buf_len_, buf_start_);
  }

  const storage::Placement& file_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::vector<char> buf_;
  uint64_t buf_start_ = 0;
  uint64_t buf_len_ = 0;
};

uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL: return 1;
    case ValueType::U16:
    case ValueType::I16: return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32: return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64: return 8;
    case ValueType::STRING: return 8;
    case ValueType::ARRAY: return 4 + 8;
  }
  return 1;
}

class FileParser {
 public:
  FileParser(const storage::Placement& file, uint64_t size) : in_(file, size), path_(file.locator()) {}

  ParsedFile run(uint32_t file_index) {
    ParsedFile out;
    out.path = path_;
    out.file_size = in_.remaining();
    read_header(out);
    uint64_t tensor_count = in_.scalar<uint64_t>({"tensor count"});
    uint64_t kv_count = in_.scalar<uint64_t>({"metadata count"});
    if (kv_count > in_.remaining() / kMinKvBytes)
      fail("{}: metadata count {} cannot fit in the {} bytes left in the file", path_, kv_count,
           in_.remaining());
    if (tensor_count > in_.remaining() / kMinTensorInfoBytes)
      fail("{}: tensor count {} cannot fit in the {} bytes left in the file", path_, tensor_count,
           in_.remaining());
    read_metadata(out, kv_count);
    out.alignment = alignment_of(out.metadata);
    read_tensor_infos(out, tensor_count, file_index);
    place_tensors(out);
    return out;
  }

 private:
  void read_header(ParsedFile& out) {
    char magic[4];
    in_.read(magic, 4, {"magic"});
    if (std::memcmp(magic, kMagic, 4) != 0)
      fail("{}: not a GGUF file (bad magic {:02x} {:02x} {:02x} {:02x}, expected \"GGUF\")", path_,
           uint8_t(magic[0]), uint8_t(magic[1]), uint8_t(magic[2]), uint8_t(magic[3]));
    out.version = in_.scalar<uint32_t>({"version"});
    if (out.version != 2 && out.version != 3) {
      bool swapped = __builtin_bswap32(out.version) == 2 || __builtin_bswap32(out.version) == 3;
      fail("{}: unsupported GGUF version {}{}", path_, out.version,
           swapped ? " (a big-endian file?)" : "; strata reads versions 2 and 3");
    }
  }

  void read_metadata(ParsedFile& out, uint64_t kv_count) {
    std::unordered_set<std::string> seen;
    out.metadata.reserve(kv_count);
    for (uint64_t i = 0; i < kv_count; ++i) {
      std::string key = in_.string({"key of metadata entry", {}, i}, kMaxKeyLength);
      if (key.empty()) fail("{}: metadata entry {} has an empty key", path_, i);
      if (!seen.insert(key).second) fail("{}: duplicate key '{}'", path_, printable(key));
      ValueType type = read_value_type(key);
      out.metadata.emplace_back(key, read_value(type, key, 0));
    }
  }

  ValueType read_value_type(const std::string& key) {
    uint32_t raw = in_.scalar<uint32_t>({"value type of key", key});
    if (raw > kMaxValueType)
      fail("{}: key '{}': unknown value type {}", path_, printable(key), raw);
    return static_cast<ValueType>(raw);
  }

  Value read_value(ValueType type, const std::string& key, int depth) {
    Value v;
    v.type = type;
    const What what{"value of key", key};
    switch (type) {
      case ValueType::U8: v.v = uint64_t{in_.scalar<uint8_t>(what)}; break;
      case ValueType::U16: v.v = uint64_t{in_.scalar<uint16_t>(what)}; break;
      case ValueType::U32: v.v = uint64_t{in_.scalar<uint32_t>(what)}; break;
      case ValueType::U64: v.v = in_.scalar<uint64_t>(what); break;
      case ValueType::I8: v.v = int64_t{in_.scalar<int8_t>(what)}; break;
      case ValueType::I16: v.v = int64_t{in_.scalar<int16_t>(what)}; break;
      case ValueType::I32: v.v = int64_t{in_.scalar<int32_t>(what)}; break;
      case ValueType::I64: v.v = in_.scalar<int64_t>(what); break;
      case ValueType::F32: v.v = double{in_.scalar<float>(what)}; break;
      case ValueType::F64: v.v = in_.scalar<double>(what); break;
      case ValueType::BOOL: {
        uint8_t b = in_.scalar<uint8_t>(what);
        if (b > 1) fail("{}: key '{}': bool value {} is neither 0 nor 1", path_, printable(key), b);
        v.v = b != 0;
        break;
      }
      case ValueType::STRING: v.v = in_.string(what); break;
      case ValueType::ARRAY: v.v = read_array(key, depth); break;
    }
    return v;
  }

  Array read_array(const std::string& key, int depth) {
    if (depth >= kMaxArrayDepth)
      fail("{}: key '{}': arrays nested deeper than {} levels", path_, printable(key),
           kMaxArrayDepth);
    Array a;
    uint32_t raw = in_.scalar<uint32_t>({"array type of key", key});
    if (raw > kMaxValueType)
      fail("{}: key '{}': unknown array element type {}", path_, printable(key), raw);
    a.elem_type = static_cast<ValueType>(raw);
    uint64_t count = in_.scalar<uint64_t>({"array length of key", key});
    if (count > in_.remaining() / min_encoded_size(a.elem_type))
      fail("{}: key '{}': array of {} {} elements cannot fit in the {} bytes left in the file",
           path_, printable(key), count, value_type_name(a.elem_type), in_.remaining());
    // Each element costs a Value in memory (~48 bytes) however small it is on disk, so the total
    // is capped as well as bounded by the file size.
    array_elements_ += count;
    if (array_elements_ > kMaxArrayElements)
      fail("{}: key '{}': metadata arrays hold more than {} elements in total", path_,
           printable(key), kMaxArrayElements);
    a.items.reserve(count);
    for (uint64_t i = 0; i < count; ++i) a.items.push_back(read_value(a.elem_type, key, depth + 1));
    return a;
  }

  uint64_t alignment_of(const std::vector<std::pair<std::string, Value>>& metadata) {
    for (const auto& [key, value] : metadata) {
      if (key != "general.alignment") continue;
      if (value.type != ValueType::U32)
        fail("{}: general.alignment has type {}, expected u32", path_, value_type_name(value.type));
      uint64_t a = std::get<uint64_t>(value.v);
      if (a == 0 || !std::has_single_bit(a) || a > kMaxAlignment)
        fail("{}: general.alignment {} is not a power of two between 1 and {}", path_, a,
             kMaxAlignment);
      return a;
    }
    return 32;
  }

  void read_tensor_infos(ParsedFile& out, uint64_t tensor_count, uint32_t file_index) {
    if (tensor_count > in_.remaining() / kMinTensorInfoBytes)
      fail("{}: tensor count {} cannot fit in the {} bytes left in the file", path_, tensor_count,
           in_.remaining());
    std::unordered_set<std::string> seen;
    out.tensors.reserve(tensor_count);
    for (uint64_t i = 0; i < tensor_count; ++i) {
      TensorInfo t;
      t.file_index = file_index;
      t.name = in_.string({"name of tensor", {}, i}, kMaxTensorNameLength);
      if (t.name.empty()) fail("{}: tensor {} has an empty name", path_, i);
      if (!seen.insert(t.name).second)
        fail("{}: duplicate tensor name '{}'", path_, printable(t.name));
      const What what{"info of tensor", t.name};
      uint32_t n_dims = in_.scalar<uint32_t>(what);
      if (n_dims < 1 || n_dims > 4)
        fail("{}: tensor '{}': n_dims {} is not between 1 and 4", path_, printable(t.name), n_dims);
      t.n_elements = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t dim = in_.scalar<uint64_t>(what);
        if (dim > uint64_t(std::numeric_limits<int64_t>::max()))
          fail("{}: tensor '{}': dimension {} is {}, which is negative or too large", path_, t.name,
               d, dim);
        // A zero would let the other dimensions multiply past 64 bits unnoticed (the element
        // count stays 0) and a weight with no elements is no weight (found by fuzz_gguf).
        if (dim == 0)
          fail("{}: tensor '{}': dimension {} is 0; every dimension must be at least 1", path_,
               printable(t.name), d);
        t.shape.push_back(int64_t(dim));
        if (__builtin_mul_overflow(t.n_elements, int64_t(dim), &t.n_elements))
          fail("{}: tensor '{}': element count overflows 64 bits", path_, printable(t.name));
      }
      uint32_t type_id = in_.scalar<uint32_t>(what);
      const compute::TypeInfo* info = compute::find_type(type_id);
      if (!info)
        fail("{}: tensor '{}': unknown ggml type id {}", path_, printable(t.name), type_id);
      if (!info->is_weight)
        fail("{}: tensor '{}': type {} cannot be a weight tensor type", path_, printable(t.name),
             info->name);
      t.type = info->type;
      if (t.shape[0] % info->block_elems != 0)
        fail("{}: tensor '{}': row length {} is not a multiple of block size {} for {}", path_,
             t.name, t.shape[0], info->block_elems, info->name);
      uint64_t row_bytes = 0;
      if (__builtin_mul_overflow(uint64_t(t.shape[0] / info->block_elems),
                                 uint64_t(info->block_bytes), &row_bytes) ||
          __builtin_mul_overflow(row_bytes, uint64_t(t.rows()), &t.nbytes))
        fail("{}: tensor '{}': byte size overflows 64 bits", path_, printable(t.name));
      t.offset = in_.scalar<uint64_t>(what);  // relative until place_tensors
      out.tensors.push_back(std::move(t));
    }
  }

  // Turns relative offsets into absolute ones and checks alignment, bounds and overlap.
  void place_tensors(ParsedFile& out) {
    uint64_t end_of_index = in_.pos();
    out.data_offset = (end_of_index + out.alignment - 1) / out.alignment * out.alignment;
    for (TensorInfo& t : out.tensors) {
      const uint64_t relative = t.offset;
      if (relative % out.alignment != 0)
        fail("{}: tensor '{}': offset {} is not a multiple of the alignment {}", path_,
             printable(t.name), relative, out.alignment);
      uint64_t end = 0;
      if (__builtin_add_overflow(relative, out.data_offset, &t.offset) ||
          __builtin_add_overflow(t.offset, t.nbytes, &end) || end > out.file_size)
        fail(
            "{}: tensor '{}': its {} bytes at data offset {} extend beyond the end of the file "
            "({} bytes, data section at {})",
            path_, printable(t.name), t.nbytes, relative, out.file_size, out.data_offset);
    }
    std::vector<const TensorInfo*> by_offset;
    for (const TensorInfo& t : out.tensors)
      if (t.nbytes > 0) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo& prev = *by_offset[i - 1];
      const TensorInfo& cur = *by_offset[i];
      if (prev.offset + prev.nbytes > cur.offset)
        fail("{}: tensors '{}' and '{}' overlap (bytes {}..{} and {}..{})", path_,
             printable(prev.name), printable(cur.name), prev.offset, prev.offset + prev.nbytes,
             cur.offset, cur.offset + cur.nbytes);
    }
  }

  Reader in_;
  uint64_t array_elements_ = 0;
  std::string path_;
};

}  // namespace

ParsedFile parse_file(const std::string& path, uint32_t file_index) {
  // A locator: a plain file, or a file placed over several drives (storage/placement.h).
  const storage::Placement file = storage::Placement::open(path);
  uint64_t size = file.size();
  if (size > uint64_t(std::numeric_limits<int64_t>::max()))
    fail("{}: file size {} is too large", path, size);
  FileParser parser(file, size);
  return parser.run(file_index);
}

}  // namespace strata::gguf::detail
