// BPE pre-tokenizers: split text into the words that merges run inside, with the semantics of
// the regexes each model was trained with. Each regex is a small hand-written scanner over
// code points (no regex engine: std::regex is slow and has no \p{..}).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::tok {

enum class PreTokenizer {
  Gpt2,         // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Llama3,       // (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  Qwen2,        // Llama3 with \p{N} (single digits)
  DeepseekLlm,  // a sequence of isolating regexes (see pretokenizer_sequences.cpp)
  Default,      // llama.cpp's choice for a BPE vocab without tokenizer.ggml.pre
};

struct PreTokenizerInfo {
  PreTokenizer kind;
  bool ignore_merges;  // a word that is itself a vocab token is emitted whole (Llama 3)
  bool add_bos;        // default of tokenizer.ggml.add_bos_token for this family
};

// Maps a tokenizer.ggml.pre value to its pre-tokenizer; nullopt when unknown.
std::optional<PreTokenizerInfo> find_pre_tokenizer(const std::string& name);

// Splits text into consecutive words covering all of it (views into text). Bytes that are not
// valid UTF-8 are kept (each counts as one symbol character), so no input byte is lost.
std::vector<std::string_view> pre_tokenize(PreTokenizer kind, std::string_view text);

namespace detail {

// Text as code points, with the byte offset of each (offsets.size() == cps.size() + 1).
struct CodepointText {
  std::vector<uint32_t> cps;
  std::vector<uint8_t> flags;  // unicode::CpFlag bits
  std::vector<uint32_t> offsets;
  size_t size() const { return cps.size(); }
};
CodepointText decode_text(std::string_view text);

// A splitter refines a partition of [0, n) code points: it receives one part [begin, end) and
// appends the ends of the pieces it cuts that part into (the last one being `end`).
using Splitter = void (*)(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends);

void split_gpt2(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends);
void split_llama3(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends);
void split_qwen2(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends);
// The regex sequences: each regex isolates its matches inside every part left by the previous.
std::vector<Splitter> deepseek_llm_sequence();
std::vector<Splitter> default_sequence();

}  // namespace detail
}  // namespace strata::tok
