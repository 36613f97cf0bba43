// GGUFWriter: metadata checks, header serialisation and the double-buffered data pipeline.
#include "models/gguf/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <limits>
#include <mutex>

#include <tbb/parallel_for.h>

#include "storage/error.h"

namespace strata::gguf {

namespace {

constexpr uint32_t kVersion = 3;
constexpr int kMaxDims = 4;       // ggml tensors have at most four dimensions
constexpr size_t kIoAlign = 4096;  // O_DIRECT buffer, offset and length granularity

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

bool is_unsigned(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64;
}
bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

int bits_of(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: return 8;
    case ValueType::U16: case ValueType::I16: return 16;
    case ValueType::U32: case ValueType::I32: return 32;
    default: return 64;
  }
}

void check_value(const std::string& key, const Value& v, int depth) {
  if (depth > 8) fail("metadata key '{}': arrays nested deeper than 8 levels", key);
  auto mismatch = [&]() {
    fail("metadata key '{}': value does not hold a {}", key, value_type_name(v.type));
  };
  if (is_unsigned(v.type)) {
    uint64_t u;
    if (const auto* p = std::get_if<uint64_t>(&v.v)) u = *p;
    else if (const auto* q = std::get_if<int64_t>(&v.v); q && *q >= 0) u = uint64_t(*q);
    else mismatch();
    const int b = bits_of(v.type);
    if (b < 64 && u >> b) fail("metadata key '{}': {} does not fit a {}", key, u, value_type_name(v.type));
  } else if (is_signed(v.type)) {
    int64_t i;
    if (const auto* p = std::get_if<int64_t>(&v.v)) i = *p;
    else if (const auto* q = std::get_if<uint64_t>(&v.v);
             q && *q <= uint64_t(std::numeric_limits<int64_t>::max()))
      i = int64_t(*q);
    else mismatch();
    const int b = bits_of(v.type);
    if (b < 64 && (i < -(int64_t(1) << (b - 1)) || i >= (int64_t(1) << (b - 1))))
      fail("metadata key '{}': {} does not fit a {}", key, i, value_type_name(v.type));
  } else if (v.type == ValueType::F32 || v.type == ValueType::F64) {
    if (!std::holds_alternative<double>(v.v)) mismatch();
  } else if (v.type == ValueType::BOOL) {
    if (!std::holds_alternative<bool>(v.v)) mismatch();
  } else if (v.type == ValueType::STRING) {
    if (!std::holds_alternative<std::string>(v.v)) mismatch();
  } else if (v.type == ValueType::ARRAY) {
    const auto* a = std::get_if<Array>(&v.v);
    if (!a) mismatch();
    for (const Value& item : a->items) {
      if (item.type != a->elem_type)
        fail("metadata key '{}': array of {} holds a {}", key, value_type_name(a->elem_type),
             value_type_name(item.type));
      check_value(key, item, depth + 1);
    }
  } else {
    fail("metadata key '{}': unknown value type {}", key, static_cast<uint32_t>(v.type));
  }
}

class ByteSink {
 public:
  explicit ByteSink(std::vector<uint8_t>& out) : out_(out) {}
  template <typename T>
  void pod(T v) {
    bytes(&v, sizeof(T));
  }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void bytes(const void* p, size_t n) {
    const size_t at = out_.size();
    out_.resize(at + n);
    if (n) std::memcpy(out_.data() + at, p, n);
  }
  void value(const Value& v) {
    auto u = [&] { return std::holds_alternative<uint64_t>(v.v) ? std::get<uint64_t>(v.v)
                                                                : uint64_t(std::get<int64_t>(v.v)); };
    switch (v.type) {
      case ValueType::U8: case ValueType::I8: pod<uint8_t>(uint8_t(u())); break;
      case ValueType::U16: case ValueType::I16: pod<uint16_t>(uint16_t(u())); break;
      case ValueType::U32: case ValueType::I32: pod<uint32_t>(uint32_t(u())); break;
      case ValueType::U64: case ValueType::I64: pod<uint64_t>(u()); break;
      case ValueType::F32: pod<float>(float(std::get<double>(v.v))); break;
      case ValueType::F64: pod<double>(std::get<double>(v.v)); break;
      case ValueType::BOOL: pod<uint8_t>(std::get<bool>(v.v) ? 1 : 0); break;
      case ValueType::STRING: str(std::get<std::string>(v.v)); break;
      case ValueType::ARRAY: {
        const Array& a = std::get<Array>(v.v);
        pod<uint32_t>(static_cast<uint32_t>(a.elem_type));
        pod<uint64_t>(a.items.size());
        for (const Value& item : a.items) value(item);
        break;
      }
    }
  }

 private:
  std::vector<uint8_t>& out_;
};

// The output file: O_DIRECT when possible. A regular file is removed again unless the write
// completed; anything else (a device such as /dev/null, a pipe) is written to and left alone.
class OutputFile {
 public:
  OutputFile(std::string path, bool direct) : path_(std::move(path)) {
    const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    // An existing non-regular file (a FIFO, a device) is opened once, buffered: opening a FIFO
    // blocks until a reader arrives, and a failed O_DIRECT attempt after that rendezvous would
    // hand the reader an end of file and leave the second open waiting forever.
    struct stat pre {};
    if (::stat(path_.c_str(), &pre) == 0 && !S_ISREG(pre.st_mode)) direct = false;
    if (direct) {
      fd_ = ::open(path_.c_str(), flags | O_DIRECT, 0644);
      direct_ = fd_ >= 0;
    }
    if (fd_ < 0) fd_ = ::open(path_.c_str(), flags, 0644);
    if (fd_ < 0) fail("{}: cannot create: {}", path_, std::strerror(errno));
    struct stat st {};
    regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    if (!regular_ && direct_) set_buffered();
  }
  ~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && regular_) ::unlink(path_.c_str());
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  bool direct() const { return direct_; }

  void write_at(const uint8_t* p, size_t n, uint64_t offset) {
    size_t done = 0;
    while (done < n) {
      ssize_t w = regular_ ? ::pwrite(fd_, p + done, n - done, static_cast<off_t>(offset + done))
                           : ::write(fd_, p + done, n - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EINVAL && direct_) {  // the file system refused direct I/O after all
          set_buffered();
          continue;
        }
        fail("{}: write of {} bytes at offset {} failed: {}", path_, n, offset + done,
             std::strerror(errno));
      }
      if (w == 0) fail("{}: write at offset {} made no progress", path_, offset + done);
      done += static_cast<size_t>(w);
    }
  }

  // `size` is the intended length; direct I/O may have written a padded last block.
  void finish(uint64_t size, uint64_t written) {
    if (regular_ && written != size && ::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      fail("{}: cannot set the file size to {}: {}", path_, size, std::strerror(errno));
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) fail("{}: close failed: {}", path_, std::strerror(errno));
    committed_ = true;
  }

 private:
  void set_buffered() {
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_DIRECT);
    direct_ = false;
  }

  std::string path_;
  int fd_ = -1;
  bool direct_ = false;
  bool regular_ = false;
  bool committed_ = false;
};

struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : data(static_cast<uint8_t*>(std::aligned_alloc(kIoAlign, n))) {
    if (!data) fail("cannot allocate a {} byte write buffer", n);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint8_t* data;
};

struct FillJob {
  size_t tensor;
  uint64_t offset;
  uint8_t* dst;
  size_t n;
};

}  // namespace

GGUFWriter::GGUFWriter(uint32_t alignment) : alignment_(alignment) {
  assert(alignment > 0 && (alignment & (alignment - 1)) == 0);
}

void GGUFWriter::add_checked(const std::string& key, Value v) {
  if (key.empty()) fail("metadata key must not be empty");
  if (!keys_.insert(key).second) fail("metadata key '{}' added twice", key);
  check_value(key, v, 0);
  if (key == "general.alignment") {
    if (v.type != ValueType::U32 || std::get<uint64_t>(v.v) != alignment_)
      fail("metadata key 'general.alignment' must be the u32 {} the writer was made with", alignment_);
    alignment_key_present_ = true;
  }
  metadata_.emplace_back(key, std::move(v));
}

void GGUFWriter::add_u8(const std::string& k, uint8_t v) { add_checked(k, {ValueType::U8, uint64_t(v)}); }
void GGUFWriter::add_i8(const std::string& k, int8_t v) { add_checked(k, {ValueType::I8, int64_t(v)}); }
void GGUFWriter::add_u16(const std::string& k, uint16_t v) { add_checked(k, {ValueType::U16, uint64_t(v)}); }
void GGUFWriter::add_i16(const std::string& k, int16_t v) { add_checked(k, {ValueType::I16, int64_t(v)}); }
void GGUFWriter::add_u32(const std::string& k, uint32_t v) { add_checked(k, {ValueType::U32, uint64_t(v)}); }
void GGUFWriter::add_i32(const std::string& k, int32_t v) { add_checked(k, {ValueType::I32, int64_t(v)}); }
void GGUFWriter::add_u64(const std::string& k, uint64_t v) { add_checked(k, {ValueType::U64, v}); }
void GGUFWriter::add_i64(const std::string& k, int64_t v) { add_checked(k, {ValueType::I64, v}); }
void GGUFWriter::add_f32(const std::string& k, float v) { add_checked(k, {ValueType::F32, double(v)}); }
void GGUFWriter::add_f64(const std::string& k, double v) { add_checked(k, {ValueType::F64, v}); }
void GGUFWriter::add_bool(const std::string& k, bool v) { add_checked(k, {ValueType::BOOL, v}); }
void GGUFWriter::add_string(const std::string& k, std::string v) {
  add_checked(k, {ValueType::STRING, std::move(v)});
}
void GGUFWriter::add_array(const std::string& k, Array v) { add_checked(k, {ValueType::ARRAY, std::move(v)}); }
void GGUFWriter::add_value(const std::string& k, Value v) { add_checked(k, std::move(v)); }

void GGUFWriter::add_string_array(const std::string& k, const std::vector<std::string>& v) {
  Array a{ValueType::STRING, {}};
  a.items.reserve(v.size());
  for (const auto& s : v) a.items.push_back({ValueType::STRING, s});
  add_array(k, std::move(a));
}

void GGUFWriter::add_f32_array(const std::string& k, const std::vector<float>& v) {
  Array a{ValueType::F32, {}};
  a.items.reserve(v.size());
  for (float f : v) a.items.push_back({ValueType::F32, double(f)});
  add_array(k, std::move(a));
}

void GGUFWriter::add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  Array a{ValueType::I32, {}};
  a.items.reserve(v.size());
  for (int32_t i : v) a.items.push_back({ValueType::I32, int64_t(i)});
  add_array(k, std::move(a));
}

size_t GGUFWriter::add_tensor(const std::string& name, std::vector<int64_t> shape,
                              compute::DType type) {
  if (name.empty()) fail("tensor name must not be empty");
  if (shape.empty() || shape.size() > kMaxDims)
    fail("tensor '{}': {} dimensions, expected 1 to {}", name, shape.size(), kMaxDims);
  int64_t elements = 1;
  for (int64_t d : shape) {
    if (d <= 0) fail("tensor '{}': dimension {} is not positive", name, d);
    if (elements > std::numeric_limits<int64_t>::max() / d) fail("tensor '{}': too many elements", name);
    elements *= d;
  }
  const compute::TypeInfo* info = compute::find_type(static_cast<uint32_t>(type));
  if (!info) fail("tensor '{}': unknown type id {}", name, static_cast<uint32_t>(type));
  if (shape[0] % info->block_elems != 0)
    fail("tensor '{}': row length {} is not a multiple of {}, the {} block size", name, shape[0],
         info->block_elems, info->name);
  if (tensor_names_.count(name)) fail("tensor '{}' added twice", name);
  tensor_names_.insert(name);

  WriterTensor t;
  t.name = name;
  t.shape = std::move(shape);
  t.type = type;
  t.nbytes = compute::row_bytes(type, t.shape[0]) * uint64_t(elements / t.shape[0]);
  t.offset = data_bytes_;
  data_bytes_ = round_up(t.offset + t.nbytes, alignment_);
  tensors_.push_back(std::move(t));
  return tensors_.size() - 1;
}

std::vector<uint8_t> GGUFWriter::serialize_header() const {
  std::vector<uint8_t> out;
  ByteSink s(out);
  s.pod<uint32_t>(0x46554747u);  // "GGUF" read as a little-endian u32
  s.pod<uint32_t>(kVersion);
  s.pod<uint64_t>(tensors_.size());
  s.pod<uint64_t>(metadata_.size() + (alignment_key_present_ ? 0 : 1));
  for (const auto& [key, value] : metadata_) {
    s.str(key);
    s.pod<uint32_t>(static_cast<uint32_t>(value.type));
    s.value(value);
  }
  if (!alignment_key_present_) {
    s.str("general.alignment");
    s.pod<uint32_t>(static_cast<uint32_t>(ValueType::U32));
    s.pod<uint32_t>(alignment_);
  }
  for (const WriterTensor& t : tensors_) {
    s.str(t.name);
    s.pod<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) s.pod<uint64_t>(uint64_t(d));
    s.pod<uint32_t>(static_cast<uint32_t>(t.type));
    s.pod<uint64_t>(t.offset);
  }
  out.resize(round_up(out.size(), alignment_), 0);
  return out;
}

uint64_t GGUFWriter::data_offset() const { return serialize_header().size(); }
uint64_t GGUFWriter::data_bytes() const { return data_bytes_; }

void GGUFWriter::write(const std::string& path, const FillFn& fill, const WriteOptions& opts) const {
  const std::vector<uint8_t> header = serialize_header();
  const uint64_t data_start = header.size();
  const uint64_t total = data_start + data_bytes_;
  const size_t buf_bytes = round_up(std::max<size_t>(opts.buffer_bytes, kIoAlign), kIoAlign);
  const size_t piece = std::max<size_t>(opts.piece_bytes, 4096);

  OutputFile out(path, opts.direct_io);
  AlignedBuffer bufs[2] = {AlignedBuffer(buf_bytes), AlignedBuffer(buf_bytes)};

  // Fills buf with file bytes [begin, end): header, zero padding and tensor pieces.
  size_t first_tensor = 0;  // chunks advance monotonically, so the scan resumes here
  std::vector<FillJob> jobs;
  auto stage = [&](uint8_t* buf, uint64_t begin, uint64_t end) {
    jobs.clear();
    uint64_t cursor = begin;  // everything before this is already set
    if (cursor < data_start) {
      const uint64_t n = std::min(end, data_start) - cursor;
      std::memcpy(buf, header.data() + cursor, n);
      cursor += n;
    }
    while (first_tensor < tensors_.size() &&
           data_start + tensors_[first_tensor].offset + tensors_[first_tensor].nbytes <= begin)
      ++first_tensor;
    for (size_t i = first_tensor; i < tensors_.size() && cursor < end; ++i) {
      const uint64_t t_begin = data_start + tensors_[i].offset;
      const uint64_t t_end = t_begin + tensors_[i].nbytes;
      if (t_begin >= end) break;
      if (cursor < t_begin) {
        std::memset(buf + (cursor - begin), 0, t_begin - cursor);
        cursor = t_begin;
      }
      const uint64_t stop = std::min(t_end, end);
      for (uint64_t p = cursor; p < stop; p += piece) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(piece, stop - p));
        jobs.push_back({i, p - t_begin, buf + (p - begin), n});
      }
      cursor = std::max(cursor, stop);
    }
    if (cursor < end) std::memset(buf + (cursor - begin), 0, end - cursor);

    std::exception_ptr error;
    std::once_flag error_once;
    auto run = [&](const FillJob& j) {
      try {
        fill(j.tensor, j.offset, std::span<uint8_t>(j.dst, j.n));
      } catch (...) {
        std::call_once(error_once, [&] { error = std::current_exception(); });
      }
    };
    if (opts.parallel_fill && jobs.size() > 1) {
      tbb::parallel_for(size_t(0), jobs.size(), [&](size_t k) { run(jobs[k]); });
    } else {
      for (const FillJob& j : jobs) run(j);
    }
    if (error) std::rethrow_exception(error);
  };

  const uint64_t n_chunks = (total + buf_bytes - 1) / buf_bytes;
  uint64_t written = 0;
  auto chunk_len = [&](uint64_t k) { return std::min<uint64_t>(buf_bytes, total - k * buf_bytes); };
  if (n_chunks > 0) stage(bufs[0].data, 0, chunk_len(0));
  for (uint64_t k = 0; k < n_chunks; ++k) {
    uint8_t* cur = bufs[k % 2].data;
    size_t len = chunk_len(k);
    if (out.direct() && len % kIoAlign != 0) {  // the last chunk: pad, the file is cut back later
      const size_t padded = round_up(len, kIoAlign);
      std::memset(cur + len, 0, padded - len);
      len = padded;
    }
    auto pending = std::async(std::launch::async, [&out, cur, len, k, buf_bytes] {
      out.write_at(cur, len, k * buf_bytes);
    });
    if (k + 1 < n_chunks) stage(bufs[(k + 1) % 2].data, (k + 1) * buf_bytes, (k + 1) * buf_bytes + chunk_len(k + 1));
    pending.get();
    written += len;
    if (opts.progress) opts.progress(std::min<uint64_t>((k + 1) * buf_bytes, total), total);
  }
  out.finish(total, written);
}

}  // namespace strata::gguf
