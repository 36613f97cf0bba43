// Tokenizers on arbitrary bytes (invalid UTF-8 included): SentencePiece (stories260K's vocab and
// synth's) and byte-level BPE (gpt-2 and deepseek-llm pre-tokenizers). The first input byte
// picks the tokenizer and the add_special / parse_special flags; the rest is the text. Every
// result is decoded again and every id's piece read, as streaming output does.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "models/gguf/gguf.h"
#include "models/synth.h"
#include "models/tokenizer/tokenizer.h"

namespace {

std::vector<std::unique_ptr<strata::tok::Tokenizer>> tokenizers;

void add_from(const std::string& path) {
  try {
    tokenizers.push_back(strata::tok::Tokenizer::from_gguf(strata::gguf::GGUFFile::open(path)));
  } catch (const strata::Error& e) {
    std::fprintf(stderr, "fuzz_tokenizer: skipping %s (%s)\n", path.c_str(), e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace strata;
  // Always present: synth's SentencePiece-style vocabulary (byte fallback, control tokens).
  tok::VocabSpec s;
  s.model = "llama";
  s.tokens = models::synth_vocab(300);
  s.scores.assign(s.tokens.size(), 0.0f);
  s.token_types.assign(s.tokens.size(), 1);
  s.token_types[0] = 2;
  s.token_types[1] = s.token_types[2] = 3;
  for (int b = 0; b < 256; ++b) s.token_types[3 + b] = 6;
  for (size_t i = 259; i < s.tokens.size(); ++i) s.scores[i] = -float(i - 259);
  s.bos_id = 1;
  s.eos_id = 2;
  s.unk_id = 0;
  tokenizers.push_back(tok::Tokenizer::from_spec(s));
  // The reference vocabularies, when ../shared is there.
  const std::string sh = fuzz::shared_dir();
  add_from(sh + "/models/stories260K-f32.gguf");
  add_from(sh + "/vocab/ggml-vocab-gpt-2.gguf");
  add_from(sh + "/vocab/ggml-vocab-deepseek-llm.gguf");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  if (size == 0) return 0;
  const uint8_t sel = data[0];
  const tok::Tokenizer& tk = *tokenizers[(sel & 0x0f) % tokenizers.size()];
  const bool add_special = sel & 0x10, parse_special = sel & 0x20;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    std::vector<tok::TokenId> ids = tk.encode(text, add_special, parse_special);
    for (tok::TokenId id : ids)
      if (id < 0 || id >= tk.n_vocab()) std::abort();  // an id outside the vocabulary
    (void)tk.decode(ids, true);
    (void)tk.decode(ids, false);
    // Ids as a client may send them (logit_bias, token prompts): out of range must be safe too.
    if (size >= 5) {
      int32_t raw;
      __builtin_memcpy(&raw, data + 1, 4);
      (void)tk.token_to_piece(raw, true);
      (void)tk.token_text(raw);
      (void)tk.token_attr(raw);
    }
    (void)tk.find_token(text);
  } catch (const Error&) {
  }
  return 0;
}
