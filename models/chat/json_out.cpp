// tojson as transformers defines it: Python's json.dumps, byte for byte.
#include <algorithm>
#include <cmath>

#include "models/chat/text.h"
#include "models/chat/value.h"

namespace strata::chat {
namespace {

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  auto escape_unit = [&](uint32_t u) { out += fmt::format("\\u{:04x}", u); };
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
      escape_unit(c);
    } else if (c < 0x80 || !ensure_ascii) {
      out += char(c);
    } else {
      size_t len = 1;
      while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
      for (char32_t cp : text::decode(s.substr(i, len))) {
        if (cp >= 0x10000) {
          escape_unit(0xD800 + ((cp - 0x10000) >> 10));
          escape_unit(0xDC00 + ((cp - 0x10000) & 0x3FF));
        } else {
          escape_unit(cp);
        }
      }
      i += len - 1;
    }
  }
  out += '"';
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return float_repr(d);
}

std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Value::Kind::String: return k.as_string();
    case Value::Kind::Bool: return k.as_bool() ? "true" : "false";
    case Value::Kind::None: return "null";
    case Value::Kind::Int: return std::to_string(k.as_int());
    case Value::Kind::Float: return json_float(k.as_float());
    default: fault("keys must be str, int, float, bool or None, not {}", k.type_name());
  }
}

struct Writer {
  const JsonStyle& style;
  std::string out;

  void newline(int level) {
    if (style.indent < 0 && style.indent_text.empty()) return;
    out += '\n';
    const std::string unit = style.indent_text.empty() ? std::string(size_t(style.indent), ' ') : style.indent_text;
    for (int i = 0; i < level; ++i) out += unit;
  }

  void write(const Value& v, int level) {
    if (level > kMaxValueDepth) fault("a value nested deeper than {} levels (a circular reference?)", kMaxValueDepth);
    switch (v.kind()) {
      case Value::Kind::None: out += "null"; return;
      case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
      case Value::Kind::Int: out += std::to_string(v.as_int()); return;
      case Value::Kind::Float: out += json_float(v.as_float()); return;
      case Value::Kind::String: append_json_string(out, v.as_string(), style.ensure_ascii); return;
      case Value::Kind::List: {
        const auto& items = v.as_list().items;
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += style.item_sep;
          newline(level + 1);
          write(items[i], level + 1);
        }
        newline(level);
        out += ']';
        return;
      }
      case Value::Kind::Dict: {
        std::vector<std::pair<std::string, const Value*>> entries;
        for (const auto& [k, val] : v.as_dict().entries) entries.emplace_back(json_key(k), &val);
        if (style.sort_keys)
          std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        if (entries.empty()) {
          out += "{}";
          return;
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += style.item_sep;
          newline(level + 1);
          append_json_string(out, entries[i].first, style.ensure_ascii);
          out += style.key_sep;
          write(*entries[i].second, level + 1);
        }
        newline(level);
        out += '}';
        return;
      }
      default: fault("Object of type {} is not JSON serializable", v.type_name());
    }
  }
};

}  // namespace

std::string to_json(const Value& v, const JsonStyle& style) {
  Writer w{style, {}};
  w.write(v, 0);
  return std::move(w.out);
}

}  // namespace strata::chat
