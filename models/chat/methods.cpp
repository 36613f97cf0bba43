// Python methods of str, dict and list that chat templates call (x.strip(), d.items(), ...).
// list.append mutates in place, which jinja2's immutable sandbox would refuse; templates
// written for llama.cpp rely on it, so it is allowed here.
#include <algorithm>
#include <array>

#include "models/chat/builtins.h"
#include "models/chat/evaluator.h"
#include "models/chat/text.h"

namespace strata::chat {
namespace {

constexpr std::array kStrMethods = {"startswith", "endswith", "split",  "rsplit",  "strip",   "lstrip",  "rstrip",
                                    "lower",      "upper",    "title",  "capitalize", "replace", "find", "rfind",
                                    "index",      "rindex",   "count",  "format",  "join",    "splitlines",
                                    "isdigit",    "isalpha",  "isalnum", "isspace", "islower", "isupper", "isnumeric",
                                    "swapcase",   "zfill",    "center", "ljust",   "rjust"};
constexpr std::array kDictMethods = {"items", "keys", "values", "get", "copy"};
constexpr std::array kListMethods = {"append", "index", "count", "copy", "extend", "insert", "pop"};

template <size_t N>
bool listed(const std::array<const char*, N>& names, std::string_view n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

std::optional<std::string> opt_str(const Args& a, size_t i, std::string_view name) {
  const Value* v = arg(a, i, name);
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) fault("{} must be str or None, not {}", name, v->type_name());
  return v->as_string();
}

bool affix(const std::string& s, const Value& what, bool prefix) {
  auto test = [&](const Value& p) {
    if (!p.is_string()) fault("{}with first arg must be str or a tuple of str", prefix ? "starts" : "ends");
    const std::string& x = p.as_string();
    return x.size() <= s.size() && (prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0);
  };
  if (what.is_list()) return std::any_of(what.as_list().items.begin(), what.as_list().items.end(), test);
  return test(what);
}

Value strings(std::vector<std::string> parts) {
  std::vector<Value> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.emplace_back(std::move(p));
  return Value::list(std::move(out));
}

template <typename Pred>
Value all_chars(const std::string& s, Pred p) {
  const std::u32string cps = text::decode(s);
  return Value(!cps.empty() && std::all_of(cps.begin(), cps.end(), p));
}

Value pad(const std::string& s, int64_t width, const std::string& fill, int where) {  // where: -1 left, 0 center, 1 right
  const auto n = int64_t(text::length(s));
  if (width <= n) return Value(s);
  const int64_t total = width - n;
  const int64_t left = where < 0 ? 0 : where > 0 ? total : total / 2 + (total & width & 1);
  return Value(text::repeat(fill, left) + s + text::repeat(fill, total - left));
}

Value str_method(Evaluator& ev, const std::string& s, std::string_view m, Args& a) {
  if (m == "startswith" || m == "endswith") {
    const Value* what = arg(a, 0, "prefix");
    if (!what) fault("{}() takes at least 1 argument", m);
    return Value(affix(s, *what, m == "startswith"));
  }
  if (m == "split" || m == "rsplit") {
    const auto sep = opt_str(a, 0, "sep");
    if (sep && sep->empty()) fault("empty separator");
    const int64_t maxsplit = arg_int(a, 1, "maxsplit", -1);
    return strings(m == "split" ? text::split(s, sep, maxsplit) : text::rsplit(s, sep, maxsplit));
  }
  if (m == "strip" || m == "lstrip" || m == "rstrip")
    return Value(text::strip(s, opt_str(a, 0, "chars"), m != "rstrip", m != "lstrip"));
  if (m == "lower") return Value(text::lower(s));
  if (m == "upper") return Value(text::upper(s));
  if (m == "title") return Value(text::title(s));
  if (m == "capitalize") return Value(text::capitalize(s));
  if (m == "swapcase") {
    std::u32string cps = text::decode(s);
    for (char32_t& c : cps) c = text::is_cased_upper(c) ? text::to_lower(c) : text::to_upper(c);
    return Value(text::encode(cps));
  }
  if (m == "replace") {
    std::string out = text::replace(s, arg_str(a, 0, "old", ""), arg_str(a, 1, "new", ""), arg_int(a, 2, "count", -1));
    ev.check_size(out.size());
    return Value(std::move(out));
  }
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex") {
    const std::string sub = arg_str(a, 0, "sub", "");
    const bool from_right = m[0] == 'r';
    const int64_t start = arg_int(a, 1, "start", 0);
    const auto n = int64_t(text::length(s));
    const int64_t end = arg_int(a, 2, "end", n);
    const auto lo = size_t(std::clamp<int64_t>(start < 0 ? start + n : start, 0, n));
    const auto hi = size_t(std::clamp<int64_t>(end < 0 ? end + n : end, 0, n));
    const std::string window = lo < hi ? text::substr(s, lo, hi - lo) : std::string();
    const size_t hit = lo > hi ? std::string::npos : from_right ? window.rfind(sub) : window.find(sub);
    if (hit == std::string::npos) {
      if (m == "index" || m == "rindex") fault("substring not found");
      return Value(int64_t(-1));
    }
    return Value(int64_t(lo + text::codepoint_index(window, hit)));
  }
  if (m == "count") return Value(int64_t(text::count(s, arg_str(a, 0, "sub", ""))));
  if (m == "format") return Value(str_format(s, a, ev.limits().max_output_bytes));
  if (m == "join") {
    const Value* items = arg(a, 0, "iterable");
    if (!items) fault("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& item : items->iterate()) {
      if (!item.is_string()) fault("sequence item: expected str instance, {} found", item.type_name());
      if (!first) out += s;
      first = false;
      out += item.as_string();
      ev.check_size(out.size());
    }
    return Value(std::move(out));
  }
  if (m == "splitlines") return strings(text::splitlines(s, arg_bool(a, 0, "keepends", false)));
  if (m == "isdigit" || m == "isnumeric") return all_chars(s, [](char32_t c) { return c >= '0' && c <= '9'; });
  if (m == "isalpha") return all_chars(s, text::is_alpha);
  if (m == "isalnum") return all_chars(s, [](char32_t c) { return (c >= '0' && c <= '9') || text::is_alpha(c); });
  if (m == "isspace") return all_chars(s, text::is_space);
  if (m == "islower" || m == "isupper") {
    const bool lower = m == "islower";
    bool cased = false;
    for (char32_t c : text::decode(s)) {
      if (lower ? text::is_cased_upper(c) : text::is_cased_lower(c)) return Value(false);
      cased = cased || (lower ? text::is_cased_lower(c) : text::is_cased_upper(c));
    }
    return Value(cased);
  }
  if (m == "zfill") {
    const int64_t width = arg_int(a, 0, "width", 0);
    const auto n = int64_t(text::length(s));
    if (width <= n) return Value(s);
    ev.check_size(size_t(width));  // the padding alone would be that large
    const bool sign = !s.empty() && (s[0] == '-' || s[0] == '+');
    return Value((sign ? s.substr(0, 1) : "") + std::string(size_t(width - n), '0') + (sign ? s.substr(1) : s));
  }
  const int where = m == "center" ? 0 : m == "ljust" ? -1 : 1;
  const int64_t width = arg_int(a, 0, "width", 0);
  if (width > 0) ev.check_size(size_t(width));  // the padding alone would be that large
  return pad(s, width, arg_str(a, 1, "fillchar", " "), where);
}

Value dict_method(const Value& d, std::string_view m, Args& a) {
  const auto& entries = d.as_dict().entries;
  if (m == "get") {
    const Value* key = arg(a, 0, "key");
    if (!key) fault("get expected at least 1 argument, got 0");
    if (const Value* v = d.as_dict().find(*key)) return *v;
    return arg_or(a, 1, "default", Value(NoneT{}));
  }
  if (m == "copy") {
    auto copy = std::make_shared<DictObj>(d.as_dict());
    return Value(std::move(copy));
  }
  std::vector<Value> out;
  out.reserve(entries.size());
  for (const auto& [k, v] : entries) {
    if (m == "items") out.push_back(Value::list({k, v}, true));
    else out.push_back(m == "keys" ? k : v);
  }
  return Value::list(std::move(out));
}

Value list_method(Evaluator& ev, const Value& l, std::string_view m, Args& a) {
  auto& items = l.as_list().items;
  if (m == "append") {
    if (a.pos.size() != 1) fault("append() takes exactly one argument");
    ev.check_size(items.size() + 1);
    items.push_back(a.pos[0]);
    ev.note_mutation(l);
    return Value(NoneT{});
  }
  if (m == "extend") {
    if (a.pos.size() != 1) fault("extend() takes exactly one argument");
    for (Value& v : a.pos[0].iterate()) items.push_back(std::move(v));
    ev.check_size(items.size());
    ev.note_mutation(l);
    return Value(NoneT{});
  }
  if (m == "insert") {
    if (a.pos.size() != 2) fault("insert expected 2 arguments");
    const auto n = int64_t(items.size());
    int64_t i = a.pos[0].to_int();
    i = std::clamp<int64_t>(i < 0 ? i + n : i, 0, n);
    items.insert(items.begin() + i, a.pos[1]);
    ev.note_mutation(l);
    return Value(NoneT{});
  }
  if (m == "pop") {
    if (items.empty()) fault("pop from empty list");
    const auto n = int64_t(items.size());
    int64_t i = a.pos.empty() ? n - 1 : a.pos[0].to_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) fault("pop index out of range");
    Value v = items[size_t(i)];
    items.erase(items.begin() + i);
    return v;
  }
  if (m == "copy") return Value::list(items, l.as_list().tuple);
  if (a.pos.empty()) fault("{}() takes exactly one argument", m);
  if (m == "count")
    return Value(int64_t(std::count_if(items.begin(), items.end(), [&](const Value& v) { return equals(v, a.pos[0]); })));
  for (size_t i = 0; i < items.size(); ++i)
    if (equals(items[i], a.pos[0])) return Value(int64_t(i));
  fault("{} is not in list", a.pos[0].repr());
}

}  // namespace

bool has_method(const Value& obj, std::string_view name) {
  if (obj.is_string()) return listed(kStrMethods, name);
  if (obj.is_dict()) return listed(kDictMethods, name);
  if (obj.is_list()) return obj.as_list().tuple ? (name == "index" || name == "count") : listed(kListMethods, name);
  return false;
}

Value call_method(Evaluator& ev, const Value& obj, std::string_view name, Args& args) {
  if (obj.is_string()) return str_method(ev, obj.as_string(), name, args);
  if (obj.is_dict()) return dict_method(obj, name, args);
  if (obj.is_list()) return list_method(ev, obj, name, args);
  fault("'{}' object has no attribute '{}'", obj.type_name(), name);
}

}  // namespace strata::chat
