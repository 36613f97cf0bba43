// Tokenizers built from GGUF metadata: SentencePiece-style ("llama": scores, byte fallback) and
// byte-level BPE ("gpt2": merges, with the pre-tokenizer named by tokenizer.ggml.pre).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gguf { class GGUFFile; }

namespace strata::tok {

using TokenId = int32_t;

// tokenizer.ggml.token_type values
enum class TokenAttr : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// What a tokenizer is built from: the tokenizer.ggml.* metadata of a GGUF file (from_gguf fills
// one; tests build small ones by hand). Absent values take llama.cpp's defaults.
struct VocabSpec {
  std::string source = "<vocab>";   // the file, named in error messages
  std::string model;                // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (BPE)
  std::string pre;                  // tokenizer.ggml.pre ("" when absent)
  std::string model_name;           // general.name (llama.cpp keys a Phi-3 rule on it)
  std::vector<std::string> tokens;  // tokenizer.ggml.tokens
  std::vector<float> scores;        // tokenizer.ggml.scores (empty: all 0)
  std::vector<int32_t> token_types; // tokenizer.ggml.token_type (empty: all Normal)
  std::vector<std::string> merges;  // tokenizer.ggml.merges, "left right", rank = index
  // tokenizer.ggml.*_token_id; a value outside [0, n_vocab) keeps the default.
  std::optional<int64_t> bos_id, eos_id, unk_id, pad_id, eot_id, eom_id;
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Throws strata::Error naming the file and key on a missing/unsupported tokenizer. Reads only
  // metadata (no tensor data).
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::GGUFFile& file);
  static std::unique_ptr<Tokenizer> from_spec(const VocabSpec& spec);

  // add_special: add BOS/EOS as tokenizer.ggml.add_bos_token/add_eos_token say (llama.cpp's
  // defaults when absent). parse_special: recognise control/user-defined token texts in `text`.
  virtual std::vector<TokenId> encode(std::string_view text, bool add_special,
                                      bool parse_special = false) const = 0;
  // The bytes of one token (llama_token_to_piece semantics: SPM '▁' -> ' ', byte tokens ->
  // their byte, BPE byte-level chars -> bytes). Control tokens give their text only if special.
  virtual std::string token_to_piece(TokenId id, bool special = true) const = 0;
  // Concatenation of token_to_piece(id, special): exactly what streaming the pieces prints. The
  // space a SentencePiece vocab prefixes is kept (decode(encode("x", false)) == " x" there).
  std::string decode(const std::vector<TokenId>& ids, bool special = false) const;

  virtual int32_t n_vocab() const = 0;
  virtual TokenId bos() const = 0;  // -1 if none
  virtual TokenId eos() const = 0;  // -1 if none
  virtual bool is_eog(TokenId id) const = 0;  // end of generation (eos, eot, ...)
  virtual bool add_bos() const = 0;

  virtual TokenId eot() const = 0;  // end of turn, -1 if none
  virtual TokenId unk() const = 0;  // -1 if none
  virtual bool add_eos() const = 0;
  // The vocab entry as stored (byte-level / '▁' form); "" for an id out of range.
  virtual const std::string& token_text(TokenId id) const = 0;
  virtual TokenAttr token_attr(TokenId id) const = 0;  // Undefined for an id out of range
  virtual TokenId find_token(std::string_view text) const = 0;  // -1 if absent
};

}  // namespace strata::tok
