// GGUF reader: facts of the real reference models, one hand-built file per kind of malformed
// input (each must give strata::Error naming the file and the problem), and split models.
#include <doctest/doctest.h>

#include <map>

#include "models/gguf/gguf.h"
#include "storage/error.h"
#include "tests/models/gguf_bytes.h"
#include "tests/shared_data.h"

using strata::gguf::GGUFFile;
using strata::gguf::ValueType;
using strata::test::GgufBytes;
using strata::test::TempDir;

namespace {

constexpr uint32_t kF32 = 0, kQ4_0 = 2, kQ8_0 = 8, kQ8_K = 15;

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type = kF32;
  uint64_t offset = 0;
};

// A whole file: header, the given kv bytes, tensor infos, padding, then `data_bytes` zeros.
std::string make_file(uint64_t n_kv, const GgufBytes& kvs, const std::vector<TensorSpec>& tensors,
                      size_t data_bytes, size_t alignment = 32, uint32_t version = 3) {
  GgufBytes f;
  f.header(tensors.size(), n_kv, version);
  f.b += kvs.b;
  for (const auto& t : tensors) f.tensor(t.name, t.dims, t.type, t.offset);
  f.pad_to(alignment).zeros(data_bytes);
  return f.b;
}

GgufBytes arch_kv() { return GgufBytes().kv_str("general.architecture", "test"); }

// A small valid file: f32 [32 x 2] at 0 (256 bytes) and q8_0 [64] at 256 (68 bytes).
std::vector<TensorSpec> two_tensors() { return {{"a", {32, 2}, kF32, 0}, {"b", {64}, kQ8_0, 256}}; }

void expect_error(const std::string& path, const std::string& phrase) {
  try {
    GGUFFile::open(path);
    FAIL("opened ", path, " but expected an error containing '", phrase, "'");
  } catch (const strata::Error& e) {
    std::string msg = e.what();
    CHECK_MESSAGE(msg.find(path) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find(phrase) != std::string::npos, "wanted '", phrase, "' in: ", msg);
  }
}

std::map<std::string, int> type_counts(const GGUFFile& f) {
  std::map<std::string, int> m;
  for (const auto& t : f.tensors()) m[strata::compute::type_name(t.type)]++;
  return m;
}

int64_t total_elements(const GGUFFile& f) {
  int64_t n = 0;
  for (const auto& t : f.tensors()) n += t.n_elements;
  return n;
}

}  // namespace

TEST_CASE("stories260K-f32: metadata and tensor index") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string path = (shared / "models/stories260K-f32.gguf").string();
  GGUFFile f = GGUFFile::open(path);
  CHECK(f.version() == 3);
  CHECK(f.paths() == std::vector<std::string>{path});
  CHECK(f.file_sizes().at(0) == 1185376);
  CHECK(f.architecture() == "llama");
  CHECK(f.require_uint("llama.block_count") == 5);
  CHECK(f.require_uint("llama.embedding_length") == 64);
  CHECK(f.require_uint("llama.feed_forward_length") == 172);
  CHECK(f.get_uint("llama.attention.head_count") == 8u);
  CHECK(f.get_uint("llama.attention.head_count_kv") == 4u);
  CHECK(f.require_float("llama.attention.layer_norm_rms_epsilon") == doctest::Approx(1e-5));
  CHECK(f.get_float("llama.rope.freq_base").value_or(10000.0) == doctest::Approx(10000.0));
  CHECK(f.get_string("tokenizer.ggml.model") == "llama");
  CHECK(f.get_uint("tokenizer.ggml.bos_token_id") == 1u);
  CHECK(f.get_uint("tokenizer.ggml.eos_token_id") == 2u);
  const auto* tokens = f.get_array("tokenizer.ggml.tokens");
  REQUIRE(tokens != nullptr);
  CHECK(tokens->elem_type == ValueType::STRING);
  REQUIRE(tokens->items.size() == 512);
  CHECK(std::get<std::string>(tokens->items[0].v) == "<unk>");
  CHECK(f.metadata().front().first == "tokenizer.ggml.tokens");  // file order kept

  REQUIRE(f.tensors().size() == 48);
  CHECK(type_counts(f) == std::map<std::string, int>{{"f32", 48}});
  CHECK(total_elements(f) == 292800);
  const auto& emb = f.require_tensor("token_embd.weight", "test");
  CHECK(emb.shape == std::vector<int64_t>{64, 512});
  CHECK(emb.nbytes == 64 * 512 * 4);
  CHECK(emb.rows() == 512);
  CHECK(f.find_tensor("blk.4.ffn_down.weight") != nullptr);
  CHECK(f.find_tensor("blk.5.ffn_down.weight") == nullptr);
  for (const auto& t : f.tensors()) {
    CHECK(t.file_index == 0);
    CHECK(t.offset >= f.data_offset());
    CHECK((t.offset - f.data_offset()) % f.alignment() == 0);
    CHECK(t.offset + t.nbytes <= f.file_sizes()[0]);
  }
  CHECK(f.data_offset() % f.alignment() == 0);
}

TEST_CASE("typed getters convert where the value fits and name the key otherwise") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string path = (shared / "models/stories260K-f32.gguf").string();
  GGUFFile f = GGUFFile::open(path);
  CHECK(f.get_int("llama.block_count") == 5);
  CHECK(f.get_float("llama.block_count") == doctest::Approx(5.0));
  CHECK_FALSE(f.get_uint("no.such.key").has_value());
  CHECK(f.get_array("no.such.key") == nullptr);
  CHECK_THROWS_WITH_AS(f.get_uint("general.architecture"),
                       doctest::Contains("key 'general.architecture' has type string"),
                       strata::Error);
  CHECK_THROWS_WITH_AS(f.get_string("llama.block_count"), doctest::Contains("expected a string"),
                       strata::Error);
  CHECK_THROWS_WITH_AS(f.require_uint("no.such.key"),
                       doctest::Contains("required key 'no.such.key' is missing"), strata::Error);
  CHECK_THROWS_WITH_AS(f.require_tensor("nope", "the test"),
                       doctest::Contains("tensor 'nope' is missing (needed by the test)"),
                       strata::Error);
}

TEST_CASE("every reference model: tensor count, element count and type mix") {
  STRATA_REQUIRE_SHARED(shared);
  struct Expect {
    const char* file;
    const char* arch;
    int64_t params;
    std::map<std::string, int> types;
  };
  const std::vector<Expect> models = {
      {"stories260K-w256-f32.gguf", "llama", 1493760, {{"f32", 48}}},
      {"stories260K-w256-moe8x2-f32.gguf", "llama", 8385280, {{"f32", 53}}},
      {"stories260K-w256-moe8x2-q4_k_m.gguf",
       "llama",
       8385280,
       {{"f32", 16}, {"q4_K", 19}, {"q5_1", 5}, {"q6_K", 3}, {"q8_0", 10}}},
      {"stories260K-w256-moe8x2-q8_0.gguf", "llama", 8385280, {{"f32", 16}, {"q8_0", 37}}},
      {"stories260K-w256-q2_k.gguf",
       "llama",
       1493760,
       {{"f32", 11}, {"q2_K", 21}, {"q3_K", 10}, {"q4_0", 5}, {"q6_K", 1}}},
      {"stories260K-w256-q4_0.gguf", "llama", 1493760, {{"f32", 11}, {"q4_0", 36}, {"q6_K", 1}}},
      {"stories260K-w256-q4_k_m.gguf",
       "llama",
       1493760,
       {{"f32", 11}, {"q4_K", 27}, {"q5_0", 5}, {"q6_K", 5}}},
      {"stories260K-w256-q5_k_m.gguf",
       "llama",
       1493760,
       {{"f32", 11}, {"q5_1", 5}, {"q5_K", 27}, {"q6_K", 5}}},
      {"stories260K-w256-q6_k.gguf", "llama", 1493760, {{"f32", 11}, {"q6_K", 32}, {"q8_0", 5}}},
      {"stories260K-w256-q8_0.gguf", "llama", 1493760, {{"f32", 11}, {"q8_0", 37}}},
      {"tiny-random-qwen3moe-f32.gguf", "qwen3moe", 19962880, {{"f32", 50}}},
      {"tiny-random-qwen3moe-q8_0.gguf", "qwen3moe", 19962880, {{"f32", 21}, {"q8_0", 29}}},
  };
  for (const auto& m : models) {
    CAPTURE(m.file);
    GGUFFile f = GGUFFile::open((shared / "models" / m.file).string());
    CHECK(f.architecture() == m.arch);
    CHECK(total_elements(f) == m.params);
    CHECK(type_counts(f) == m.types);
    uint64_t bytes = 0;
    for (const auto& t : f.tensors()) bytes += t.nbytes;
    CHECK(bytes <= f.file_sizes()[0] - f.data_offset());
  }
}

TEST_CASE("tiny-random-qwen3moe-q8_0: expert tensors and tokenizer") {
  STRATA_REQUIRE_SHARED(shared);
  GGUFFile f = GGUFFile::open((shared / "models/tiny-random-qwen3moe-q8_0.gguf").string());
  CHECK(f.require_uint("qwen3moe.block_count") == 4);
  CHECK(f.require_uint("qwen3moe.expert_count") == 16);
  CHECK(f.require_uint("qwen3moe.expert_used_count") == 4);
  CHECK(f.require_uint("qwen3moe.expert_feed_forward_length") == 128);
  CHECK(f.require_uint("qwen3moe.attention.key_length") == 64);
  CHECK(f.require_float("qwen3moe.rope.freq_base") == doctest::Approx(1e6));
  CHECK(f.get_string("tokenizer.ggml.model") == "gpt2");
  CHECK(f.get_string("tokenizer.ggml.pre") == "gpt-2");
  REQUIRE(f.get_array("tokenizer.ggml.tokens") != nullptr);
  CHECK(f.get_array("tokenizer.ggml.tokens")->items.size() == 50257);
  REQUIRE(f.get_array("tokenizer.ggml.merges") != nullptr);
  CHECK(f.get_array("tokenizer.ggml.merges")->items.size() > 40000);
  CHECK(f.find_tensor("output.weight") == nullptr);  // tied embedding

  const auto& up = f.require_tensor("blk.0.ffn_up_exps.weight", "test");
  CHECK(up.shape == std::vector<int64_t>{256, 128, 16});
  CHECK(up.type == strata::compute::DType::Q8_0);
  CHECK(up.n_elements == 256 * 128 * 16);
  CHECK(up.rows() == 128 * 16);
  CHECK(up.nbytes == 256 / 32 * 34 * 128 * 16);
  const auto& down = f.require_tensor("blk.3.ffn_down_exps.weight", "test");
  CHECK(down.shape == std::vector<int64_t>{128, 256, 16});
  const auto& gate_inp = f.require_tensor("blk.0.ffn_gate_inp.weight", "test");
  CHECK(gate_inp.shape == std::vector<int64_t>{256, 16});
  CHECK(gate_inp.type == strata::compute::DType::F32);
  CHECK(f.require_tensor("blk.0.attn_q_norm.weight", "test").shape == std::vector<int64_t>{64});
}

TEST_CASE("hand-built valid file: absolute offsets, alignment, sizes") {
  TempDir dir("gguf-valid");
  GgufBytes kvs = arch_kv();
  kvs.kv_u32("general.alignment", 64);
  kvs.str("some.flags").u32(uint32_t(ValueType::ARRAY)).u32(uint32_t(ValueType::ARRAY)).u64(1);
  kvs.u32(uint32_t(ValueType::I32)).u64(2).u32(uint32_t(-7)).u32(9);  // [[-7, 9]]
  const std::string p = dir.write(
      "valid.gguf", make_file(3, kvs, {{"a", {32, 2}, kF32, 0}, {"b", {64}, kQ8_0, 256}}, 324, 64));
  GGUFFile f = GGUFFile::open(p);
  CHECK(f.alignment() == 64);
  CHECK(f.data_offset() % 64 == 0);
  REQUIRE(f.tensors().size() == 2);
  CHECK(f.tensors()[0].offset == f.data_offset());
  CHECK(f.tensors()[1].offset == f.data_offset() + 256);
  CHECK(f.tensors()[1].nbytes == 68);
  const auto* flags = f.get_array("some.flags");
  REQUIRE(flags != nullptr);
  const auto& inner = std::get<strata::gguf::Array>(flags->items.at(0).v);
  CHECK(std::get<int64_t>(inner.items.at(0).v) == -7);
  CHECK_THROWS_WITH_AS(f.get_array("general.architecture"), doctest::Contains(p.c_str()),
                       strata::Error);
}

TEST_CASE("malformed header and metadata") {
  TempDir dir("gguf-bad-meta");
  auto write = [&](const std::string& name, const std::string& bytes) {
    return dir.write(name, bytes);
  };
  std::string good = make_file(1, arch_kv(), two_tensors(), 324);

  SUBCASE("bad magic") {
    std::string b = good;
    b[0] = 'X';
    expect_error(write("magic.gguf", b), "bad magic");
  }
  SUBCASE("empty file") { expect_error(write("empty.gguf", ""), "unexpected end of file"); }
  SUBCASE("version 1 and 4") {
    expect_error(write("v1.gguf", make_file(1, arch_kv(), two_tensors(), 324, 32, 1)),
                 "unsupported GGUF version 1");
    expect_error(write("v4.gguf", make_file(1, arch_kv(), two_tensors(), 324, 32, 4)),
                 "unsupported GGUF version 4");
  }
  SUBCASE("version 2 accepted") {
    GGUFFile f =
        GGUFFile::open(write("v2.gguf", make_file(1, arch_kv(), two_tensors(), 324, 32, 2)));
    CHECK(f.version() == 2);
  }
  SUBCASE("truncated in the header") {
    expect_error(write("trunc-header.gguf", good.substr(0, 13)), "unexpected end of file");
  }
  SUBCASE("truncated in a key/value") {
    // Cut inside the string value of the only key (counts still plausible for the bytes left).
    std::string b = make_file(1, arch_kv(), {}, 0);
    expect_error(write("trunc-kv.gguf", b.substr(0, 24 + 8 + 20 + 4 + 8 + 2)),
                 "unexpected end of file: value of key 'general.architecture' claims 4 bytes");
    GgufBytes kv;
    kv.kv_u32("n", 7);
    std::string c = make_file(1, kv, {}, 0);
    expect_error(write("trunc-u32.gguf", c.substr(0, 24 + 8 + 1 + 4 + 2)),
                 "unexpected end of file reading value of key 'n'");
  }
  SUBCASE("truncated in a tensor info") {
    const std::string name = "blk.0.a_rather_long_tensor_name";
    std::string b = make_file(1, arch_kv(), {{name, {32, 2}, kF32, 0}}, 256);
    size_t infos = GgufBytes().header(1, 1).b.size() + arch_kv().b.size();
    expect_error(write("trunc-info.gguf", b.substr(0, infos + 8 + name.size() + 4 + 10)),
                 "unexpected end of file reading info of tensor '" + name + "'");
  }
  SUBCASE("huge tensor count") {
    GgufBytes f;
    f.header(uint64_t(1) << 60, 1).b += arch_kv().b;
    expect_error(write("tcount.gguf", f.b), "tensor count 1152921504606846976 cannot fit");
  }
  SUBCASE("huge kv count") {
    GgufBytes f;
    f.header(0, ~uint64_t(0)).b += arch_kv().b;
    expect_error(write("kvcount.gguf", f.b), "metadata count 18446744073709551615 cannot fit");
  }
  SUBCASE("huge array count") {
    GgufBytes kv;
    kv.str("big")
        .u32(uint32_t(ValueType::ARRAY))
        .u32(uint32_t(ValueType::U32))
        .u64(uint64_t(1) << 40);
    expect_error(write("acount.gguf", make_file(1, kv, {}, 0)), "array of 1099511627776 u32");
  }
  SUBCASE("more array elements than the metadata cap, in a file big enough to hold them") {
    GgufBytes kv;
    kv.str("bytes")
        .u32(uint32_t(ValueType::ARRAY))
        .u32(uint32_t(ValueType::U8))
        .u64(uint64_t(1) << 26);
    const std::string p = write("many.gguf", make_file(1, kv, {}, 0));
    std::filesystem::resize_file(p, (uint64_t(1) << 26) + 4096);  // sparse
    expect_error(p, "metadata arrays hold more than 33554432 elements in total");
  }
  SUBCASE("huge string length") {
    GgufBytes kv;
    kv.str("s").u32(uint32_t(ValueType::STRING)).u64(uint64_t(1) << 62);
    expect_error(write("slen.gguf", make_file(1, kv, {}, 0)), "claims 4611686018427387904 bytes");
  }
  SUBCASE("key too long") {
    GgufBytes kv;
    kv.kv_u32(std::string(70000, 'k'), 1);
    expect_error(write("longkey.gguf", make_file(1, kv, {}, 0)), "more than the limit of 65535");
  }
  SUBCASE("unknown value type") {
    GgufBytes kv;
    kv.str("odd").u32(13).u32(0);
    expect_error(write("vtype.gguf", make_file(1, kv, {}, 0)), "key 'odd': unknown value type 13");
  }
  SUBCASE("unknown array element type") {
    GgufBytes kv;
    kv.str("odd").u32(uint32_t(ValueType::ARRAY)).u32(99).u64(0);
    expect_error(write("atype.gguf", make_file(1, kv, {}, 0)), "unknown array element type 99");
  }
  SUBCASE("arrays nested too deep") {
    GgufBytes kv;
    kv.str("deep").u32(uint32_t(ValueType::ARRAY));
    for (int i = 0; i < 20; ++i) kv.u32(uint32_t(ValueType::ARRAY)).u64(1);
    kv.u32(uint32_t(ValueType::U8)).u64(0);
    expect_error(write("deep.gguf", make_file(1, kv, {}, 0)), "nested deeper than");
  }
  SUBCASE("invalid bool") {
    GgufBytes kv;
    kv.str("flag").u32(uint32_t(ValueType::BOOL)).u8(7);
    expect_error(write("bool.gguf", make_file(1, kv, {}, 0)), "bool value 7");
  }
  SUBCASE("duplicate keys") {
    GgufBytes kv = arch_kv();
    kv.kv_u32("x.y", 1).kv_u32("x.y", 2);
    expect_error(write("dupkey.gguf", make_file(3, kv, {}, 0)), "duplicate key 'x.y'");
  }
  SUBCASE("general.alignment of the wrong type") {
    GgufBytes kv = arch_kv();
    kv.kv_u64("general.alignment", 32);
    expect_error(write("align-type.gguf", make_file(2, kv, two_tensors(), 324)),
                 "general.alignment has type u64, expected u32");
  }
  SUBCASE("general.alignment zero or not a power of two") {
    GgufBytes zero = arch_kv(), odd = arch_kv();
    zero.kv_u32("general.alignment", 0);
    odd.kv_u32("general.alignment", 24);
    expect_error(write("align0.gguf", make_file(2, zero, {}, 0)), "general.alignment 0 is not");
    expect_error(write("align24.gguf", make_file(2, odd, {}, 0)), "general.alignment 24 is not");
  }
}

TEST_CASE("malformed tensor index") {
  TempDir dir("gguf-bad-tensors");
  auto bad = [&](const std::string& name, const std::vector<TensorSpec>& ts, size_t data,
                 const std::string& phrase) {
    expect_error(dir.write(name, make_file(1, arch_kv(), ts, data)), phrase);
  };
  SUBCASE("duplicate tensor names") {
    bad("dup.gguf", {{"w", {32}, kF32, 0}, {"w", {32}, kF32, 128}}, 256,
        "duplicate tensor name 'w'");
  }
  SUBCASE("n_dims 0 and 5") {
    bad("dims0.gguf", {{"w", {}, kF32, 0}}, 128, "tensor 'w': n_dims 0 is not between 1 and 4");
    bad("dims5.gguf", {{"w", {1, 1, 1, 1, 1}, kF32, 0}}, 128, "n_dims 5 is not between 1 and 4");
  }
  SUBCASE("negative dimension") {
    bad("neg.gguf", {{"w", {32, uint64_t(-2)}, kF32, 0}}, 128,
        "dimension 1 is 18446744073709551614, which is negative");
  }
  SUBCASE("element count overflow") {
    bad("ovf.gguf", {{"w", {uint64_t(1) << 32, uint64_t(1) << 32}, kF32, 0}}, 128,
        "tensor 'w': element count overflows");
  }
  SUBCASE("byte size overflow") {
    bad("bytes-ovf.gguf", {{"w", {uint64_t(1) << 62}, kF32, 0}}, 128, "byte size overflows");
  }
  SUBCASE("row length not a multiple of the block size") {
    bad("block.gguf", {{"X", {48, 2}, kQ4_0, 0}}, 128,
        "tensor 'X': row length 48 is not a multiple of block size 32 for q4_0");
  }
  SUBCASE("unknown and non-weight types") {
    bad("type99.gguf", {{"w", {32}, 99, 0}}, 128, "tensor 'w': unknown ggml type id 99");
    bad("type4.gguf", {{"w", {32}, 4, 0}}, 128, "unknown ggml type id 4");  // removed q4_2
    bad("q8k.gguf", {{"w", {256}, kQ8_K, 0}}, 512, "type q8_K cannot be a weight tensor type");
  }
  SUBCASE("offset not aligned") {
    bad("unaligned.gguf", {{"w", {32}, kF32, 16}}, 256,
        "offset 16 is not a multiple of the alignment 32");
  }
  SUBCASE("tensor beyond the end of the file (truncated data)") {
    bad("past-end.gguf", {{"a", {32, 2}, kF32, 0}, {"b", {64}, kQ8_0, 256}}, 300,
        "tensor 'b': its 68 bytes at data offset 256 extend beyond the end of the file");
    bad("far.gguf", {{"w", {32}, kF32, uint64_t(-32)}}, 256, "beyond the end of the file");
  }
  SUBCASE("overlapping tensors") {
    bad("overlap.gguf", {{"a", {32, 2}, kF32, 0}, {"b", {64}, kQ8_0, 128}}, 324,
        "tensors 'a' and 'b' overlap");
  }
  SUBCASE("empty tensor name") { bad("noname.gguf", {{"", {32}, kF32, 0}}, 128, "empty name"); }
}

TEST_CASE("split model: two parts built by hand") {
  TempDir dir("gguf-split");
  const std::string prefix = (dir.path / "m").string();
  GgufBytes kv1 = arch_kv();
  kv1.kv_u32("split.count", 2).kv_u32("split.no", 0);
  GgufBytes kv2;
  kv2.kv_u32("split.count", 2).kv_u32("split.no", 1);
  const std::string p1 =
      dir.write("m-00001-of-00002.gguf", make_file(3, kv1, {{"a", {32, 2}, kF32, 0}}, 256));
  const std::string p2 =
      dir.write("m-00002-of-00002.gguf",
                make_file(2, kv2, {{"b", {64}, kQ8_0, 0}, {"c", {8}, kF32, 96}}, 128));

  for (const std::string& opened : {p1, p2}) {
    GGUFFile f = GGUFFile::open(opened);
    CHECK(f.paths() == std::vector<std::string>{p1, p2});
    CHECK(f.architecture() == "test");
    REQUIRE(f.tensors().size() == 3);
    const auto& b = f.require_tensor("b", "test");
    CHECK(b.file_index == 1);
    CHECK(b.offset == f.data_offset(1));
    CHECK(f.require_tensor("c", "test").offset == f.data_offset(1) + 96);
    CHECK(f.require_tensor("a", "test").file_index == 0);
    CHECK(f.file_sizes().at(1) == std::filesystem::file_size(p2));
  }

  SUBCASE("missing part") {
    std::filesystem::remove(p2);
    expect_error(p1, "m-00002-of-00002.gguf");
    expect_error(p1, "split part 2 of 2 is missing");
  }
  SUBCASE("split.no disagrees with the name") {
    GgufBytes wrong;
    wrong.kv_u32("split.count", 2).kv_u32("split.no", 0);
    dir.write("m-00002-of-00002.gguf", make_file(2, wrong, {{"b", {64}, kQ8_0, 0}}, 128));
    try {
      GGUFFile::open(p1);
      FAIL("expected an error");
    } catch (const strata::Error& e) {
      CHECK(std::string(e.what()).find(p2 + ": split.no is 0 but the file name says 1") !=
            std::string::npos);
    }
  }
  SUBCASE("split.count disagrees with the name") {
    GgufBytes three = arch_kv();
    three.kv_u32("split.count", 3).kv_u32("split.no", 0);
    dir.write("m-00001-of-00002.gguf", make_file(3, three, {{"a", {32, 2}, kF32, 0}}, 256));
    expect_error(p1, "split.count is 3 but the file name says 2");
  }
  SUBCASE("tensor name repeated across parts") {
    dir.write("m-00002-of-00002.gguf", make_file(2, kv2, {{"a", {8}, kF32, 0}}, 128));
    expect_error(p2, "duplicate tensor name 'a'");  // opened through p2, reported against p2
  }
  SUBCASE("split.count > 1 without a split file name") {
    expect_error(dir.write("plain.gguf", make_file(3, kv1, {{"a", {32, 2}, kF32, 0}}, 256)),
                 "split.count is 2");
  }
}

TEST_CASE("split model: stories260K re-emitted as two parts keeps every tensor's bytes") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string orig_path = (shared / "models/stories260K-f32.gguf").string();
  GGUFFile orig = GGUFFile::open(orig_path);
  TempDir dir("gguf-split-real");
  const auto& ts = orig.tensors();
  const size_t half = ts.size() / 2;

  auto emit = [&](uint32_t part, size_t begin, size_t end) {
    GgufBytes f;
    size_t n_kv = part == 0 ? orig.metadata().size() + 2 : 2;
    f.header(end - begin, n_kv);
    if (part == 0)
      for (const auto& [k, v] : orig.metadata()) f.kv(k, v);
    f.kv_u32("split.count", 2).kv_u32("split.no", part);
    uint64_t rel = 0;
    std::vector<uint64_t> rels;
    for (size_t i = begin; i < end; ++i) {
      std::vector<uint64_t> dims(ts[i].shape.begin(), ts[i].shape.end());
      f.tensor(ts[i].name, dims, uint32_t(ts[i].type), rel);
      rels.push_back(rel);
      rel += (ts[i].nbytes + 31) / 32 * 32;
    }
    f.pad_to(32);
    for (size_t i = begin; i < end; ++i) {
      f.pad_to(32);
      f.b += strata::test::read_bytes(orig_path, ts[i].offset, ts[i].nbytes);
    }
    return dir.write(fmt::format("s-{:05d}-of-00002.gguf", part + 1), f.b);
  };
  const std::string p1 = emit(0, 0, half);
  const std::string p2 = emit(1, half, ts.size());

  GGUFFile split = GGUFFile::open(p2);
  REQUIRE(split.paths().size() == 2);
  CHECK(split.require_uint("llama.block_count") == 5);
  REQUIRE(split.tensors().size() == ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const auto* t = split.find_tensor(ts[i].name);
    REQUIRE(t != nullptr);
    CHECK(t->file_index == (i < half ? 0u : 1u));
    CHECK(t->shape == ts[i].shape);
    CHECK(t->offset >= split.data_offset(t->file_index));
    CHECK(strata::test::read_bytes(split.paths()[t->file_index], t->offset, t->nbytes) ==
          strata::test::read_bytes(orig_path, ts[i].offset, ts[i].nbytes));
  }
}
