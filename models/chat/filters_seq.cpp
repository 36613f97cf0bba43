// Filters over sequences and mappings. jinja2 returns generators from select/map and friends;
// here they return lists, which print and iterate the same way templates use them.
#include <algorithm>
#include <charconv>

#include "models/chat/builtins.h"
#include "models/chat/evaluator.h"
#include "models/chat/filters_impl.h"
#include "models/chat/text.h"

namespace strata::chat {
namespace {

// attribute="a.b.0": item lookups along a dotted path, digits as indices.
Value attribute_of(Evaluator& ev, const Value& item, const std::string& path) {
  Value cur = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    // Digits index a list; more than fit 64 bits are refused (std::stoll threw out_of_range).
    int64_t index = 0;
    if (digits && std::from_chars(part.data(), part.data() + part.size(), index).ec != std::errc())
      fault("attribute index '{}' is out of range", part);
    cur = ev.getitem(cur, digits ? Value(index) : Value(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// The key a case-insensitive sort or comparison uses: lower-cased strings.
Value sort_key(Evaluator& ev, const Value& item, const Value* attribute, bool case_sensitive) {
  Value k = attribute && !attribute->is_none() ? attribute_of(ev, item, attribute->str()) : item;
  if (!case_sensitive && k.is_string()) return Value(text::lower(k.as_string()));
  return k;
}

Value f_length(Evaluator&, const Value& v, Args&) { return Value(int64_t(v.length())); }
Value f_list(Evaluator&, const Value& v, Args&) { return Value::list(v.iterate()); }

Value f_first(Evaluator&, const Value& v, Args&) {
  const std::vector<Value> items = v.iterate();
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Evaluator&, const Value& v, Args&) {
  const std::vector<Value> items = v.iterate();
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_join(Evaluator& ev, const Value& v, Args& a) {
  const std::string sep = arg_str(a, 0, "d", "");
  const Value* attribute = arg(a, 1, "attribute");
  std::string out;
  bool first = true;
  for (const Value& item : v.iterate()) {
    if (!first) out += sep;
    first = false;
    out += (attribute && !attribute->is_none() ? attribute_of(ev, item, attribute->str()) : item).str();
    ev.check_size(out.size());
  }
  return Value(std::move(out));
}

Value f_items(Evaluator&, const Value& v, Args&) {
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict()) fault("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  out.reserve(v.as_dict().entries.size());
  for (const auto& [k, val] : v.as_dict().entries) out.push_back(Value::list({k, val}, true));
  return Value::list(std::move(out));
}

Value f_dictsort(Evaluator& ev, const Value& v, Args& a) {
  if (!v.is_dict()) fault("dictsort needs a mapping, got {}", v.type_name());
  const bool case_sensitive = arg_bool(a, 0, "case_sensitive", false);
  const std::string by = arg_str(a, 1, "by", "key");
  const bool reverse = arg_bool(a, 2, "reverse", false);
  if (by != "key" && by != "value") fault("You can only sort by either \"key\" or \"value\"");
  std::vector<Value> pairs = f_items(ev, v, a).as_list().items;
  const size_t idx = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    const int c = compare(sort_key(ev, x.as_list().items[idx], nullptr, case_sensitive),
                          sort_key(ev, y.as_list().items[idx], nullptr, case_sensitive));
    return reverse ? c > 0 : c < 0;
  });
  return Value::list(std::move(pairs));
}

// select/reject/selectattr/rejectattr share this: keep items whose test result matches `keep`.
Value filter_items(Evaluator& ev, const Value& v, Args& a, bool by_attribute, bool keep) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (a.pos.empty()) fault("selectattr/rejectattr need an attribute name");
    attribute = a.pos[next++].str();
  }
  std::string test;
  if (next < a.pos.size()) test = a.pos[next++].str();
  Args test_args;
  test_args.pos.assign(a.pos.begin() + std::ptrdiff_t(next), a.pos.end());
  test_args.kw = a.kw;
  std::vector<Value> out;
  for (const Value& item : v.iterate()) {
    ev.step();
    const Value subject = by_attribute ? attribute_of(ev, item, attribute) : item;
    Args call_args = test_args;
    const bool ok = test.empty() ? subject.truthy() : ev.apply_test(test, subject, call_args);
    if (ok == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_select(Evaluator& ev, const Value& v, Args& a) { return filter_items(ev, v, a, false, true); }
Value f_reject(Evaluator& ev, const Value& v, Args& a) { return filter_items(ev, v, a, false, false); }
Value f_selectattr(Evaluator& ev, const Value& v, Args& a) { return filter_items(ev, v, a, true, true); }
Value f_rejectattr(Evaluator& ev, const Value& v, Args& a) { return filter_items(ev, v, a, true, false); }

Value f_map(Evaluator& ev, const Value& v, Args& a) {
  std::vector<Value> out;
  const Value* attribute = nullptr;
  for (const auto& [k, val] : a.kw)
    if (k == "attribute") attribute = &val;
  if (attribute) {
    const Value* fallback = nullptr;
    for (const auto& [k, val] : a.kw)
      if (k == "default") fallback = &val;
    for (const Value& item : v.iterate()) {
      Value x = attribute_of(ev, item, attribute->str());
      out.push_back(x.is_undefined() && fallback ? *fallback : std::move(x));
    }
    return Value::list(std::move(out));
  }
  if (a.pos.empty()) fault("map needs a filter name or attribute=");
  const std::string filter = a.pos[0].str();
  Args rest;
  rest.pos.assign(a.pos.begin() + 1, a.pos.end());
  rest.kw = a.kw;
  for (const Value& item : v.iterate()) {
    ev.step();
    Args call_args = rest;
    out.push_back(ev.apply_filter(filter, item, call_args));
  }
  return Value::list(std::move(out));
}

Value f_unique(Evaluator& ev, const Value& v, Args& a) {
  const bool case_sensitive = arg_bool(a, 0, "case_sensitive", false);
  const Value* attribute = arg(a, 1, "attribute");
  std::vector<Value> out, seen;
  for (const Value& item : v.iterate()) {
    Value key = sort_key(ev, item, attribute, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_sort(Evaluator& ev, const Value& v, Args& a) {
  const bool reverse = arg_bool(a, 0, "reverse", false);
  const bool case_sensitive = arg_bool(a, 1, "case_sensitive", false);
  const Value* attribute = arg(a, 2, "attribute");
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : v.iterate()) keyed.emplace_back(sort_key(ev, item, attribute, case_sensitive), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    const int c = compare(x.first, y.first);
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::list(std::move(out));
}

Value f_reverse(Evaluator&, const Value& v, Args&) {
  if (v.is_string()) {
    std::u32string cps = text::decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value(text::encode(cps));
  }
  std::vector<Value> items = v.iterate();
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_sum(Evaluator& ev, const Value& v, Args& a) {
  const Value* attribute = arg(a, 0, "attribute");
  Value total = arg_or(a, 1, "start", Value(0));
  for (const Value& item : v.iterate())
    total = binary_op(BinOp::Add, total, attribute && !attribute->is_none() ? attribute_of(ev, item, attribute->str()) : item,
                      SIZE_MAX);
  return total;
}

Value extreme(Evaluator& ev, const Value& v, Args& a, bool want_max) {
  const bool case_sensitive = arg_bool(a, 0, "case_sensitive", false);
  const Value* attribute = arg(a, 1, "attribute");
  const std::vector<Value> items = v.iterate();
  if (items.empty()) return Value::undefined(want_max ? "No aggregated item, sequence was empty." : "No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = sort_key(ev, items[0], attribute, case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = sort_key(ev, items[i], attribute, case_sensitive);
    const int c = compare(k, best_key);
    if (want_max ? c > 0 : c < 0) best = i, best_key = std::move(k);
  }
  return items[best];
}

Value f_min(Evaluator& ev, const Value& v, Args& a) { return extreme(ev, v, a, false); }
Value f_max(Evaluator& ev, const Value& v, Args& a) { return extreme(ev, v, a, true); }

Value f_batch(Evaluator&, const Value& v, Args& a) {
  const int64_t size = arg_int(a, 0, "linecount", 1);
  if (size <= 0) fault("batch size must be positive");
  const Value* fill = arg(a, 1, "fill_with");
  std::vector<Value> out, cur;
  for (const Value& item : v.iterate()) {
    cur.push_back(item);
    if (int64_t(cur.size()) == size) out.push_back(Value::list(std::move(cur))), cur.clear();
  }
  if (!cur.empty()) {
    if (fill && !fill->is_none())
      while (int64_t(cur.size()) < size) cur.push_back(*fill);
    out.push_back(Value::list(std::move(cur)));
  }
  return Value::list(std::move(out));
}

}  // namespace

std::vector<FilterEntry> sequence_filters() {
  return {{"length", f_length},   {"count", f_length},         {"list", f_list},       {"first", f_first},
          {"last", f_last},       {"join", f_join},            {"items", f_items},     {"dictsort", f_dictsort},
          {"select", f_select},   {"reject", f_reject},        {"selectattr", f_selectattr},
          {"rejectattr", f_rejectattr}, {"map", f_map},        {"unique", f_unique},   {"sort", f_sort},
          {"reverse", f_reverse}, {"sum", f_sum},              {"min", f_min},         {"max", f_max},
          {"batch", f_batch}};
}

}  // namespace strata::chat
