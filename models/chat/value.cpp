#include "models/chat/value.h"

#include <charconv>
#include <cmath>

#include "models/chat/text.h"

namespace strata::chat {

namespace {
// While a container is being freed, the containers it held park their items here instead of
// freeing them recursively; the outermost destructor drains the list.
thread_local std::vector<Value>* graveyard = nullptr;

template <typename MoveChildren>
void release(MoveChildren move_children) {
  if (graveyard) {
    move_children(*graveyard);
    return;
  }
  std::vector<Value> work;
  graveyard = &work;
  move_children(work);
  while (!work.empty()) {
    Value last = std::move(work.back());
    work.pop_back();
  }
  graveyard = nullptr;
}

void check_depth(int depth) {
  if (depth > kMaxValueDepth) fault("a value nested deeper than {} levels (a list that contains itself?)", kMaxValueDepth);
}
}  // namespace

ListObj::~ListObj() {
  if (items.empty()) return;
  release([this](std::vector<Value>& out) {
    for (auto& v : items) out.push_back(std::move(v));
  });
}

DictObj::~DictObj() {
  if (entries.empty()) return;
  release([this](std::vector<Value>& out) {
    for (auto& [k, v] : entries) out.push_back(std::move(k)), out.push_back(std::move(v));
  });
}

const Value* DictObj::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& [k, v] : entries)
    if (equals(k, key)) return &v;
  return nullptr;
}

const Value* DictObj::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k.is_string() && k.as_string() == key) return &v;
  return nullptr;
}

void DictObj::set(Value key, Value value) {
  if (const Value* existing = find(key)) {
    *const_cast<Value*>(existing) = std::move(value);
    return;
  }
  entries.emplace_back(std::move(key), std::move(value));
}

Value Value::list(std::vector<Value> items, bool tuple) {
  auto l = std::make_shared<ListObj>();
  l->items = std::move(items);
  l->tuple = tuple;
  return Value(std::move(l));
}

Value Value::dict() { return Value(std::make_shared<DictObj>()); }

namespace {
template <typename Json>
Value convert(const Json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value(NoneT{});
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      return u <= uint64_t(INT64_MAX) ? Value(int64_t(u)) : Value(double(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(convert(e));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      auto d = std::make_shared<DictObj>();
      d->entries.reserve(j.size());
      for (const auto& [k, v] : j.items()) d->entries.emplace_back(Value(k), convert(v));
      return Value(std::move(d));
    }
    default: return Value(NoneT{});
  }
}
}  // namespace

Value Value::from_json(const nlohmann::json& j) { return convert(j); }
Value Value::from_json(const nlohmann::ordered_json& j) { return convert(j); }

const void* Value::identity() const {
  switch (kind()) {
    case Kind::List: return &as_list();
    case Kind::Dict: return &as_dict();
    case Kind::Namespace: return &as_namespace();
    case Kind::Callable: return &as_callable();
    default: return nullptr;
  }
}

int64_t Value::to_int() const {
  if (is_bool()) return as_bool() ? 1 : 0;
  if (is_int()) return as_int();
  if (is_float()) return int64_t(as_float());
  fault("expected a number, got {}", type_name());
}

double Value::to_float() const {
  if (is_float()) return as_float();
  return double(to_int());
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return as_bool();
    case Kind::Int: return as_int() != 0;
    case Kind::Float: return as_float() != 0.0;
    case Kind::String: return !as_string().empty();
    case Kind::List: return !as_list().items.empty();
    case Kind::Dict: return !as_dict().entries.empty();
    default: return true;
  }
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  // Shortest round-trip digits, then laid out the way Python's repr does.
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= -5 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(size_t(-exp - 1), '0') + digits;
    } else if (size_t(exp) + 1 >= digits.size()) {
      out += digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
  return out;
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return as_list().tuple ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Callable: return "function";
  }
  return "object";
}

std::string Value::str() const {
  switch (kind()) {
    case Kind::Undefined: return "";
    case Kind::String: return as_string();
    default: return repr();
  }
}

std::string Value::repr(int depth) const {
  check_depth(depth);
  switch (kind()) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return as_bool() ? "True" : "False";
    case Kind::Int: return std::to_string(as_int());
    case Kind::Float: return float_repr(as_float());
    case Kind::String: return text::repr(as_string());
    case Kind::List: {
      const ListObj& l = as_list();
      std::string out = l.tuple ? "(" : "[";
      for (size_t i = 0; i < l.items.size(); ++i) out += (i ? ", " : "") + l.items[i].repr(depth + 1);
      if (l.tuple && l.items.size() == 1) out += ",";
      return out + (l.tuple ? ")" : "]");
    }
    case Kind::Dict:
    case Kind::Namespace: {
      const DictObj& d = is_dict() ? as_dict() : as_namespace();
      std::string out = is_dict() ? "{" : "<Namespace {";
      for (size_t i = 0; i < d.entries.size(); ++i)
        out += (i ? ", " : "") + d.entries[i].first.repr(depth + 1) + ": " + d.entries[i].second.repr(depth + 1);
      return out + (is_dict() ? "}" : "}>");
    }
    case Kind::Callable: return "<function " + as_callable().name + ">";
  }
  return "";
}

std::vector<Value> Value::iterate() const {
  switch (kind()) {
    case Kind::Undefined: return {};
    case Kind::List: return as_list().items;
    case Kind::Dict: {
      std::vector<Value> keys;
      keys.reserve(as_dict().entries.size());
      for (const auto& e : as_dict().entries) keys.push_back(e.first);
      return keys;
    }
    case Kind::String: {
      std::vector<Value> chars;
      const std::string& s = as_string();
      for (size_t i = 0; i < s.size();) {
        size_t len = 1;
        while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
        chars.emplace_back(s.substr(i, len));
        i += len;
      }
      return chars;
    }
    default: fault("'{}' object is not iterable", type_name());
  }
}

size_t Value::length() const {
  switch (kind()) {
    case Kind::Undefined: return 0;
    case Kind::String: return text::length(as_string());
    case Kind::List: return as_list().items.size();
    case Kind::Dict: return as_dict().entries.size();
    default: fault("object of type '{}' has no len()", type_name());
  }
}

bool equals(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_float() == b.to_float();
    return a.to_int() == b.to_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::Undefined:
    case K::None: return true;
    case K::String: return a.as_string() == b.as_string();
    case K::List: {
      const auto& x = a.as_list().items;
      const auto& y = b.as_list().items;
      if (a.as_list().tuple != b.as_list().tuple || x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i], depth + 1)) return false;
      return true;
    }
    case K::Dict: {
      const auto& x = a.as_dict().entries;
      if (x.size() != b.as_dict().entries.size()) return false;
      for (const auto& [k, v] : x) {
        const Value* other = b.as_dict().find(k);
        if (!other || !equals(v, *other, depth + 1)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

int compare(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      const double x = a.to_float(), y = b.to_float();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const int64_t x = a.to_int(), y = b.to_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && a.as_list().tuple == b.as_list().tuple) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equals(x[i], y[i], depth + 1)) return compare(x[i], y[i], depth + 1);
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  fault("'<' not supported between instances of '{}' and '{}'", a.type_name(), b.type_name());
}

}  // namespace strata::chat
