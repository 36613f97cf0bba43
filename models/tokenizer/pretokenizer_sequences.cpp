// Pre-tokenizers that are a sequence of regexes: each regex cuts every part left by the
// previous ones around its matches (leftmost first, not overlapping); the text between matches
// stays a part of its own (the "isolated" split behaviour of HF tokenizers).
//
// As in llama.cpp, \s is the Unicode White_Space property and non-ASCII whitespace never
// matches an explicit character class (its reference splitter rewrites such characters to a
// vertical tab before matching), so the class tests below exclude whitespace.
#include <algorithm>
#include <array>
#include <utility>

#include "models/tokenizer/pretokenizer.h"
#include "models/tokenizer/unicode.h"

namespace strata::tok::detail {

namespace {

using unicode::kNumber;
using unicode::kPunct;
using unicode::kWhitespace;
using Range = std::pair<uint32_t, uint32_t>;

template <size_t N>
bool in_ranges(const std::array<Range, N>& ranges, uint32_t cp) {
  // Ranges are sorted by start and disjoint.
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](uint32_t v, const Range& r) { return v < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->second;
}

// DeepSeek LLM's letter class (mostly cased letters), written as code points: several of its
// characters (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) change under NFC normalisation,
// so literal characters in source would be fragile.
constexpr std::array<Range, 84> kDeepseekLetters = {{
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},
    {0xD8, 0xF6},       {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},
    {0x295, 0x2AF},     {0x370, 0x373},     {0x376, 0x377},     {0x37B, 0x37D},
    {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},     {0x38C, 0x38C},
    {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},
    {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
    {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},
    {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},
    {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},
    {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
}};

// [!-/:-~！-／：-～‘-‟　-。]: ASCII and full-width punctuation, curly quotes, CJK comma/stop.
constexpr std::array<Range, 6> kDeepseekPunct = {{
    {0x21, 0x2F}, {0x3A, 0x7E}, {0x2018, 0x201F}, {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
}};

// [一-龥ࠀ-一가-퟿]: U+0800..U+9FA5 (two overlapping ranges) and Hangul U+AC00..U+D7FF.
constexpr std::array<Range, 2> kDeepseekCjk = {{{0x800, 0x9FA5}, {0xAC00, 0xD7FF}}};

struct Match {
  size_t begin, end;  // begin == part end: no match
};

// Cuts [begin, end) around the matches `find(from)` reports, left to right.
template <typename Find>
void isolate(size_t begin, size_t end, std::vector<size_t>& ends, Find find) {
  size_t pos = begin;
  while (pos < end) {
    const Match m = find(pos);
    if (m.begin >= end) break;
    if (m.begin > pos) ends.push_back(m.begin);
    ends.push_back(m.end);
    pos = m.end;
  }
  if (pos < end) ends.push_back(end);
}

// [X]+ where X is a predicate on a code point index.
template <typename InClass>
void split_runs(size_t begin, size_t end, std::vector<size_t>& ends, InClass in) {
  isolate(begin, end, ends, [&](size_t from) -> Match {
    size_t s = from;
    while (s < end && !in(s)) ++s;
    size_t e = s;
    while (e < end && in(e)) ++e;
    return {s, e};
  });
}

// \s?[X]+
template <typename InClass>
void split_runs_after_space(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends,
                            InClass in) {
  isolate(begin, end, ends, [&](size_t from) -> Match {
    for (size_t s = from; s < end; ++s) {
      size_t first = s;
      if ((t.flags[s] & kWhitespace) && s + 1 < end && in(s + 1)) first = s + 1;
      else if (!in(s)) continue;
      size_t e = first;
      while (e < end && in(e)) ++e;
      return {s, e};
    }
    return {end, end};
  });
}

bool is_ws(const CodepointText& t, size_t i) { return t.flags[i] & kWhitespace; }

void ds_newlines(const CodepointText& t, size_t b, size_t e, std::vector<size_t>& ends) {
  isolate(b, e, ends, [&](size_t from) -> Match {
    for (size_t s = from; s < e; ++s)
      if (t.cps[s] == '\r' || t.cps[s] == '\n') return {s, s + 1};
    return {e, e};
  });
}

void ds_letters(const CodepointText& t, size_t b, size_t e, std::vector<size_t>& ends) {
  split_runs_after_space(t, b, e, ends, [&](size_t i) {
    return !is_ws(t, i) && in_ranges(kDeepseekLetters, t.cps[i]);
  });
}

void ds_punct(const CodepointText& t, size_t b, size_t e, std::vector<size_t>& ends) {
  split_runs_after_space(t, b, e, ends, [&](size_t i) {
    return !is_ws(t, i) && in_ranges(kDeepseekPunct, t.cps[i]);
  });
}

// \s+$ : the whitespace that ends the part.
void ds_trailing_space(const CodepointText& t, size_t b, size_t e, std::vector<size_t>& ends) {
  size_t s = e;
  while (s > b && is_ws(t, s - 1)) --s;
  if (s > b) ends.push_back(s);
  ends.push_back(e);
}

void ds_cjk(const CodepointText& t, size_t b, size_t e, std::vector<size_t>& ends) {
  split_runs(b, e, ends, [&](size_t i) { return !is_ws(t, i) && in_ranges(kDeepseekCjk, t.cps[i]); });
}

void numbers(const CodepointText& t, size_t b, size_t e, std::vector<size_t>& ends) {
  split_runs(b, e, ends, [&](size_t i) { return (t.flags[i] & kNumber) != 0; });
}

// [\p{P}\$\+<=>\^~\|]+
void default_punct(const CodepointText& t, size_t b, size_t e, std::vector<size_t>& ends) {
  split_runs(b, e, ends, [&](size_t i) {
    const uint32_t c = t.cps[i];
    return (t.flags[i] & kPunct) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
           c == '^' || c == '~' || c == '|';
  });
}

// [0-9][0-9][0-9]
void default_digit_triples(const CodepointText& t, size_t b, size_t e, std::vector<size_t>& ends) {
  auto digit = [&](size_t i) { return t.cps[i] >= '0' && t.cps[i] <= '9'; };
  isolate(b, e, ends, [&](size_t from) -> Match {
    for (size_t s = from; s + 3 <= e; ++s)
      if (digit(s) && digit(s + 1) && digit(s + 2)) return {s, s + 3};
    return {e, e};
  });
}

}  // namespace

std::vector<Splitter> deepseek_llm_sequence() {
  return {ds_newlines, ds_letters, ds_punct, ds_trailing_space, ds_cjk, numbers};
}

std::vector<Splitter> default_sequence() {
  return {default_punct, split_gpt2, numbers, default_digit_triples};
}

}  // namespace strata::tok::detail
