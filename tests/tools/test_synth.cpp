// strata synth: layout, keys, determinism and the statistics of the random weights of
// synthesised models, read back through the GGUF reader, the kernels and the model loader.
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "compute/quant.h"
#include "models/gguf/gguf.h"
#include "models/model.h"
#include "models/synth.h"
#include "models/tokenizer/tokenizer.h"
#include "storage/error.h"
#include "storage/file.h"
#include "tests/shared_data.h"
#include "tests/tools/run_strata.h"

using namespace strata;
using compute::DType;
using models::SynthArch;
using models::SynthSpec;

namespace {

std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("strata_test_synth_" + name)).string();
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

SynthSpec small_spec(SynthArch arch, DType type) {
  SynthSpec s = models::default_synth_spec(arch);
  s.type = type;
  s.n_layer = 2;
  s.n_embd = 256;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = arch == SynthArch::Qwen3Moe ? 128 : 0;  // q_dim 512 != n_embd for qwen
  if (arch != SynthArch::Llama) {
    s.n_expert = 4;
    s.n_expert_used = 2;
  }
  s.n_ff = 512;
  s.n_vocab = 300;
  s.ctx_len = 256;
  s.seed = 42;
  return s;
}

struct Expected {
  std::string name;
  std::vector<int64_t> shape;
  bool f32;
};

// The tensor list llama.cpp expects, written out independently of the synthesiser.
std::vector<Expected> expected_tensors(const SynthSpec& s) {
  const int64_t hd = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
  const int64_t q = s.n_head * hd, kv = s.n_head_kv * hd, E = s.n_embd;
  std::vector<Expected> v = {{"token_embd.weight", {E, s.n_vocab}, false},
                             {"output_norm.weight", {E}, true},
                             {"output.weight", {E, s.n_vocab}, false}};
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    v.push_back({b + "attn_norm.weight", {E}, true});
    v.push_back({b + "attn_q.weight", {E, q}, false});
    v.push_back({b + "attn_k.weight", {E, kv}, false});
    v.push_back({b + "attn_v.weight", {E, kv}, false});
    v.push_back({b + "attn_output.weight", {q, E}, false});
    if (s.arch == SynthArch::Qwen3Moe) {
      v.push_back({b + "attn_q_norm.weight", {hd}, true});
      v.push_back({b + "attn_k_norm.weight", {hd}, true});
    }
    v.push_back({b + "ffn_norm.weight", {E}, true});
    if (s.arch == SynthArch::Llama) {
      v.push_back({b + "ffn_gate.weight", {E, s.n_ff}, false});
      v.push_back({b + "ffn_down.weight", {s.n_ff, E}, false});
      v.push_back({b + "ffn_up.weight", {E, s.n_ff}, false});
    } else {
      v.push_back({b + "ffn_gate_inp.weight", {E, s.n_expert}, true});
      v.push_back({b + "ffn_gate_exps.weight", {E, s.n_ff, s.n_expert}, false});
      v.push_back({b + "ffn_down_exps.weight", {s.n_ff, E, s.n_expert}, false});
      v.push_back({b + "ffn_up_exps.weight", {E, s.n_ff, s.n_expert}, false});
    }
  }
  return v;
}

std::vector<uint8_t> tensor_bytes(const gguf::GGUFFile& f, const gguf::TensorInfo& t) {
  std::vector<uint8_t> buf(t.nbytes);
  storage::File::open_read(f.paths().at(t.file_index)).read_exact(buf.data(), buf.size(), t.offset);
  return buf;
}

// Dequantized values of a tensor, or empty when no kernel exists for its type yet.
std::vector<float> dequantized(const gguf::GGUFFile& f, const gguf::TensorInfo& t) {
  if (!compute::kernels()[t.type].dequantize) return {};
  const auto raw = tensor_bytes(f, t);
  std::vector<float> out(size_t(t.n_elements));
  const size_t rb = compute::row_bytes(t.type, t.shape[0]);
  for (int64_t r = 0; r < t.rows(); ++r)
    compute::dequantize_row(t.type, raw.data() + r * rb, out.data() + r * t.shape[0], t.shape[0]);
  return out;
}

struct Stats {
  double mean = 0, std = 0;
  bool finite = true;
};

Stats stats_of(const std::vector<float>& v) {
  Stats s;
  double sum = 0, sq = 0;
  for (float x : v) {
    s.finite = s.finite && std::isfinite(x);
    sum += x;
    sq += double(x) * x;
  }
  s.mean = sum / double(v.size());
  s.std = std::sqrt(std::max(0.0, sq / double(v.size()) - s.mean * s.mean));
  return s;
}

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K};

}  // namespace

TEST_CASE("every arch and type has llama.cpp's keys, tensor names, shapes and sizes") {
  std::vector<std::pair<SynthArch, DType>> cases;
  for (DType t : kAllTypes) cases.emplace_back(SynthArch::Mixtral, t);
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::F16}) {
    cases.emplace_back(SynthArch::Llama, t);
    cases.emplace_back(SynthArch::Qwen3Moe, t);
  }
  for (auto [arch, type] : cases) {
    const SynthSpec spec = small_spec(arch, type);
    CAPTURE(models::synth_arch_name(arch));
    CAPTURE(compute::type_name(type));
    const std::string path = tmp_path("layout.gguf");
    const auto res = models::synth_model(spec, path);
    CHECK(std::filesystem::file_size(path) == res.bytes);
    const auto f = gguf::GGUFFile::open(path);
    const bool qwen = arch == SynthArch::Qwen3Moe;
    const std::string A = qwen ? "qwen3moe" : "llama";
    CHECK(f.architecture() == A);
    CHECK(f.alignment() == 32);
    CHECK(f.get_uint("general.alignment") == 32u);
    CHECK(f.get_string("general.name").has_value());
    CHECK(f.get_uint(A + ".block_count") == 2u);
    CHECK(f.get_uint(A + ".embedding_length") == 256u);
    CHECK(f.get_uint(A + ".context_length") == 256u);
    CHECK(f.get_uint(A + ".feed_forward_length") == 512u);
    CHECK(f.get_uint(A + ".attention.head_count") == 4u);
    CHECK(f.get_uint(A + ".attention.head_count_kv") == 2u);
    CHECK(f.get_uint(A + ".attention.key_length") == (qwen ? 128u : 64u));
    CHECK(f.get_uint(A + ".attention.value_length") == (qwen ? 128u : 64u));
    CHECK(f.get_uint(A + ".rope.dimension_count") == (qwen ? 128u : 64u));
    CHECK(f.get_float(A + ".attention.layer_norm_rms_epsilon").value() ==
          doctest::Approx(qwen ? 1e-6 : 1e-5).epsilon(1e-6));
    CHECK(f.get_float(A + ".rope.freq_base") == (qwen ? 1e6 : 1e4));
    if (arch == SynthArch::Llama) {
      CHECK_FALSE(f.has(A + ".expert_count"));
    } else {
      CHECK(f.get_uint(A + ".expert_count") == 4u);
      CHECK(f.get_uint(A + ".expert_used_count") == 2u);
    }
    CHECK(f.has(A + ".expert_feed_forward_length") == qwen);
    if (qwen) CHECK(f.get_uint(A + ".expert_feed_forward_length") == 512u);
    const uint64_t ftype = f.get_uint("general.file_type").value();
    CHECK(ftype == (type == DType::Q4_0 ? 2u : type == DType::Q8_0 ? 7u : type == DType::F16 ? 1u
                    : type == DType::Q4_K ? 14u : ftype));

    const auto want = expected_tensors(spec);
    REQUIRE(f.tensors().size() == want.size());
    CHECK(res.n_tensors == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const auto& t = f.tensors()[i];
      CAPTURE(want[i].name);
      CHECK(t.name == want[i].name);
      CHECK(t.shape == want[i].shape);
      CHECK(t.type == (want[i].f32 ? DType::F32 : type));
      CHECK(t.offset % 32 == 0);
      CHECK(t.nbytes == compute::row_bytes(t.type, t.shape[0]) * uint64_t(t.rows()));
    }
    std::filesystem::remove(path);
  }
}

TEST_CASE("the tokenizer section is SentencePiece-style and loads") {
  const SynthSpec spec = small_spec(SynthArch::Mixtral, DType::Q8_0);
  const std::string path = tmp_path("vocab.gguf");
  models::synth_model(spec, path);
  const auto f = gguf::GGUFFile::open(path);
  CHECK(f.get_string("tokenizer.ggml.model") == "llama");
  CHECK(f.get_uint("tokenizer.ggml.bos_token_id") == 1u);
  CHECK(f.get_uint("tokenizer.ggml.eos_token_id") == 2u);
  CHECK(f.get_uint("tokenizer.ggml.unknown_token_id") == 0u);
  CHECK(f.get_bool("tokenizer.ggml.add_bos_token") == true);
  const auto* tokens = f.get_array("tokenizer.ggml.tokens");
  const auto* types = f.get_array("tokenizer.ggml.token_type");
  const auto* scores = f.get_array("tokenizer.ggml.scores");
  REQUIRE(tokens);
  REQUIRE(types);
  REQUIRE(scores);
  REQUIRE(tokens->items.size() == 300);
  REQUIRE(types->items.size() == 300);
  REQUIRE(scores->items.size() == 300);
  auto tok = [&](size_t i) { return std::get<std::string>(tokens->items[i].v); };
  auto type = [&](size_t i) { return std::get<int64_t>(types->items[i].v); };
  auto score = [&](size_t i) { return std::get<double>(scores->items[i].v); };
  CHECK(tok(0) == "<unk>");
  CHECK(type(0) == 2);
  CHECK(tok(1) == "<s>");
  CHECK(tok(2) == "</s>");
  CHECK(type(1) == 3);
  CHECK(type(2) == 3);
  CHECK(tok(3) == "<0x00>");
  CHECK(tok(3 + 0x0A) == "<0x0A>");
  CHECK(tok(258) == "<0xFF>");
  for (size_t i = 3; i < 259; ++i) CHECK(type(i) == 6);
  CHECK(tok(259) == "\xE2\x96\x81");
  std::set<std::string> unique;
  for (size_t i = 0; i < 300; ++i) unique.insert(tok(i));
  CHECK(unique.size() == 300);
  for (size_t i = 259; i < 300; ++i) CHECK(type(i) == 1);
  for (size_t i = 260; i < 300; ++i) CHECK(score(i) < score(i - 1));
  std::vector<std::string> listed;
  for (size_t i = 0; i < 300; ++i) listed.push_back(tok(i));
  CHECK(models::synth_vocab(300) == listed);
  // Larger vocabularies keep growing with unique printable pieces.
  const auto big = models::synth_vocab(40000);
  CHECK(big.size() == 40000);
  CHECK(std::set<std::string>(big.begin(), big.end()).size() == 40000);

  const auto t = tok::Tokenizer::from_gguf(f);
  CHECK(t->n_vocab() == 300);
  CHECK(t->bos() == 1);
  CHECK(t->eos() == 2);
  const std::string text = "Once upon a time, 42 cats!\nZ\xC3\xA9";
  const auto ids = t->encode(text, true);
  REQUIRE(!ids.empty());
  CHECK(ids.front() == 1);
  for (auto id : ids) CHECK((id >= 0 && id < 300));
  // SentencePiece adds a word-start marker in front; decoding may keep it as a space.
  const std::string back = t->decode(std::vector<tok::TokenId>(ids.begin() + 1, ids.end()));
  CHECK((back == text || back == " " + text));
  std::filesystem::remove(path);
}

TEST_CASE("same seed gives the same file, whatever the threads and buffers; another seed differs") {
  SynthSpec spec = small_spec(SynthArch::Qwen3Moe, DType::Q4_K);
  const std::string a = tmp_path("seed_a.gguf"), b = tmp_path("seed_b.gguf"), c = tmp_path("seed_c.gguf");
  models::synth_model(spec, a);
  {
    tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
    gguf::WriteOptions io;
    io.buffer_bytes = 100000;  // odd chunking: pieces start mid-block
    io.piece_bytes = 5000;
    io.direct_io = false;
    models::synth_model(spec, b, {}, io);
  }
  spec.seed = 43;
  models::synth_model(spec, c);
  const auto ba = file_bytes(a), bb = file_bytes(b), bc = file_bytes(c);
  CHECK(ba.size() > 100000);
  CHECK(ba == bb);
  REQUIRE(ba.size() == bc.size());
  CHECK(ba != bc);
  // Not only the seed key: the weights themselves differ.
  const auto fa = gguf::GGUFFile::open(a), fc = gguf::GGUFFile::open(c);
  const auto& q = fa.require_tensor("blk.1.attn_q.weight", "test");
  CHECK(tensor_bytes(fa, q) != tensor_bytes(fc, fc.require_tensor("blk.1.attn_q.weight", "test")));
  for (const auto& p : {a, b, c}) std::filesystem::remove(p);
}

TEST_CASE("dequantized weights are finite, centred, with std about 1/sqrt(row length)") {
  int checked_types = 0;
  for (DType type : kAllTypes) {
    CAPTURE(compute::type_name(type));
    SynthSpec spec = small_spec(SynthArch::Mixtral, type);
    spec.n_layer = 1;
    spec.n_ff = 1024;  // ffn_down rows are longer than the others
    const std::string path = tmp_path("stats.gguf");
    models::synth_model(spec, path);
    const auto f = gguf::GGUFFile::open(path);
    if (!compute::kernels()[type].dequantize) {
      MESSAGE("no dequantize kernel for ", compute::type_name(type), " yet: statistics not checked");
      std::filesystem::remove(path);
      continue;
    }
    ++checked_types;
    for (const char* name : {"token_embd.weight", "blk.0.attn_output.weight", "blk.0.ffn_down_exps.weight",
                             "blk.0.ffn_gate_inp.weight"}) {
      CAPTURE(name);
      const auto& t = f.require_tensor(name, "test");
      const Stats s = stats_of(dequantized(f, t));
      const double want = 1.0 / std::sqrt(double(t.shape[0]));
      CHECK(s.finite);
      CHECK(s.std > want * 0.75);
      CHECK(s.std < want * 1.33);
      CHECK(std::abs(s.mean) < want * 0.05);
    }
    const auto norm = dequantized(f, f.require_tensor("blk.0.ffn_norm.weight", "test"));
    for (float x : norm) CHECK(x == 1.0f);
    std::filesystem::remove(path);
  }
  CHECK(checked_types >= 3);  // float, Q4_0 and Q8_0 kernels at least
}

TEST_CASE("a forward pass over synthesised weights gives finite, spread logits") {
  for (auto [arch, type] : {std::pair{SynthArch::Mixtral, DType::Q4_0}, std::pair{SynthArch::Llama, DType::Q8_0},
                            std::pair{SynthArch::Qwen3Moe, DType::Q4_K}}) {
    CAPTURE(models::synth_arch_name(arch));
    SynthSpec spec = small_spec(arch, type);
    spec.n_layer = 4;
    const std::string path = tmp_path("forward.gguf");
    models::synth_model(spec, path);
    auto model = models::Model::load(path);
    const std::vector<int32_t> prompt = model->tokenizer().encode("once upon a time there was", true);
    auto cache = model->new_cache(64);
    models::BatchItem item;
    item.kv = &cache;
    item.tokens = prompt;
    item.all_logits = true;
    models::ForwardOutput out;
    model->forward(std::span<models::BatchItem>(&item, 1), out);
    REQUIRE(out.n_vocab == 300);
    for (size_t r = 0; r < prompt.size(); ++r) {
      const float* row = out.row(0, r);
      const Stats s = stats_of(std::vector<float>(row, row + 300));
      CHECK(s.finite);
      CHECK(s.std > 0.2);  // not collapsed
      CHECK(s.std < 10);   // not blown up
    }
    std::filesystem::remove(path);
  }
}

TEST_CASE("target size picks the layer count") {
  SynthSpec spec = small_spec(SynthArch::Mixtral, DType::Q4_0);
  spec.target_size = 6u << 20;
  const SynthSpec r = models::resolve_synth_spec(spec);
  CHECK(r.n_layer > 2);
  SynthSpec one = r, two = r;
  one.n_layer = r.n_layer;
  two.n_layer = r.n_layer + 1;
  const uint64_t size = models::build_synth_writer(one).file_bytes();
  const uint64_t per_layer = models::build_synth_writer(two).file_bytes() - size;
  CHECK(double(size) > double(spec.target_size) - double(per_layer));
  CHECK(double(size) < double(spec.target_size) + double(per_layer));
}

TEST_CASE("invalid specs are errors naming the file and the field, tensor or type") {
  const std::string path = tmp_path("invalid.gguf");
  std::filesystem::remove(path);
  SynthSpec s = small_spec(SynthArch::Mixtral, DType::Q4_0);
  s.n_vocab = 100;
  CHECK_THROWS_WITH_AS(models::synth_model(s, path), doctest::Contains("--vocab"), strata::Error);
  CHECK_THROWS_WITH_AS(models::synth_model(s, path), doctest::Contains(path.c_str()), strata::Error);

  s = small_spec(SynthArch::Llama, DType::Q4_K);
  s.n_embd = 320;  // not a multiple of the 256-wide super-block
  s.n_head = 5;
  s.n_head_kv = 5;
  try {
    models::synth_model(s, path);
    FAIL("expected an error");
  } catch (const strata::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("token_embd.weight") != std::string::npos);
    CHECK(msg.find("q4_K") != std::string::npos);
  }
  s = small_spec(SynthArch::Llama, DType::Q4_0);
  s.n_expert = 8;
  CHECK_THROWS_WITH_AS(models::synth_model(s, path), doctest::Contains("--experts"), strata::Error);
  s = small_spec(SynthArch::Mixtral, DType::Q4_0);
  s.n_expert_used = 5;
  CHECK_THROWS_WITH_AS(models::synth_model(s, path), doctest::Contains("--used"), strata::Error);
  s = small_spec(SynthArch::Mixtral, DType::Q4_0);
  s.n_head_kv = 3;
  CHECK_THROWS_WITH_AS(models::synth_model(s, path), doctest::Contains("--kv-heads"), strata::Error);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("the synth command writes a model and names bad flags") {
  const std::string bin = test::strata_binary();
  if (!std::filesystem::exists(bin)) {
    MESSAGE("skipped: the strata binary is not built (", bin, ")");
    return;
  }
  auto run = [&](const std::string& args, std::string& output) {
    const test::RunResult r = test::run_strata("synth " + args);
    output = r.output;
    return r.status;
  };
  const std::string path = tmp_path("cli.gguf");
  std::string out;
  CHECK(run("-o " + path + " --arch qwen3moe --layers 3 --dim 256 --heads 4 --kv-heads 2 --head-dim 32"
            " --experts 4 --used 2 --ffn 256 --vocab 400 --ctx 512 --type q8_0 --seed 5", out) == 0);
  CHECK(out.find(path) != std::string::npos);
  CHECK(out.find("tensors") != std::string::npos);
  CHECK(out.find("iB/s") != std::string::npos);  // binary units, as all human output
  {
    const auto f = gguf::GGUFFile::open(path);
    CHECK(f.architecture() == "qwen3moe");
    CHECK(f.get_uint("qwen3moe.block_count") == 3u);
    CHECK(f.get_uint("qwen3moe.attention.key_length") == 32u);
    CHECK(f.get_uint("qwen3moe.context_length") == 512u);
    CHECK(f.get_array("tokenizer.ggml.tokens")->items.size() == 400);
    CHECK(f.require_tensor("blk.2.ffn_up_exps.weight", "test").type == DType::Q8_0);
  }
  // Default mixtral dims make about 7.5 MB per layer: 40M is five layers, give or take one.
  CHECK(run("-o " + path + " --size 40M --type q4_0", out) == 0);
  const double size = double(std::filesystem::file_size(path));
  CHECK(size > 32.0 * (1 << 20));
  CHECK(size < 48.0 * (1 << 20));

  CHECK(run("-o " + path + " --type q9_9", out) != 0);
  CHECK(out.find("--type") != std::string::npos);
  CHECK(run("-o " + path + " --arch gpt", out) != 0);
  CHECK(out.find("--arch") != std::string::npos);
  CHECK(run("-o " + path + " --size lots", out) != 0);
  CHECK(out.find("--size") != std::string::npos);
  CHECK(run("-o " + path + " --vocab 10", out) != 0);
  CHECK(out.find("--vocab") != std::string::npos);
  CHECK(run("-o " + path + " --layers 2 --size 1G", out) != 0);
  std::filesystem::remove(path);
}
