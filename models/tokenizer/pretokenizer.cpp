// The single-regex pre-tokenizers (GPT-2, Llama 3, Qwen 2) as scanners, and the dispatch.
//
// Each scanner reproduces what the regex matches at a position, trying the alternatives in the
// regex's order, as llama.cpp's reference splitter does. A part handed to a splitter is a
// closed world: look-ahead stops at its end (a special token cuts the text into such parts).
#include "models/tokenizer/pretokenizer.h"

#include "models/tokenizer/unicode.h"

namespace strata::tok {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kWhitespace;

namespace detail {

CodepointText decode_text(std::string_view text) {
  CodepointText t;
  t.cps.reserve(text.size());
  t.flags.reserve(text.size());
  t.offsets.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    const unicode::Decoded d = unicode::decode_utf8(text, pos);
    t.cps.push_back(d.cp);
    t.flags.push_back(unicode::cp_flags(d.cp));
    t.offsets.push_back(uint32_t(pos));
    pos += d.len;
  }
  t.offsets.push_back(uint32_t(text.size()));
  return t;
}

namespace {

constexpr uint32_t kEnd = 0xFFFFFFFFu;

// The view of one part: code points and flags past its end read as "nothing".
struct Part {
  const CodepointText& t;
  size_t end;
  std::vector<size_t>& ends;
  uint32_t cp(size_t i) const { return i < end ? t.cps[i] : kEnd; }
  uint8_t flag(size_t i) const { return i < end ? t.flags[i] : 0; }
  // An empty piece is never emitted (a {1,3} digit run ending at a group boundary would).
  size_t cut(size_t at) {
    if (ends.empty() || ends.back() < at) ends.push_back(at);
    return at;
  }
};

// 's 't 're 've 'm 'll 'd at pos (which holds an apostrophe); returns its length or 0.
size_t contraction_len(const Part& p, size_t pos, bool any_case) {
  auto norm = [&](uint32_t c) { return any_case ? unicode::to_lower(c) : c; };
  const uint32_t c1 = norm(p.cp(pos + 1));
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  const uint32_t c2 = norm(p.cp(pos + 2));
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

bool is_other(uint8_t f) { return !(f & (kWhitespace | kLetter | kNumber)); }

// \s+(?!\S)|\s+ at pos, or 0 when pos is not whitespace: a run of whitespace followed by more
// text leaves its last character to start the next word (" word").
size_t whitespace_len(const Part& p, size_t pos) {
  size_t n = 0;
  while (p.flag(pos + n) & kWhitespace) ++n;
  if (n > 1 && pos + n < p.end) return n - 1;
  return n;
}

}  // namespace

void split_gpt2(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends) {
  Part p{t, end, ends};
  for (size_t pos = begin; pos < end;) {
    const uint32_t c = t.cps[pos];
    if (c == '\'') {
      if (size_t n = contraction_len(p, pos, false)) {
        pos = p.cut(pos + n);
        continue;
      }
    }
    // ' ?' prefixes the letter, number and other-symbol runs.
    const size_t start = c == ' ' ? pos + 1 : pos;
    const uint8_t f = p.flag(start);
    if (start < end && (f & kLetter)) {
      size_t q = start;
      while (p.flag(q) & kLetter) ++q;
      pos = p.cut(q);
      continue;
    }
    if (start < end && (f & kNumber)) {
      size_t q = start;
      while (p.flag(q) & kNumber) ++q;
      pos = p.cut(q);
      continue;
    }
    if (start < end && is_other(f)) {
      size_t q = start;
      while (q < end && is_other(p.flag(q))) ++q;
      pos = p.cut(q);
      continue;
    }
    if (size_t n = whitespace_len(p, pos)) {
      pos = p.cut(pos + n);
      continue;
    }
    pos = p.cut(pos + 1);  // unreachable for valid flags; keeps the loop total
  }
  p.cut(end);
}

namespace {

void split_llama3_like(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends,
                       size_t max_digits) {
  Part p{t, end, ends};
  auto is_newline = [](uint32_t c) { return c == '\r' || c == '\n'; };
  for (size_t pos = begin; pos < end;) {
    const uint32_t c = t.cps[pos];
    const uint8_t f = t.flags[pos];
    if (c == '\'') {
      if (size_t n = contraction_len(p, pos, true)) {
        pos = p.cut(pos + n);
        continue;
      }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!is_newline(c) && !(f & kNumber) && ((f & kLetter) || (p.flag(pos + 1) & kLetter))) {
      size_t q = pos + 1;
      while (p.flag(q) & kLetter) ++q;
      pos = p.cut(q);
      continue;
    }
    // \p{N}{1,max_digits}
    if (f & kNumber) {
      size_t q = pos;
      while (q < end && (p.flag(q) & kNumber) && q - pos < max_digits) ++q;
      pos = p.cut(q);
      continue;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    const size_t start = c == ' ' ? pos + 1 : pos;
    if (start < end && is_other(p.flag(start))) {
      size_t q = start;
      while (q < end && is_other(p.flag(q))) ++q;
      while (is_newline(p.cp(q))) ++q;
      pos = p.cut(q);
      continue;
    }
    // \s*[\r\n]+ : whitespace up to and including its last line break
    size_t n = 0, through_newline = 0;
    while (p.flag(pos + n) & kWhitespace) {
      if (is_newline(t.cps[pos + n])) through_newline = n + 1;
      ++n;
    }
    if (through_newline > 0) {
      pos = p.cut(pos + through_newline);
      continue;
    }
    if (size_t w = whitespace_len(p, pos)) {
      pos = p.cut(pos + w);
      continue;
    }
    pos = p.cut(pos + 1);
  }
  p.cut(end);
}

}  // namespace

void split_llama3(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends) {
  split_llama3_like(t, begin, end, ends, 3);
}

void split_qwen2(const CodepointText& t, size_t begin, size_t end, std::vector<size_t>& ends) {
  split_llama3_like(t, begin, end, ends, 1);
}

}  // namespace detail

std::optional<PreTokenizerInfo> find_pre_tokenizer(const std::string& name) {
  // Names llama.cpp's converter writes for each regex family.
  static const std::pair<const char*, PreTokenizerInfo> known[] = {
      {"gpt-2", {PreTokenizer::Gpt2, false, false}},
      {"phi-2", {PreTokenizer::Gpt2, false, false}},
      {"roberta-bpe", {PreTokenizer::Gpt2, false, false}},
      {"llama3", {PreTokenizer::Llama3, true, true}},
      {"llama-v3", {PreTokenizer::Llama3, true, true}},
      {"llama-bpe", {PreTokenizer::Llama3, true, true}},
      {"falcon3", {PreTokenizer::Llama3, true, true}},
      {"dbrx", {PreTokenizer::Llama3, false, false}},
      {"smaug-bpe", {PreTokenizer::Llama3, false, false}},
      {"qwen2", {PreTokenizer::Qwen2, false, false}},
      {"deepseek-r1-qwen", {PreTokenizer::Qwen2, false, false}},
      {"deepseek-llm", {PreTokenizer::DeepseekLlm, false, false}},
      {"default", {PreTokenizer::Default, false, false}},
      {"", {PreTokenizer::Default, false, false}},
  };
  for (const auto& [n, info] : known)
    if (name == n) return info;
  return std::nullopt;
}

std::vector<std::string_view> pre_tokenize(PreTokenizer kind, std::string_view text) {
  const detail::CodepointText t = detail::decode_text(text);
  std::vector<size_t> ends;
  ends.reserve(t.size() / 3 + 1);
  switch (kind) {
    case PreTokenizer::Gpt2: detail::split_gpt2(t, 0, t.size(), ends); break;
    case PreTokenizer::Llama3: detail::split_llama3(t, 0, t.size(), ends); break;
    case PreTokenizer::Qwen2: detail::split_qwen2(t, 0, t.size(), ends); break;
    case PreTokenizer::DeepseekLlm:
    case PreTokenizer::Default: {
      ends.push_back(t.size());
      const auto steps = kind == PreTokenizer::DeepseekLlm ? detail::deepseek_llm_sequence()
                                                           : detail::default_sequence();
      for (detail::Splitter step : steps) {
        std::vector<size_t> refined;
        refined.reserve(ends.size() * 2);
        size_t begin = 0;
        for (size_t e : ends) {
          step(t, begin, e, refined);
          begin = e;
        }
        ends = std::move(refined);
      }
      break;
    }
  }
  std::vector<std::string_view> words;
  words.reserve(ends.size());
  size_t begin = 0;
  for (size_t e : ends) {
    if (e == begin) continue;
    words.push_back(text.substr(t.offsets[begin], t.offsets[e] - t.offsets[begin]));
    begin = e;
  }
  return words;
}

}  // namespace strata::tok
