#include "models/tokenizer/unicode.h"

#include <unicode/uchar.h>

#include <array>

namespace strata::tok::unicode {

size_t utf8_lead_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

Decoded decode_utf8(std::string_view s, size_t pos) {
  const auto b0 = uint8_t(s[pos]);
  if (b0 < 0x80) return {b0, 1, true};
  const Decoded bad{0xFFFD, 1, false};
  size_t n = 0;
  uint32_t cp = 0, min = 0;
  if ((b0 & 0xE0) == 0xC0) n = 2, cp = b0 & 0x1F, min = 0x80;
  else if ((b0 & 0xF0) == 0xE0) n = 3, cp = b0 & 0x0F, min = 0x800;
  else if ((b0 & 0xF8) == 0xF0) n = 4, cp = b0 & 0x07, min = 0x10000;
  else return bad;
  if (pos + n > s.size()) return bad;
  for (size_t i = 1; i < n; ++i) {
    const auto b = uint8_t(s[pos + i]);
    if ((b & 0xC0) != 0x80) return bad;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return bad;
  return {cp, uint32_t(n), true};
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

namespace {

uint8_t compute_flags(uint32_t cp) {
  if (cp > 0x10FFFF) return 0;
  const auto c = UChar32(cp);
  uint8_t f = 0;
  const uint32_t mask = U_GET_GC_MASK(c);
  if (mask & U_GC_L_MASK) f |= kLetter;
  if (mask & U_GC_N_MASK) f |= kNumber;
  if (mask & U_GC_P_MASK) f |= kPunct;
  if (u_isUWhiteSpace(c)) f |= kWhitespace;
  return f;
}

// Most text lives in the BMP: a table makes the per-character cost a load.
const std::array<uint8_t, 0x10000>& bmp_flags() {
  static const auto table = [] {
    std::array<uint8_t, 0x10000> t{};
    for (uint32_t cp = 0; cp < t.size(); ++cp) t[cp] = compute_flags(cp);
    return t;
  }();
  return table;
}

struct ByteAlphabet {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 512> to_byte{};  // every mapped code point is < 0x144
  ByteAlphabet() {
    to_byte.fill(-1);
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? b : 0x100 + extra++;
      to_byte[to_cp[b]] = int16_t(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

uint8_t cp_flags(uint32_t cp) { return cp < 0x10000 ? bmp_flags()[cp] : compute_flags(cp); }

uint32_t to_lower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  return cp > 0x10FFFF ? cp : uint32_t(u_tolower(UChar32(cp)));
}

uint32_t byte_to_cp(uint8_t b) { return alphabet().to_cp[b]; }

int cp_to_byte(uint32_t cp) { return cp < 512 ? alphabet().to_byte[cp] : -1; }

}  // namespace strata::tok::unicode
