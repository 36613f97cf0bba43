// The `is` tests, as jinja2 defines them (e.g. a bool is a number, an undefined is iterable).
#include <cmath>
#include <unordered_map>

#include "models/chat/builtins.h"
#include "models/chat/evaluator.h"
#include "models/chat/text.h"

namespace strata::chat {
namespace {

const Value& other(const Args& a, std::string_view what) {
  if (a.pos.empty()) fault("the '{}' test needs an argument", what);
  return a.pos[0];
}

bool t_defined(Evaluator&, const Value& v, Args&) { return !v.is_undefined(); }
bool t_undefined(Evaluator&, const Value& v, Args&) { return v.is_undefined(); }
bool t_none(Evaluator&, const Value& v, Args&) { return v.is_none(); }
bool t_boolean(Evaluator&, const Value& v, Args&) { return v.is_bool(); }
bool t_true(Evaluator&, const Value& v, Args&) { return v.is_bool() && v.as_bool(); }
bool t_false(Evaluator&, const Value& v, Args&) { return v.is_bool() && !v.as_bool(); }
bool t_integer(Evaluator&, const Value& v, Args&) { return v.is_int(); }
bool t_float(Evaluator&, const Value& v, Args&) { return v.is_float(); }
bool t_number(Evaluator&, const Value& v, Args&) { return v.is_number(); }
bool t_string(Evaluator&, const Value& v, Args&) { return v.is_string(); }
bool t_mapping(Evaluator&, const Value& v, Args&) { return v.is_dict(); }
bool t_iterable(Evaluator&, const Value& v, Args&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool t_sequence(Evaluator&, const Value& v, Args&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool t_callable(Evaluator&, const Value& v, Args&) { return v.is_callable(); }
bool t_escaped(Evaluator&, const Value&, Args&) { return false; }

bool t_sameas(Evaluator&, const Value& v, Args& a) {
  const Value& o = other(a, "sameas");
  if (v.identity() || o.identity()) return v.identity() == o.identity();
  return v.kind() == o.kind() && equals(v, o);
}

int64_t whole(const Value& v, std::string_view test) {
  if (v.is_undefined()) fault("{}", v.undefined_hint());
  if (!v.is_number()) fault("the '{}' test needs a number, got {}", test, v.type_name());
  return v.to_int();
}

bool t_odd(Evaluator&, const Value& v, Args&) { return whole(v, "odd") % 2 != 0; }
bool t_even(Evaluator&, const Value& v, Args&) { return whole(v, "even") % 2 == 0; }
bool t_divisibleby(Evaluator&, const Value& v, Args& a) {
  const int64_t d = whole(other(a, "divisibleby"), "divisibleby");
  if (d == 0) fault("integer division or modulo by zero");
  return whole(v, "divisibleby") % d == 0;
}

bool t_eq(Evaluator&, const Value& v, Args& a) { return equals(v, other(a, "eq")); }
bool t_ne(Evaluator&, const Value& v, Args& a) { return !equals(v, other(a, "ne")); }
bool t_lt(Evaluator&, const Value& v, Args& a) { return compare(v, other(a, "lt")) < 0; }
bool t_le(Evaluator&, const Value& v, Args& a) { return compare(v, other(a, "le")) <= 0; }
bool t_gt(Evaluator&, const Value& v, Args& a) { return compare(v, other(a, "gt")) > 0; }
bool t_ge(Evaluator&, const Value& v, Args& a) { return compare(v, other(a, "ge")) >= 0; }
bool t_in(Evaluator&, const Value& v, Args& a) { return contains(other(a, "in"), v); }

// str.islower()/isupper(): some cased character, and none of the other case.
bool t_lower(Evaluator&, const Value& v, Args&) {
  bool cased = false;
  for (char32_t c : text::decode(v.str())) {
    if (text::is_cased_upper(c)) return false;
    cased = cased || text::is_cased_lower(c);
  }
  return cased;
}
bool t_upper(Evaluator&, const Value& v, Args&) {
  bool cased = false;
  for (char32_t c : text::decode(v.str())) {
    if (text::is_cased_lower(c)) return false;
    cased = cased || text::is_cased_upper(c);
  }
  return cased;
}

bool t_filter(Evaluator&, const Value& v, Args&) { return v.is_string() && find_filter(v.as_string()); }
bool t_test(Evaluator&, const Value& v, Args&) { return v.is_string() && find_test(v.as_string()); }

}  // namespace

const TestFn* find_test(std::string_view name) {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"defined", t_defined},   {"undefined", t_undefined}, {"none", t_none},       {"boolean", t_boolean},
      {"true", t_true},         {"false", t_false},         {"integer", t_integer}, {"float", t_float},
      {"number", t_number},     {"string", t_string},       {"mapping", t_mapping}, {"iterable", t_iterable},
      {"sequence", t_sequence}, {"callable", t_callable},   {"escaped", t_escaped}, {"sameas", t_sameas},
      {"odd", t_odd},           {"even", t_even},           {"divisibleby", t_divisibleby},
      {"eq", t_eq},             {"equalto", t_eq},          {"==", t_eq},           {"ne", t_ne},
      {"!=", t_ne},             {"lt", t_lt},               {"lessthan", t_lt},     {"<", t_lt},
      {"le", t_le},             {"<=", t_le},               {"gt", t_gt},           {"greaterthan", t_gt},
      {">", t_gt},              {"ge", t_ge},               {">=", t_ge},           {"in", t_in},
      {"lower", t_lower},       {"upper", t_upper},         {"filter", t_filter},   {"test", t_test}};
  const auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

}  // namespace strata::chat
