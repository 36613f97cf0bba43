// GGUFWriter: everything written reads back through the GGUF reader, bytes included.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <tbb/global_control.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "models/gguf/gguf.h"
#include "models/gguf/gguf_writer.h"
#include "storage/error.h"
#include "storage/file.h"

using namespace strata;
using compute::DType;
using gguf::Array;
using gguf::Value;
using gguf::ValueType;

namespace {

std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("strata_test_writer_" + name)).string();
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

uint8_t pattern(size_t tensor, uint64_t offset) {
  return uint8_t((tensor * 131 + offset * 7 + (offset >> 9)) & 0xff);
}

void fill_pattern(size_t tensor, uint64_t offset, std::span<uint8_t> dst) {
  for (size_t i = 0; i < dst.size(); ++i) dst[i] = pattern(tensor, offset + i);
}

Value arr(ValueType elem, std::vector<Value> items) { return {ValueType::ARRAY, Array{elem, std::move(items)}}; }

// A writer with one key of every type, arrays of each, nested arrays, and tensors of several
// types whose sizes force padding and span several staging buffers.
gguf::GGUFWriter sample_writer() {
  gguf::GGUFWriter w(32);
  w.add_string("general.architecture", "llama");
  w.add_u8("t.u8", 250);
  w.add_i8("t.i8", -120);
  w.add_u16("t.u16", 65000);
  w.add_i16("t.i16", -32000);
  w.add_u32("t.u32", 4000000000u);
  w.add_i32("t.i32", -2000000000);
  w.add_u64("t.u64", 18000000000000000000ull);
  w.add_i64("t.i64", -9000000000000000000ll);
  w.add_f32("t.f32", 0.15625f);
  w.add_f64("t.f64", -1.0 / 3.0);
  w.add_bool("t.bool", true);
  w.add_bool("t.bool_false", false);
  w.add_string("t.string", "h\xC3\xA9llo \xE2\x96\x81 world");
  w.add_string("t.empty_string", "");
  w.add_string_array("t.strings", {"a", "", "\xE2\x96\x81the", std::string(300, 'x')});
  w.add_f32_array("t.f32s", {1.5f, -2.25f, 0.0f});
  w.add_i32_array("t.i32s", {-1, 0, 2147483647});
  w.add_array("t.u8s", {ValueType::U8, {{ValueType::U8, uint64_t(0)}, {ValueType::U8, uint64_t(255)}}});
  w.add_array("t.i64s", {ValueType::I64, {{ValueType::I64, int64_t(-5)}}});
  w.add_array("t.f64s", {ValueType::F64, {{ValueType::F64, 2.5}}});
  w.add_array("t.bools", {ValueType::BOOL, {{ValueType::BOOL, true}, {ValueType::BOOL, false}}});
  w.add_array("t.empty", {ValueType::U32, {}});
  w.add_value("t.nested",
              arr(ValueType::ARRAY, {arr(ValueType::I32, {{ValueType::I32, int64_t(1)}, {ValueType::I32, int64_t(-2)}}),
                                     arr(ValueType::I32, {}),
                                     arr(ValueType::I32, {{ValueType::I32, int64_t(3)}})}));
  w.add_value("t.nested_strings",
              arr(ValueType::ARRAY, {arr(ValueType::STRING, {{ValueType::STRING, std::string("x")},
                                                             {ValueType::STRING, std::string("yz")}})}));
  w.add_tensor("odd.f32", {7}, DType::F32);                 // 28 bytes: padding follows
  w.add_tensor("q4.weight", {64, 3}, DType::Q4_0);          // 108 bytes
  w.add_tensor("big.q8", {32 * 64, 40}, DType::Q8_0);       // 87040 bytes: spans many buffers
  w.add_tensor("half.f16", {5, 3}, DType::F16);             // 30 bytes
  w.add_tensor("k.q4k", {256, 2, 3}, DType::Q4_K);          // 864 bytes, 3-D
  w.add_tensor("last.f32", {3}, DType::F32);
  return w;
}

}  // namespace

TEST_CASE("metadata of every type and tensor data round-trip through the reader") {
  const gguf::GGUFWriter w = sample_writer();
  const std::string path = tmp_path("roundtrip.gguf");
  gguf::WriteOptions opts;
  opts.buffer_bytes = 8192;  // header and tensors straddle buffer boundaries
  opts.piece_bytes = 4096;
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  opts.progress = [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); };
  w.write(path, fill_pattern, opts);

  const auto bytes = file_bytes(path);
  REQUIRE(bytes.size() == w.file_bytes());
  REQUIRE(!progress.empty());
  CHECK(progress.back().first == bytes.size());
  CHECK(progress.back().second == bytes.size());
  for (size_t i = 1; i < progress.size(); ++i) CHECK(progress[i].first > progress[i - 1].first);

  const auto f = gguf::GGUFFile::open(path);
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.data_offset() == w.data_offset());
  CHECK(f.data_offset() % 32 == 0);
  CHECK(f.architecture() == "llama");
  CHECK(f.get_uint("t.u8") == 250u);
  CHECK(f.find("t.u8")->type == ValueType::U8);
  CHECK(f.get_int("t.i8") == -120);
  CHECK(f.find("t.i8")->type == ValueType::I8);
  CHECK(f.get_uint("t.u16") == 65000u);
  CHECK(f.get_int("t.i16") == -32000);
  CHECK(f.get_uint("t.u32") == 4000000000u);
  CHECK(f.get_int("t.i32") == -2000000000);
  CHECK(f.get_uint("t.u64") == 18000000000000000000ull);
  CHECK(f.find("t.u64")->type == ValueType::U64);
  CHECK(f.get_int("t.i64") == -9000000000000000000ll);
  CHECK(f.get_float("t.f32") == 0.15625);
  CHECK(f.find("t.f32")->type == ValueType::F32);
  CHECK(f.get_float("t.f64") == -1.0 / 3.0);
  CHECK(f.find("t.f64")->type == ValueType::F64);
  CHECK(f.get_bool("t.bool") == true);
  CHECK(f.get_bool("t.bool_false") == false);
  CHECK(f.get_string("t.string") == "h\xC3\xA9llo \xE2\x96\x81 world");
  CHECK(f.get_string("t.empty_string") == "");
  CHECK(f.get_uint("general.alignment") == 32u);
  CHECK(f.find("general.alignment")->type == ValueType::U32);

  const Array* strings = f.get_array("t.strings");
  REQUIRE(strings);
  CHECK(strings->elem_type == ValueType::STRING);
  REQUIRE(strings->items.size() == 4);
  CHECK(std::get<std::string>(strings->items[2].v) == "\xE2\x96\x81the");
  CHECK(std::get<std::string>(strings->items[3].v) == std::string(300, 'x'));
  CHECK(std::get<std::string>(strings->items[1].v).empty());
  const Array* f32s = f.get_array("t.f32s");
  REQUIRE(f32s);
  REQUIRE(f32s->items.size() == 3);
  CHECK(std::get<double>(f32s->items[1].v) == -2.25);
  const Array* i32s = f.get_array("t.i32s");
  REQUIRE(i32s);
  CHECK(i32s->elem_type == ValueType::I32);
  CHECK(std::get<int64_t>(i32s->items[0].v) == -1);
  CHECK(std::get<int64_t>(i32s->items[2].v) == 2147483647);
  const Array* u8s = f.get_array("t.u8s");
  REQUIRE(u8s);
  CHECK(std::get<uint64_t>(u8s->items[1].v) == 255u);
  CHECK(std::get<int64_t>(f.get_array("t.i64s")->items.at(0).v) == -5);
  CHECK(std::get<double>(f.get_array("t.f64s")->items.at(0).v) == 2.5);
  CHECK(std::get<bool>(f.get_array("t.bools")->items.at(0).v) == true);
  CHECK(std::get<bool>(f.get_array("t.bools")->items.at(1).v) == false);
  REQUIRE(f.get_array("t.empty"));
  CHECK(f.get_array("t.empty")->elem_type == ValueType::U32);
  CHECK(f.get_array("t.empty")->items.empty());

  const Array* nested = f.get_array("t.nested");
  REQUIRE(nested);
  CHECK(nested->elem_type == ValueType::ARRAY);
  REQUIRE(nested->items.size() == 3);
  const Array& n0 = std::get<Array>(nested->items[0].v);
  CHECK(n0.elem_type == ValueType::I32);
  REQUIRE(n0.items.size() == 2);
  CHECK(std::get<int64_t>(n0.items[1].v) == -2);
  CHECK(std::get<Array>(nested->items[1].v).items.empty());
  CHECK(std::get<int64_t>(std::get<Array>(nested->items[2].v).items.at(0).v) == 3);
  const Array& ns = std::get<Array>(f.get_array("t.nested_strings")->items.at(0).v);
  CHECK(std::get<std::string>(ns.items.at(1).v) == "yz");

  // Keys come back in the order written, general.alignment appended after the caller's keys.
  REQUIRE(f.metadata().size() == w.metadata().size() + 1);
  for (size_t i = 0; i < w.metadata().size(); ++i) CHECK(f.metadata()[i].first == w.metadata()[i].first);
  CHECK(f.metadata().back().first == "general.alignment");

  REQUIRE(f.tensors().size() == w.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& got = f.tensors()[i];
    const auto& want = w.tensors()[i];
    CAPTURE(want.name);
    CHECK(got.name == want.name);
    CHECK(got.shape == want.shape);
    CHECK(got.type == want.type);
    CHECK(got.nbytes == want.nbytes);
    CHECK(got.offset % 32 == 0);
    CHECK(got.offset == f.data_offset() + want.offset);
    bool equal = true;
    for (uint64_t b = 0; b < got.nbytes; ++b) equal = equal && bytes[got.offset + b] == pattern(i, b);
    CHECK(equal);
    // Padding up to the next tensor (or the end) is zero.
    const uint64_t next = i + 1 < f.tensors().size() ? f.tensors()[i + 1].offset : bytes.size();
    for (uint64_t b = got.offset + got.nbytes; b < next; ++b) CHECK(bytes[b] == 0);
  }
  CHECK(f.tensors()[2].nbytes == 87040);
  std::filesystem::remove(path);
}

TEST_CASE("the file is the same whatever the buffering, threading or I/O mode") {
  const gguf::GGUFWriter w = sample_writer();
  const std::string a = tmp_path("mode_a.gguf"), b = tmp_path("mode_b.gguf"), c = tmp_path("mode_c.gguf");
  gguf::WriteOptions serial;
  serial.parallel_fill = false;
  serial.direct_io = false;
  serial.buffer_bytes = 1;  // rounded up to one 4 KiB page
  w.write(a, fill_pattern, serial);
  gguf::WriteOptions parallel;
  parallel.piece_bytes = 4096;
  w.write(b, fill_pattern, parallel);
  {
    tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
    w.write(c, fill_pattern);
  }
  const auto ba = file_bytes(a);
  CHECK(ba.size() == w.file_bytes());
  CHECK(ba == file_bytes(b));
  CHECK(ba == file_bytes(c));
  for (const auto& p : {a, b, c}) std::filesystem::remove(p);
}

TEST_CASE("writer errors name the key, tensor or path") {
  gguf::GGUFWriter w;
  w.add_u32("a.key", 1);
  CHECK_THROWS_WITH_AS(w.add_u32("a.key", 2), doctest::Contains("a.key"), strata::Error);
  CHECK_THROWS_WITH_AS(w.add_array("bad.array", {ValueType::U32, {{ValueType::STRING, std::string("x")}}}),
                       doctest::Contains("bad.array"), strata::Error);
  CHECK_THROWS_WITH_AS(w.add_value("bad.u8", {ValueType::U8, uint64_t(256)}), doctest::Contains("bad.u8"),
                       strata::Error);
  CHECK_THROWS_WITH_AS(w.add_value("bad.str", {ValueType::STRING, uint64_t(1)}), doctest::Contains("bad.str"),
                       strata::Error);
  CHECK_THROWS_WITH_AS(w.add_u32("general.alignment", 64), doctest::Contains("general.alignment"), strata::Error);

  w.add_tensor("t", {32}, DType::Q4_0);
  CHECK_THROWS_WITH_AS(w.add_tensor("t", {32}, DType::F32), doctest::Contains("'t'"), strata::Error);
  try {
    w.add_tensor("blk.0.ffn_down.weight", {300, 4}, DType::Q4_K);
    FAIL("expected an error");
  } catch (const strata::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("blk.0.ffn_down.weight") != std::string::npos);
    CHECK(msg.find("q4_K") != std::string::npos);
    CHECK(msg.find("256") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(w.add_tensor("neg", {4, 0}, DType::F32), doctest::Contains("neg"), strata::Error);
  CHECK_THROWS_WITH_AS(w.add_tensor("five", {1, 1, 1, 1, 1}, DType::F32), doctest::Contains("five"),
                       strata::Error);

  const std::string bad_dir = "/nonexistent-strata-dir/out.gguf";
  CHECK_THROWS_WITH_AS(w.write(bad_dir, fill_pattern), doctest::Contains(bad_dir.c_str()), strata::Error);

  // A failing fill propagates and leaves no partial file behind.
  const std::string path = tmp_path("failing.gguf");
  auto failing = [](size_t, uint64_t, std::span<uint8_t>) { throw std::runtime_error("fill broke"); };
  CHECK_THROWS_WITH_AS(w.write(path, failing), "fill broke", std::runtime_error);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("a non-regular output (a FIFO) is streamed to and never removed") {
  const gguf::GGUFWriter w = sample_writer();
  const std::string path = tmp_path("fifo");
  std::filesystem::remove(path);
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  auto drain = [&](uint64_t& count) {
    return std::thread([&path, &count] {
      int fd = ::open(path.c_str(), O_RDONLY);
      char buf[65536];
      ssize_t n;
      while (fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0) count += uint64_t(n);
      if (fd >= 0) ::close(fd);
    });
  };
  auto is_fifo = [&] {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
  };
  uint64_t got = 0;
  std::thread reader = drain(got);
  w.write(path, fill_pattern);
  reader.join();
  CHECK(got == w.file_bytes());
  CHECK(is_fifo());

  uint64_t ignored = 0;
  reader = drain(ignored);
  auto failing = [](size_t, uint64_t, std::span<uint8_t>) { throw std::runtime_error("fill broke"); };
  CHECK_THROWS_AS(w.write(path, failing), std::runtime_error);
  reader.join();
  CHECK(is_fifo());
  std::filesystem::remove(path);
}
