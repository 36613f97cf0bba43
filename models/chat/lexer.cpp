#include "models/chat/lexer.h"

#include <algorithm>
#include <cctype>

#include "models/chat/text.h"
#include "storage/error.h"

namespace strata::chat {
namespace {

bool py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& name) : name_(name) {
    // jinja2 normalises every newline form to \n and drops one trailing newline.
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      size_t start = pos;
      while (true) {
        start = src_.find('{', start);
        if (start == std::string::npos || start + 1 >= src_.size()) {
          start = std::string::npos;
          break;
        }
        const char k = src_[start + 1];
        if (k == '{' || k == '%' || k == '#') break;
        ++start;
      }
      if (start == std::string::npos) {
        emit_text(src_.substr(pos));
        break;
      }
      pos = tag(pos, start);
    }
    out_.push_back({Tok::Eof, "", loc(src_.size())});
    return std::move(out_);
  }

 private:
  Loc loc(size_t off) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off) - 1;
    return {int(it - line_starts_.begin()) + 1, int(off - *it) + 1};
  }

  [[noreturn]] void error(size_t off, const std::string& what) const {
    const Loc l = loc(off);
    fail("{}:{}:{}: {}", name_, l.line, l.col, what);
  }

  void emit_text(std::string text) {
    if (!text.empty()) out_.push_back({Tok::Text, std::move(text), {}});
  }

  // Handles the text before a tag starting at `start`, then the tag; returns where text resumes.
  size_t tag(size_t pos, size_t start) {
    std::string text = src_.substr(pos, start - pos);
    const char kind = src_[start + 1];
    size_t p = start + 2;
    const bool strip_before = p < src_.size() && src_[p] == '-';
    const bool keep_before = p < src_.size() && src_[p] == '+';
    if (strip_before || keep_before) ++p;
    if (strip_before) {
      while (!text.empty() && py_space(text.back())) text.pop_back();
    } else if (!keep_before && kind != '{') {
      lstrip(text);
    }
    emit_text(std::move(text));
    size_t end;  // just past the closing delimiter
    bool strip_after = false, keep_after = false;
    if (kind == '#') {
      const size_t close = src_.find("#}", p);
      if (close == std::string::npos) error(start, "unterminated comment, expected '#}'");
      strip_after = close > p && src_[close - 1] == '-';
      end = close + 2;
    } else {
      const Loc at = loc(start);
      out_.push_back({kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", at});
      end = expression(p, kind == '{' ? "}}" : "%}", start, strip_after, keep_after);
    }
    if (kind == '%' && is_raw_tag()) return raw(end, strip_after);
    return after_tag(end, strip_after, !keep_after && kind != '{');
  }

  void lstrip(std::string& text) {
    const size_t nl = text.rfind('\n');
    const size_t from = nl == std::string::npos ? 0 : nl + 1;
    if (nl == std::string::npos && !line_starting_) return;
    for (size_t i = from; i < text.size(); ++i)
      if (text[i] != ' ' && text[i] != '\t') return;
    text.resize(from);
  }

  size_t after_tag(size_t end, bool strip_after, bool trim_newline) {
    if (strip_after) {
      while (end < src_.size() && py_space(src_[end])) ++end;
    } else if (trim_newline && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    return end;
  }

  bool is_raw_tag() const {
    const size_t n = out_.size();
    return n >= 3 && out_[n - 3].type == Tok::BlockBegin && out_[n - 2].type == Tok::Name &&
           out_[n - 2].value == "raw" && out_[n - 1].type == Tok::BlockEnd;
  }

  // {% raw %}...{% endraw %}: the body is text, tags and all.
  size_t raw(size_t body, bool strip_after) {
    const size_t raw_start = out_[out_.size() - 3].loc.line;
    out_.resize(out_.size() - 3);
    body = after_tag(body, strip_after, true);
    for (size_t s = src_.find("{%", body); s != std::string::npos; s = src_.find("{%", s + 2)) {
      size_t p = s + 2;
      const bool minus = p < src_.size() && (src_[p] == '-' || src_[p] == '+');
      if (minus) ++p;
      while (p < src_.size() && py_space(src_[p])) ++p;
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      while (p < src_.size() && py_space(src_[p])) ++p;
      const bool strip_end = p < src_.size() && src_[p] == '-';
      if (strip_end) ++p;
      if (src_.compare(p, 2, "%}") != 0) continue;
      std::string text = src_.substr(body, s - body);
      if (minus && src_[s + 2] == '-') {
        while (!text.empty() && py_space(text.back())) text.pop_back();
      } else if (!minus) {
        lstrip(text);
      }
      emit_text(std::move(text));
      return after_tag(p + 2, strip_end, true);
    }
    fail("{}:{}:1: unterminated raw block, expected '{{% endraw %}}'", name_, raw_start);
  }

  size_t expression(size_t p, std::string_view close, size_t tag_start, bool& strip_after, bool& keep_after) {
    int depth = 0;
    while (true) {
      while (p < src_.size() && py_space(src_[p])) ++p;
      if (p >= src_.size()) error(tag_start, fmt::format("unexpected end of template, expected '{}'", close));
      if (depth == 0) {
        const bool minus = src_[p] == '-' && src_.compare(p + 1, close.size(), close) == 0;
        const bool plus = close == "%}" && src_[p] == '+' && src_.compare(p + 1, close.size(), close) == 0;
        if (minus || plus || src_.compare(p, close.size(), close) == 0) {
          strip_after = minus;
          keep_after = plus;
          const size_t at = p;
          p += close.size() + (minus || plus ? 1 : 0);
          out_.push_back({close == "}}" ? Tok::VarEnd : Tok::BlockEnd, "", loc(at)});
          return p;
        }
      }
      const char c = src_[p];
      const Loc at = loc(p);
      if (name_start(c)) {
        size_t e = p;
        while (e < src_.size() && name_char(src_[e])) ++e;
        out_.push_back({Tok::Name, src_.substr(p, e - p), at});
        p = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        p = number(p, at);
      } else if (c == '\'' || c == '"') {
        p = string(p, at);
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                           ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
        std::string_view op;
        for (const char* o : kOps)
          if (src_.compare(p, std::char_traits<char>::length(o), o) == 0) {
            op = o;
            break;
          }
        if (op.empty()) error(p, fmt::format("unexpected character '{}'", c));
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        out_.push_back({Tok::Op, std::string(op), at});
        p += op.size();
      }
    }
  }

  size_t number(size_t p, Loc at) {
    auto digits = [&](size_t q) {
      while (q < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
      return q;
    };
    size_t e = digits(p);
    bool is_float = false;
    // After a '.', digits are an attribute index (x.0), never a float's fraction.
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    if (!after_dot && e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      e = digits(e + 1);
      is_float = true;
    }
    if (!after_dot && e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t q = e + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
        e = digits(q);
        is_float = true;
      }
    }
    std::string v;
    for (size_t i = p; i < e; ++i)
      if (src_[i] != '_') v += src_[i];
    out_.push_back({is_float ? Tok::Float : Tok::Int, v, at});
    return e;
  }

  size_t string(size_t p, Loc at) {
    const char quote = src_[p];
    std::string v;
    size_t i = p + 1;
    auto hex = [&](size_t n) -> char32_t {
      if (i + n >= src_.size()) error(i, "truncated escape in string literal");
      char32_t cp = 0;
      for (size_t k = 0; k < n; ++k) {
        const char h = src_[i + 1 + k];
        if (!std::isxdigit(static_cast<unsigned char>(h))) error(i, "bad hexadecimal escape in string literal");
        cp = cp * 16 + char32_t(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (h | 32) - 'a' + 10);
      }
      i += n;
      return cp;
    };
    for (; i < src_.size() && src_[i] != quote; ++i) {
      if (src_[i] != '\\' || i + 1 >= src_.size()) {
        v += src_[i];
        continue;
      }
      const char e = src_[++i];
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case 'a': v += '\a'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'v': v += '\v'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case '\n': break;  // a backslash-newline continues the line
        case 'x': text::append_utf8(v, hex(2)); break;
        case 'u': text::append_utf8(v, hex(4)); break;
        case 'U': text::append_utf8(v, hex(8)); break;
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = char32_t(e - '0');
            for (int k = 0; k < 2 && i + 1 < src_.size() && src_[i + 1] >= '0' && src_[i + 1] <= '7'; ++k)
              cp = cp * 8 + char32_t(src_[++i] - '0');
            text::append_utf8(v, cp);
          } else {
            v += '\\';
            v += e;
          }
      }
    }
    if (i >= src_.size()) error(p, "unterminated string literal");
    out_.push_back({Tok::String, std::move(v), at});
    return i + 1;
  }

  std::string src_;
  const std::string& name_;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;
  bool line_starting_ = true;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const std::string& name) { return Lexer(source, name).run(); }

}  // namespace strata::chat
