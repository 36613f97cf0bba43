// Inputs the libFuzzer targets (fuzz/, scripts/fuzz.sh) found that crashed, hung or allocated
// without bound, each reduced to what triggers it and checked for the clear error that replaced
// the failure. Each fails without its fix.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "models/chat/chat_template.h"
#include "models/model.h"
#include "storage/error.h"
#include "tests/models/gguf_bytes.h"

using namespace strata;
using strata::gguf::ValueType;

namespace {

// A minimal dense llama header: metadata that passes the hyperparameter checks, a 4-token
// SentencePiece vocabulary, and the two global tensors (no blocks), with `block_count` as given.
std::string tiny_llama(uint64_t block_count) {
  test::GgufBytes g;
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "a"};
  g.header(/*n_tensors=*/2, /*n_kv=*/7);
  g.kv_str("general.architecture", "llama");
  g.kv_u32("llama.block_count", uint32_t(block_count));
  g.kv_u32("llama.embedding_length", 8);
  g.kv_u32("llama.attention.head_count", 2);
  g.kv_u32("llama.feed_forward_length", 16);
  g.kv_str("tokenizer.ggml.model", "llama");
  g.str("tokenizer.ggml.tokens").u32(uint32_t(ValueType::ARRAY)).u32(uint32_t(ValueType::STRING));
  g.u64(tokens.size());
  for (const auto& t : tokens) g.str(t);
  g.tensor("token_embd.weight", {8, 4}, /*F32*/ 0, 0);
  g.tensor("output_norm.weight", {8}, 0, 128);
  g.pad_to(32).zeros(128 + 32);
  return g.b;
}

}  // namespace

TEST_CASE("a GGUF tensor with a zero dimension is refused (its other dimensions could overflow rows())") {
  test::TempDir dir("fuzz-regr");
  // dims {0, 2^40, 2^40}: the element count is 0, but rows() = 2^80 overflowed int64_t
  // (UBSan: signed integer overflow in TensorInfo::rows, from the byte-size check).
  test::GgufBytes g;
  g.header(/*n_tensors=*/1, /*n_kv=*/1);
  g.kv_str("general.architecture", "llama");
  g.tensor("token_embd.weight", {0, uint64_t(1) << 40, uint64_t(1) << 40}, /*F32*/ 0, 0);
  g.pad_to(32).zeros(64);
  std::string path = dir.write("zero-dim.gguf", g.b);
  CHECK_THROWS_WITH_AS(gguf::GGUFFile::open(path), doctest::Contains("dimension 0 is 0"), Error);
}

TEST_CASE("GGUF block_count beyond what the file's tensors can hold is refused before allocating") {
  test::TempDir dir("fuzz-regr");
  // Sanity: with one block the file loads up to the first missing block tensor.
  std::string one = dir.write("one.gguf", tiny_llama(1));
  CHECK_THROWS_WITH_AS(models::Model::load(one), doctest::Contains("blk.0.attn_norm.weight"),
                       Error);
  // 2^31 blocks claimed by a 500-byte file: was a vector of 2^31 LayerWeights (bad_alloc, or
  // an ASan allocation-size-too-big abort) before any tensor was looked at.
  std::string huge = dir.write("huge.gguf", tiny_llama(uint64_t(1) << 31));
  CHECK_THROWS_WITH_AS(models::Model::load(huge), doctest::Contains("llama.block_count"), Error);
}

TEST_CASE("chat template widths, precisions and repetitions are checked against the output limit") {
  using strata::chat::ChatTemplate;
  const nlohmann::json ctx = {{"messages", nlohmann::json::array()}};
  auto render = [&](const char* src) { return ChatTemplate::parse(src, "t.jinja").render(ctx); };
  // Each allocated about 2 GB (or, for the repetition, wrapped to a small size and looped) before
  // the output limit was ever reached; now each is a template error naming the limit.
  for (const char* src : {
           "{{ 'x'|center(2000000000) }}",
           "{{ '%2000000000d'|format(1) }}",
           "{{ '%.2000000000f'|format(1.5) }}",
           "{{ '%.99999999999999999999s'|format('a') }}",  // std::stoll threw out_of_range
           "{{ '{:>2000000000}'.format(1) }}",
           "{{ '{99999999999999999999}'.format(1) }}",     // std::stoul threw out_of_range
           "{{ 'x'|indent(2000000000, true) }}",
           "{{ 'x'.ljust(2000000000) }}{{ 'x'.center(2000000000) }}",
           "{{ 'x'.zfill(2000000000) }}",
           "{{ [1]|tojson(indent=2000000000) }}",
           "{{ 'abcd' * 4611686018427387905 }}",
       }) {
    const std::string source = src;
    CAPTURE(source);
    CHECK_THROWS_WITH_AS(render(src), doctest::Contains("exceeds the output limit"), Error);
  }
  // Widths within the limit still pad as Python does.
  CHECK(render("{{ 'ab'|center(6) }}|{{ '%5d'|format(42) }}|{{ '{:>4}'.format('a') }}") ==
        "  ab  |   42|   a");
}

TEST_CASE("chat template indexes beyond 64 bits are template errors, not out_of_range crashes") {
  using strata::chat::ChatTemplate;
  const nlohmann::json ctx = {{"messages", nlohmann::json::array()}};
  // `x.<digits>` in the parser and map(attribute='<digits>') both called std::stoll, whose
  // std::out_of_range escaped as no strata::Error (fuzz_chat_template: std::terminate).
  CHECK_THROWS_WITH_AS(ChatTemplate::parse("{{ messages.99999999999999999999 }}", "t.jinja"),
                       doctest::Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(
      ChatTemplate::parse("{{ [[1]]|map(attribute='99999999999999999999')|list }}", "t.jinja").render(ctx),
      doctest::Contains("out of range"), Error);
  // In range, both still index.
  CHECK(ChatTemplate::parse("{{ [[7, 8]].0.1 }}{{ [[5, 6]]|map(attribute='1')|list }}", "t.jinja").render(ctx) ==
        "8[6]");
}
