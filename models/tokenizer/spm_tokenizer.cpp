// SentencePiece-style tokenizer ("llama" vocabs): characters are merged greedily, always the
// adjacent pair whose concatenation is the best-scoring vocab entry (leftmost on ties), with a
// priority queue so a long text costs O(n log n). What never became a token falls back to
// <0xXX> byte tokens.
#include <array>
#include <cstdio>
#include <queue>

#include "models/tokenizer/unicode.h"
#include "models/tokenizer/vocab_tokenizer.h"

namespace strata::tok::detail {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(const VocabSpec& spec) : VocabTokenizer(spec, Kind::Spm, true) {
    for (int b = 0; b < 256; ++b) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      TokenId id = find_token(hex);
      if (id < 0) id = find_token(std::string(1, char(b)));
      byte_tokens_[size_t(b)] = id >= 0 ? id : unk_;
    }
  }

 protected:
  void encode_text(std::string_view text, bool after_special, std::vector<TokenId>& out) const override;

  std::string normal_piece(const std::string& text) const override {
    std::string piece;
    piece.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
        piece += ' ';
        i += kSpaceMark.size();
      } else {
        piece += text[i++];
      }
    }
    return piece;
  }

 private:
  std::array<TokenId, 256> byte_tokens_{};
};

struct Symbol {
  uint32_t offset, length;  // length 0: merged into its left neighbour
  int32_t prev, next;
};

struct Candidate {
  float score;
  int32_t left, right;
  uint32_t length;  // of the merged text; a mismatch later means the candidate is stale
};

struct WorseCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

void SpmTokenizer::encode_text(std::string_view text, bool after_special, std::vector<TokenId>& out) const {
  std::string s;
  s.reserve(text.size() * 3 + 3);
  if (add_space_prefix_ && after_special) s += kSpaceMark;
  for (char c : text) {
    if (c == ' ') s += kSpaceMark;
    else s += c;
  }
  if (s.empty()) return;

  std::vector<Symbol> symbols;
  symbols.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const auto len = uint32_t(std::min(unicode::utf8_lead_len(uint8_t(s[pos])), s.size() - pos));
    const auto index = int32_t(symbols.size());
    symbols.push_back({uint32_t(pos), len, index - 1, index + 1});
    pos += len;
  }
  symbols.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, WorseCandidate> queue;
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[size_t(left)];
    const Symbol& r = symbols[size_t(right)];
    const TokenId id = find_token(std::string_view(s).substr(l.offset, l.length + r.length));
    if (id < 0) return;
    queue.push({tokens_[size_t(id)].score, left, right, l.length + r.length});
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
    const std::string_view piece = std::string_view(s).substr(sym.offset, sym.length);
    if (const TokenId id = find_token(piece); id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char b : piece)
      if (const TokenId id = byte_tokens_[uint8_t(b)]; id >= 0) out.push_back(id);
  }
}

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(const VocabSpec& spec) {
  return std::make_unique<SpmTokenizer>(spec);
}

}  // namespace strata::tok::detail
