// Tokenizers built from GGUF metadata: SentencePiece-style ("llama": scores, byte fallback) and
// byte-level BPE ("gpt2": merges, with the pre-tokenizer named by tokenizer.ggml.pre).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gguf { class GGUFFile; }

namespace strata::tok {

using TokenId = int32_t;

// tokenizer.ggml.token_type values
enum class TokenAttr : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Throws strata::Error naming the file and key on a missing/unsupported tokenizer.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::GGUFFile& file);

  // add_special: add BOS/EOS as tokenizer.ggml.add_bos_token/add_eos_token say (llama.cpp's
  // defaults when absent). parse_special: recognise control/user-defined token texts in `text`.
  virtual std::vector<TokenId> encode(std::string_view text, bool add_special,
                                      bool parse_special = false) const = 0;
  // The bytes of one token (llama_token_to_piece semantics: SPM '▁' -> ' ', byte tokens ->
  // their byte, BPE byte-level chars -> bytes). Control tokens give their text only if special.
  virtual std::string token_to_piece(TokenId id, bool special = true) const = 0;
  std::string decode(const std::vector<TokenId>& ids, bool special = false) const;

  virtual int32_t n_vocab() const = 0;
  virtual TokenId bos() const = 0;  // -1 if none
  virtual TokenId eos() const = 0;  // -1 if none
  virtual bool is_eog(TokenId id) const = 0;  // end of generation (eos, eot, ...)
  virtual bool add_bos() const = 0;
};

}  // namespace strata::tok
