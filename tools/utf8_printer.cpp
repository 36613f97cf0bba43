#include "tools/utf8_printer.h"

#include <cstdint>

namespace strata::tools {
namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the sequence a lead byte starts (0: not a lead byte), and the allowed range of the
// second byte (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
int sequence_length(uint8_t b, uint8_t& lo, uint8_t& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b == 0xE0) { lo = 0xA0; return 3; }
  if (b >= 0xE1 && b <= 0xEC) return 3;
  if (b == 0xED) { hi = 0x9F; return 3; }
  if (b >= 0xEE && b <= 0xEF) return 3;
  if (b == 0xF0) { lo = 0x90; return 4; }
  if (b >= 0xF1 && b <= 0xF3) return 4;
  if (b == 0xF4) { hi = 0x8F; return 4; }
  return 0;
}
}  // namespace

std::string Utf8Printer::sanitize(std::string_view s, std::string* rest) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<uint8_t>(s[i]);
    uint8_t lo, hi;
    const int n = sequence_length(b, lo, hi);
    if (n == 1) {
      out += s[i++];
      continue;
    }
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    int got = 1;
    bool bad = false;
    while (got < n && i + got < s.size()) {
      const auto c = static_cast<uint8_t>(s[i + got]);
      const uint8_t l = got == 1 ? lo : 0x80, h = got == 1 ? hi : 0xBF;
      if (c < l || c > h) {
        bad = true;
        break;
      }
      ++got;
    }
    if (bad) {
      out += kReplacement;
      i += got;  // the valid prefix is one maximal invalid subpart: one U+FFFD for it
      continue;
    }
    if (got < n) {  // ran out of input mid-character
      if (rest) {
        *rest = std::string(s.substr(i));
        return out;
      }
      out += kReplacement;
      break;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  if (rest) rest->clear();
  return out;
}

void Utf8Printer::write(std::string_view text) {
  held_.append(text);
  std::string rest;
  const std::string ok = sanitize(held_, &rest);
  held_ = std::move(rest);
  if (!ok.empty()) std::fwrite(ok.data(), 1, ok.size(), out_);
  std::fflush(out_);
}

void Utf8Printer::flush() {
  if (!held_.empty()) {
    const std::string ok = sanitize(held_);
    std::fwrite(ok.data(), 1, ok.size(), out_);
    held_.clear();
  }
  std::fflush(out_);
}

}  // namespace strata::tools
