// The Unicode facts the tokenizers need: UTF-8 decoding that never loses a byte, the general
// categories the pre-tokenizers split on (from ICU), and GPT-2's byte-level alphabet.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::tok::unicode {

// Length of the UTF-8 sequence a lead byte announces (1 for ASCII and for stray bytes). This
// is SentencePiece's view of a "character": it does not validate the continuation bytes.
size_t utf8_lead_len(uint8_t lead);

struct Decoded {
  uint32_t cp;   // U+FFFD when the bytes at pos are not valid UTF-8
  uint32_t len;  // bytes consumed (1 for an invalid byte, so every byte is visited)
  bool valid;
};
// Decodes one code point at s[pos] (pos < s.size()), strictly: no overlongs, surrogates or
// values past U+10FFFF.
Decoded decode_utf8(std::string_view s, size_t pos);
void append_utf8(std::string& out, uint32_t cp);

// Category bits of a code point, as the BPE pre-tokenizer regexes see them.
enum CpFlag : uint8_t {
  kLetter = 1,      // \p{L}
  kNumber = 2,      // \p{N}
  kWhitespace = 4,  // \s: the Unicode White_Space property
  kPunct = 8,       // \p{P}
};
uint8_t cp_flags(uint32_t cp);
uint32_t to_lower(uint32_t cp);

// GPT-2 byte-level BPE: every byte is shown as a printable code point (printable Latin-1 bytes
// as themselves, the rest as U+0100 + n) so that vocab entries are plain text.
uint32_t byte_to_cp(uint8_t b);
int cp_to_byte(uint32_t cp);  // -1 for a code point outside the alphabet

}  // namespace strata::tok::unicode
