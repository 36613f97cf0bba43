// Filters on single values: strings, numbers, JSON, defaults. Sequence filters live in
// filters_seq.cpp; both register in the one table find_filter() reads.
#include <cmath>
#include <unordered_map>

#include "models/chat/builtins.h"
#include "models/chat/evaluator.h"
#include "models/chat/filters_impl.h"
#include "models/chat/text.h"

namespace strata::chat {
namespace {

Value f_default(Evaluator&, const Value& v, Args& a) {
  const bool boolean = arg_bool(a, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !v.truthy())) return arg_or(a, 0, "default_value", Value(""));
  return v;
}

Value f_string(Evaluator&, const Value& v, Args&) { return Value(v.str()); }
Value f_safe(Evaluator&, const Value& v, Args&) { return v; }
Value f_lower(Evaluator&, const Value& v, Args&) { return Value(text::lower(v.str())); }
Value f_upper(Evaluator&, const Value& v, Args&) { return Value(text::upper(v.str())); }
Value f_capitalize(Evaluator&, const Value& v, Args&) { return Value(text::capitalize(v.str())); }

// jinja2's title filter: words start after whitespace, '-', or an opening bracket.
Value f_title(Evaluator&, const Value& v, Args&) {
  std::u32string cps = text::decode(v.str());
  bool start = true;
  for (char32_t& c : cps) {
    const bool sep = text::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    c = sep ? c : start ? text::to_upper(c) : text::to_lower(c);
    start = sep;
  }
  return Value(text::encode(cps));
}

Value f_trim(Evaluator&, const Value& v, Args& a) {
  const Value* chars = arg(a, 0, "chars");
  std::optional<std::string> set;
  if (chars && !chars->is_none()) set = chars->str();
  return Value(text::strip(v.str(), set, true, true));
}

Value f_replace(Evaluator& ev, const Value& v, Args& a) {
  const Value* count = arg(a, 2, "count");
  std::string out = text::replace(v.str(), arg_str(a, 0, "old", ""), arg_str(a, 1, "new", ""),
                                  count && !count->is_none() ? count->to_int() : -1);
  ev.check_size(out.size());
  return Value(std::move(out));
}

Value f_escape(Evaluator&, const Value& v, Args&) {
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(std::move(out));
}

Value f_indent(Evaluator& ev, const Value& v, Args& a) {
  const Value width = arg_or(a, 0, "width", Value(4));
  if (!width.is_string()) ev.check_size(size_t(std::max<int64_t>(0, width.to_int())));
  const std::string pad = width.is_string() ? width.as_string() : std::string(size_t(std::max<int64_t>(0, width.to_int())), ' ');
  const bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
  // jinja2 appends a newline before splitting, so a trailing newline leaves an empty last line.
  const std::vector<std::string> lines = text::splitlines(v.str() + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    if (i > 0 && (blank || !lines[i].empty())) out += pad;
    out += lines[i];
  }
  return Value(first ? pad + out : out);
}

Value f_truncate(Evaluator&, const Value& v, Args& a) {
  const std::string s = v.str();
  const int64_t length = arg_int(a, 0, "length", 255);
  const bool killwords = arg_bool(a, 1, "killwords", false);
  const std::string end = arg_str(a, 2, "end", "...");
  const int64_t leeway = arg_int(a, 3, "leeway", 5);
  const auto n = int64_t(text::length(s));
  if (n <= length + leeway) return Value(s);
  const int64_t keep = std::max<int64_t>(0, length - int64_t(text::length(end)));
  std::string cut = text::substr(s, 0, size_t(keep));
  if (!killwords) {
    const size_t sp = cut.rfind(' ');
    if (sp != std::string::npos) cut.resize(sp);
  }
  return Value(cut + end);
}

Value f_wordcount(Evaluator&, const Value& v, Args&) {
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : text::decode(v.str())) {
    const bool w = c == '_' || (c >= '0' && c <= '9') || text::is_alpha(c) || (c >= 0x80 && !text::is_space(c));
    if (w && !in_word) ++words;
    in_word = w;
  }
  return Value(words);
}

Value f_center(Evaluator& ev, const Value& v, Args& a) {
  const std::string s = v.str();
  const int64_t width = arg_int(a, 0, "width", 80);
  const auto n = int64_t(text::length(s));
  if (width <= n) return Value(s);
  ev.check_size(size_t(width));  // the padding alone would be that large
  const int64_t pad = width - n;
  const int64_t left = pad / 2 + (pad & width & 1);
  return Value(std::string(size_t(left), ' ') + s + std::string(size_t(pad - left), ' '));
}

Value f_format(Evaluator& ev, const Value& v, Args& a) {
  if (!a.pos.empty() && !a.kw.empty()) fault("can't handle positional and keyword arguments at the same time");
  if (!a.kw.empty()) {
    auto d = std::make_shared<DictObj>();
    for (const auto& [k, val] : a.kw) d->set(Value(k), val);
    return Value(percent_format(v.str(), Value(std::move(d)), ev.limits().max_output_bytes));
  }
  return Value(percent_format(v.str(), Value::list(a.pos, true), ev.limits().max_output_bytes));
}

Value f_tojson(Evaluator& ev, const Value& v, Args& a) {
  JsonStyle style;
  style.ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
  const Value indent = arg_or(a, 1, "indent", Value(NoneT{}));
  if (indent.is_string()) {
    style.indent_text = indent.as_string();
    style.indent = 0;
  } else if (!indent.is_none()) {
    // Each nesting level repeats the indent: it must fit the output limit (and an int).
    ev.check_size(size_t(std::max<int64_t>(0, indent.to_int())));
    style.indent = int(std::max<int64_t>(0, indent.to_int()));
  }
  const bool indented = !indent.is_none();
  if (indented) style.item_sep = ",";
  const Value seps = arg_or(a, 2, "separators", Value(NoneT{}));
  if (!seps.is_none()) {
    const std::vector<Value> parts = seps.iterate();
    if (parts.size() != 2) fault("separators must be an (item_separator, key_separator) pair");
    style.item_sep = parts[0].str();
    style.key_sep = parts[1].str();
  }
  style.sort_keys = arg_bool(a, 3, "sort_keys", false);
  std::string out = to_json(v, style);
  ev.check_size(out.size());
  return Value(std::move(out));
}

Value f_int(Evaluator&, const Value& v, Args& a) {
  const Value fallback = arg_or(a, 0, "default", Value(0));
  if (v.is_number()) return Value(v.is_float() ? int64_t(std::trunc(v.as_float())) : v.to_int());
  if (!v.is_string()) return fallback;
  const std::string s = text::strip(v.as_string(), std::nullopt, true, true);
  const int64_t base = arg_int(a, 1, "base", 10);
  try {
    size_t used = 0;
    const long long n = std::stoll(s, &used, int(base));
    if (used == s.size()) return Value(int64_t(n));
  } catch (const std::exception&) {
  }
  try {
    size_t used = 0;
    const double d = std::stod(s, &used);
    if (used == s.size() && std::isfinite(d)) return Value(int64_t(std::trunc(d)));
  } catch (const std::exception&) {
  }
  return fallback;
}

Value f_float(Evaluator&, const Value& v, Args& a) {
  const Value fallback = arg_or(a, 0, "default", Value(0.0));
  if (v.is_number()) return Value(v.to_float());
  if (!v.is_string()) return fallback;
  const std::string s = text::strip(v.as_string(), std::nullopt, true, true);
  try {
    size_t used = 0;
    const double d = std::stod(s, &used);
    if (used == s.size()) return Value(d);
  } catch (const std::exception&) {
  }
  return fallback;
}

Value f_abs(Evaluator&, const Value& v, Args&) {
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) return Value(v.to_int() < 0 ? -v.to_int() : v.to_int());
  fault("bad operand type for abs(): '{}'", v.type_name());
}

Value f_round(Evaluator&, const Value& v, Args& a) {
  if (!v.is_number()) fault("type {} doesn't define __round__ method", v.type_name());
  const int64_t precision = arg_int(a, 0, "precision", 0);
  const std::string method = arg_str(a, 1, "method", "common");
  const double x = v.to_float();
  if (method == "common") {
    // Printing with the precision rounds the exact binary value half-to-even, as Python's round().
    if (precision >= 0) return Value(std::strtod(fmt::format("{:.{}f}", x, precision).c_str(), nullptr));
    const double scale = std::pow(10.0, double(-precision));
    return Value(std::nearbyint(x / scale) * scale);
  }
  const double scale = std::pow(10.0, double(precision));
  if (method == "ceil") return Value(std::ceil(x * scale) / scale);
  if (method == "floor") return Value(std::floor(x * scale) / scale);
  fault("method must be common, ceil or floor");
}

Value f_attr(Evaluator& ev, const Value& v, Args& a) {
  const std::string name = arg_str(a, 0, "name", "");
  if (v.is_dict() && !has_method(v, name)) return Value::undefined(fmt::format("'dict object' has no attribute '{}'", name));
  return ev.getattr(v, name);
}

}  // namespace

std::vector<FilterEntry> value_filters() {
  return {{"default", f_default}, {"d", f_default},       {"string", f_string},   {"safe", f_safe},
          {"lower", f_lower},     {"upper", f_upper},     {"capitalize", f_capitalize}, {"title", f_title},
          {"trim", f_trim},       {"replace", f_replace}, {"escape", f_escape},   {"e", f_escape},
          {"forceescape", f_escape}, {"indent", f_indent}, {"truncate", f_truncate}, {"wordcount", f_wordcount},
          {"center", f_center},   {"format", f_format},   {"tojson", f_tojson},   {"int", f_int},
          {"float", f_float},     {"abs", f_abs},         {"round", f_round},     {"attr", f_attr}};
}

const FilterFn* find_filter(std::string_view name) {
  static const std::unordered_map<std::string_view, FilterFn> table = [] {
    std::unordered_map<std::string_view, FilterFn> t;
    for (const auto& [n, f] : value_filters()) t.emplace(n, f);
    for (const auto& [n, f] : sequence_filters()) t.emplace(n, f);
    return t;
  }();
  const auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

}  // namespace strata::chat
