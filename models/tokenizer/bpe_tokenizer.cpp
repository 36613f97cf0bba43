// Byte-level BPE ("gpt2" vocabs): the pre-tokenizer cuts text into words; each word's bytes are
// shown in GPT-2's byte alphabet and merged by rank (the earliest merge rule first, leftmost on
// ties) inside the word only, so cost grows with word length, not text length.
#include <array>
#include <queue>

#include "models/tokenizer/pretokenizer.h"
#include "models/tokenizer/unicode.h"
#include "models/tokenizer/vocab_tokenizer.h"
#include "storage/error.h"

namespace strata::tok::detail {

namespace {

// Joins the two sides of a merge rule into one key; 0xFF never occurs in UTF-8 text.
constexpr char kMergeSeparator = '\xFF';

class BpeTokenizer final : public VocabTokenizer {
 public:
  BpeTokenizer(const VocabSpec& spec, const PreTokenizerInfo& pre)
      : VocabTokenizer(spec, Kind::Bpe, pre.add_bos), pre_(pre) {
    ranks_.reserve(spec.merges.size());
    for (size_t i = 0; i < spec.merges.size(); ++i) {
      const std::string& rule = spec.merges[i];
      // The separator is the first space after the first character, as llama.cpp splits.
      const size_t space = rule.find(' ', 1);
      if (space == std::string::npos) continue;  // not a rule; llama.cpp's pair ("", "") never matches
      std::string key = rule.substr(0, space);
      key += kMergeSeparator;
      key.append(rule, space + 1);
      ranks_.emplace(std::move(key), int32_t(i));  // the first rank of a repeated rule wins
    }
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      unicode::append_utf8(ch, unicode::byte_to_cp(uint8_t(b)));
      byte_chars_[size_t(b)] = ch;
    }
  }

 protected:
  void encode_text(std::string_view text, bool after_special, std::vector<TokenId>& out) const override;

  std::string normal_piece(const std::string& text) const override {
    std::string bytes;
    bytes.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      const unicode::Decoded d = unicode::decode_utf8(text, pos);
      const int b = d.valid ? unicode::cp_to_byte(d.cp) : -1;
      if (b >= 0) bytes += char(b);
      else bytes.append(text, pos, d.len);  // outside the alphabet: keep as written
      pos += d.len;
    }
    return bytes;
  }

 private:
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;
  int32_t rank(std::string_view left, std::string_view right, std::string& key) const {
    key.assign(left);
    key += kMergeSeparator;
    key.append(right);
    auto it = ranks_.find(std::string_view(key));
    return it == ranks_.end() ? -1 : it->second;
  }

  PreTokenizerInfo pre_;
  StringMap<int32_t> ranks_;
  std::array<std::string, 256> byte_chars_;
};

struct Symbol {
  uint32_t offset, length;  // in the byte-level word; length 0: merged into its left neighbour
  int32_t prev, next;
};

struct Candidate {
  int32_t rank;
  int32_t left, right;
  uint32_t length;
};

struct WorseCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

void BpeTokenizer::encode_text(std::string_view text, bool /*after_special*/, std::vector<TokenId>& out) const {
  for (std::string_view word : pre_tokenize(pre_.kind, text)) encode_word(word, out);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  std::string s;
  s.reserve(word.size() * 2);
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (char c : word) {
    const std::string& ch = byte_chars_[uint8_t(c)];
    const auto index = int32_t(symbols.size());
    symbols.push_back({uint32_t(s.size()), uint32_t(ch.size()), index - 1, index + 1});
    s += ch;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  if (pre_.ignore_merges) {
    if (const TokenId id = find_token(s); id >= 0) {
      out.push_back(id);
      return;
    }
  }

  const std::string_view view(s);
  std::string key;
  std::priority_queue<Candidate, std::vector<Candidate>, WorseCandidate> queue;
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[size_t(left)];
    const Symbol& r = symbols[size_t(right)];
    const int32_t rk = rank(view.substr(l.offset, l.length), view.substr(r.offset, r.length), key);
    if (rk < 0) return;
    queue.push({rk, left, right, l.length + r.length});
  };
  for (size_t i = 1; i < symbols.size(); ++i) consider(int32_t(i - 1), int32_t(i));

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = symbols[size_t(c.left)];
    Symbol& r = symbols[size_t(c.right)];
    if (l.length == 0 || r.length == 0 || l.length + r.length != c.length) continue;
    l.length += r.length;
    r.length = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[size_t(r.next)].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[size_t(i)].next) {
    const Symbol& sym = symbols[size_t(i)];
    const std::string_view piece = view.substr(sym.offset, sym.length);
    if (const TokenId id = find_token(piece); id >= 0) {
      out.push_back(id);
      continue;
    }
    // A merge product missing from the vocab (a broken file): fall back to what single bytes
    // of it the vocab has, as llama.cpp does.
    for (char b : piece)
      if (const TokenId id = find_token(std::string_view(&b, 1)); id >= 0) out.push_back(id);
  }
}

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const VocabSpec& spec) {
  const std::optional<PreTokenizerInfo> pre = find_pre_tokenizer(spec.pre);
  if (!pre)
    fail("{}: tokenizer.ggml.pre '{}' is not supported (expected one of gpt-2, llama-bpe, llama3, "
         "qwen2, deepseek-llm, default)",
         spec.source, spec.pre);
  if (spec.merges.empty()) fail("{}: tokenizer.ggml.merges is missing or empty (needed by a gpt2 vocab)", spec.source);
  return std::make_unique<BpeTokenizer>(spec, *pre);
}

}  // namespace strata::tok::detail
