// What the SentencePiece and BPE tokenizers share: the vocab, special ids and flags with
// llama.cpp's defaults, special-token splitting, and token -> piece.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "models/tokenizer/special_tokens.h"
#include "models/tokenizer/tokenizer.h"

namespace strata::tok::detail {

// Heterogeneous lookup: find() with a string_view, no temporary string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

class VocabTokenizer : public Tokenizer {
 public:
  enum class Kind { Spm, Bpe };
  // `default_add_bos` is the model family's default for tokenizer.ggml.add_bos_token.
  VocabTokenizer(const VocabSpec& spec, Kind kind, bool default_add_bos);

  std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const final;
  std::string token_to_piece(TokenId id, bool special) const final;

  int32_t n_vocab() const final { return int32_t(tokens_.size()); }
  TokenId bos() const final { return bos_; }
  TokenId eos() const final { return eos_; }
  TokenId eot() const final { return eot_; }
  TokenId unk() const final { return unk_; }
  bool is_eog(TokenId id) const final;
  bool add_bos() const final { return add_bos_; }
  bool add_eos() const final { return add_eos_; }
  const std::string& token_text(TokenId id) const final;
  TokenAttr token_attr(TokenId id) const final;
  TokenId find_token(std::string_view text) const final;

 protected:
  // Tokenizes one stretch of plain text; `after_special` is true at the start of the input and
  // right after a special token.
  virtual void encode_text(std::string_view text, bool after_special, std::vector<TokenId>& out) const = 0;
  // The bytes of a normal token, from its vocab text.
  virtual std::string normal_piece(const std::string& text) const = 0;

  struct Token {
    std::string text;
    float score = 0.0f;
    TokenAttr attr = TokenAttr::Normal;
  };
  std::vector<Token> tokens_;
  StringMap<TokenId> ids_;
  TokenId bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1, pad_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  std::string source_;

 private:
  void load_tokens(const VocabSpec& spec);
  void set_special_ids(const VocabSpec& spec, Kind kind);
  void build_special_matcher(const VocabSpec& spec);

  std::vector<TokenId> eog_;  // sorted
  SpecialTokenMatcher specials_;
};

std::unique_ptr<Tokenizer> make_spm_tokenizer(const VocabSpec& spec);
std::unique_ptr<Tokenizer> make_bpe_tokenizer(const VocabSpec& spec);

}  // namespace strata::tok::detail
