// Mutation fuzzing of the GGUF reader with real files: every mutant must either parse cleanly
// (with a self-consistent index) or fail with strata::Error. Any other exception fails the test;
// a crash or hang fails the run. Deterministic seeds, so a failure reproduces.
//
// Only the header/index region is mutated and written; the file is extended to its original size
// sparsely (ftruncate), since the reader never touches tensor data.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "models/gguf/gguf.h"
#include "storage/error.h"
#include "tests/models/gguf_bytes.h"
#include "tests/shared_data.h"

using strata::gguf::GGUFFile;
using strata::gguf::ValueType;

namespace {

struct Field {
  uint64_t pos;
  int size;  // 4 or 8
};

// Walks a VALID file's index and records where its count/length/type fields are, so mutations
// can hit them precisely. Independent of the reader under test on purpose.
class FieldScanner {
 public:
  explicit FieldScanner(const std::string& b) : b_(b) {}

  std::vector<Field> scan() {
    pos_ = 4;
    field(4);  // version
    uint64_t n_tensors = field(8);
    uint64_t n_kv = field(8);
    for (uint64_t i = 0; i < n_kv; ++i) {
      string();
      value(uint32_t(field(4)));
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      string();
      uint64_t n_dims = field(4);
      for (uint64_t d = 0; d < n_dims; ++d) field(8);
      field(4);  // type
      field(8);  // offset
    }
    return fields_;
  }
  uint64_t end_of_index() const { return pos_; }

 private:
  uint64_t field(int size) {
    uint64_t v = 0;
    std::memcpy(&v, b_.data() + pos_, size);
    fields_.push_back({pos_, size});
    pos_ += size;
    return v;
  }
  void string() { pos_ += field(8); }
  void value(uint32_t type) {
    switch (ValueType(type)) {
      case ValueType::STRING: string(); break;
      case ValueType::ARRAY: {
        uint32_t elem = uint32_t(field(4));
        uint64_t n = field(8);
        for (uint64_t i = 0; i < n; ++i) value(elem);
        break;
      }
      case ValueType::U8:
      case ValueType::I8:
      case ValueType::BOOL: pos_ += 1; break;
      case ValueType::U16:
      case ValueType::I16: pos_ += 2; break;
      case ValueType::U32:
      case ValueType::I32:
      case ValueType::F32: pos_ += 4; break;
      default: pos_ += 8; break;
    }
  }
  const std::string& b_;
  uint64_t pos_ = 0;
  std::vector<Field> fields_;
};

void write_variant(const std::string& path, const std::string& bytes, uint64_t final_size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size()));
  REQUIRE(::ftruncate(fd, off_t(final_size)) == 0);
  ::close(fd);
}

struct Outcome {
  int parsed = 0;
  int rejected = 0;
};

// Opens one mutant; anything but a clean, consistent parse or strata::Error fails the test.
void check_open(const std::string& path, Outcome& out, const std::string& what) {
  try {
    GGUFFile f = GGUFFile::open(path);
    for (const auto& t : f.tensors()) {
      if (t.offset < f.data_offset() || t.offset + t.nbytes > f.file_sizes()[0] ||
          t.shape.empty() || t.shape.size() > 4) {
        FAIL("inconsistent index accepted: ", what, ", tensor ", t.name);
      }
    }
    out.parsed++;
  } catch (const strata::Error& e) {
    if (std::string(e.what()).find(path) == std::string::npos)
      FAIL("error does not name the file: ", e.what(), " (", what, ")");
    out.rejected++;
  } catch (const std::exception& e) {
    FAIL("non-strata exception for ", what, ": ", e.what());
  }
}

void fuzz_file(const std::string& source, uint64_t seed, int iterations) {
  GGUFFile orig = GGUFFile::open(source);
  const uint64_t full_size = orig.file_sizes()[0];
  const uint64_t index_end = orig.data_offset();
  const std::string index = strata::test::read_bytes(source, 0, index_end);
  REQUIRE(index.size() == index_end);
  FieldScanner scanner(index);
  const std::vector<Field> fields = scanner.scan();
  REQUIRE(scanner.end_of_index() <= index_end);
  REQUIRE(fields.size() > 100);

  strata::test::TempDir dir("gguf-fuzz");
  const std::string path = (dir.path / "mutant.gguf").string();
  std::mt19937_64 rng(seed);
  auto below = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  const uint64_t huge_values[] = {~uint64_t(0),
                                  uint64_t(1) << 63,
                                  uint64_t(1) << 62,
                                  uint64_t(1) << 40,
                                  uint64_t(1) << 32,
                                  0xffffffffu,
                                  full_size,
                                  full_size - 1,
                                  0,
                                  1};
  Outcome out;
  for (int it = 0; it < iterations; ++it) {
    std::string b = index;
    uint64_t size = full_size;
    std::string what;
    switch (below(5)) {
      case 0: {  // bit flips, half of them in the first 64 bytes
        int n = 1 + int(below(8));
        for (int i = 0; i < n; ++i) {
          uint64_t p = below(2) ? below(std::min<uint64_t>(64, b.size())) : below(b.size());
          b[p] = char(b[p] ^ (1 << below(8)));
        }
        what = "bit flips";
        break;
      }
      case 1: {  // truncation inside the index, or inside the data
        uint64_t len =
            below(2) ? below(index_end + 1) : index_end + below(full_size - index_end + 1);
        if (len < b.size()) b.resize(len);
        size = len;
        what = fmt::format("truncated to {}", len);
        break;
      }
      case 2: {  // a u64 count/length/dimension/offset set huge (or to an edge value)
        const Field* f = nullptr;
        while (!f || f->size != 8) f = &fields[below(fields.size())];
        uint64_t v = below(4) == 0 ? rng() : huge_values[below(std::size(huge_values))];
        std::memcpy(b.data() + f->pos, &v, 8);
        what = fmt::format("u64 at {} set to {}", f->pos, v);
        break;
      }
      case 3: {  // a u32 type / n_dims / version field set to something else
        const Field* f = nullptr;
        while (!f || f->size != 4) f = &fields[below(fields.size())];
        uint32_t v = below(2) ? uint32_t(below(40)) : uint32_t(rng());
        std::memcpy(b.data() + f->pos, &v, 4);
        what = fmt::format("u32 at {} set to {}", f->pos, v);
        break;
      }
      default: {  // several field mutations at once
        for (int i = 0; i < 3; ++i) {
          const Field& f = fields[below(fields.size())];
          uint64_t v = rng() >> below(64);
          std::memcpy(b.data() + f.pos, &v, size_t(f.size));
        }
        what = "three random fields";
        break;
      }
    }
    write_variant(path, b, size);
    check_open(path, out, fmt::format("iteration {} ({})", it, what));
  }
  MESSAGE(source, ": ", out.parsed, " mutants parsed, ", out.rejected, " rejected");
  // Both outcomes must occur, or the mutations are not reaching the validation paths.
  CHECK(out.parsed > 0);
  CHECK(out.rejected > iterations / 2);
}

}  // namespace

TEST_CASE("fuzz: mutated stories260K-f32 index") {
  STRATA_REQUIRE_SHARED(shared);
  fuzz_file((shared / "models/stories260K-f32.gguf").string(), 20240601, 4000);
}

TEST_CASE("fuzz: mutated quantized MoE index (mixed tensor types)") {
  STRATA_REQUIRE_SHARED(shared);
  fuzz_file((shared / "models/stories260K-w256-moe8x2-q4_k_m.gguf").string(), 77, 1000);
}

TEST_CASE("fuzz: the unmodified index plus sparse data parses") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string source = (shared / "models/stories260K-f32.gguf").string();
  GGUFFile orig = GGUFFile::open(source);
  strata::test::TempDir dir("gguf-fuzz-base");
  const std::string path = (dir.path / "copy.gguf").string();
  write_variant(path, strata::test::read_bytes(source, 0, orig.data_offset()),
                orig.file_sizes()[0]);
  GGUFFile copy = GGUFFile::open(path);
  CHECK(copy.tensors().size() == orig.tensors().size());
  CHECK(copy.metadata().size() == orig.metadata().size());
}
