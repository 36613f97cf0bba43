// The dynamic value a template computes with, modelled on the Python objects jinja2 sees:
// lists, dicts and namespaces are shared by reference (as in Python), scalars by value.
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace strata::chat {

// A runtime failure without a location yet; the evaluator adds template name, line and column.
struct Fault {
  std::string message;
};
template <typename... A>
[[noreturn]] void fault(fmt::format_string<A...> f, A&&... args) {
  throw Fault{fmt::format(f, std::forward<A>(args)...)};
}

class Value;
class Evaluator;

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

// Containers free their items iteratively (see release() in value.cpp), so dropping a deeply
// nested structure a template built cannot overflow the stack.
struct ListObj {
  ListObj() = default;
  ListObj(const ListObj&) = default;
  ~ListObj();
  std::vector<Value> items;
  bool tuple = false;  // only changes how it prints: (a, b) instead of [a, b]
};

// Insertion-ordered like a Python dict; chat-template dicts are small, so lookups are linear.
struct DictObj {
  DictObj() = default;
  DictObj(const DictObj&) = default;
  ~DictObj();
  std::vector<std::pair<Value, Value>> entries;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
};

struct NamespaceObj : DictObj {};

struct Callable {
  std::string name;
  std::function<Value(Evaluator&, Args&)> fn;
};

struct Undef {
  std::string hint;  // what was missing, for "'x' is undefined" messages
};
struct NoneT {};

class Value {
 public:
  enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };

  Value() : v_(Undef{}) {}
  Value(NoneT) : v_(NoneT{}) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::shared_ptr<ListObj> l) : v_(std::move(l)) {}
  Value(std::shared_ptr<DictObj> d) : v_(std::move(d)) {}
  Value(std::shared_ptr<NamespaceObj> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<Callable> c) : v_(std::move(c)) {}
  static Value undefined(std::string hint) { Value v; v.v_ = Undef{std::move(hint)}; return v; }
  static Value list(std::vector<Value> items = {}, bool tuple = false);
  static Value dict();
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return Kind(v_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_float() const { return kind() == Kind::Float; }
  bool is_number() const { return kind() == Kind::Int || kind() == Kind::Float || kind() == Kind::Bool; }
  bool is_string() const { return kind() == Kind::String; }
  bool is_list() const { return kind() == Kind::List; }
  bool is_dict() const { return kind() == Kind::Dict; }
  bool is_namespace() const { return kind() == Kind::Namespace; }
  bool is_callable() const { return kind() == Kind::Callable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const std::string& undefined_hint() const { return std::get<Undef>(v_).hint; }
  ListObj& as_list() const { return *std::get<std::shared_ptr<ListObj>>(v_); }
  DictObj& as_dict() const { return *std::get<std::shared_ptr<DictObj>>(v_); }
  NamespaceObj& as_namespace() const { return *std::get<std::shared_ptr<NamespaceObj>>(v_); }
  Callable& as_callable() const { return *std::get<std::shared_ptr<Callable>>(v_); }
  const void* identity() const;  // for `is sameas`: the object for reference types

  // Python number coercions (bool counts as int, as in Python).
  int64_t to_int() const;
  double to_float() const;

  bool truthy() const;
  std::string str() const;   // Python str(): what {{ x }} prints
  std::string repr(int depth = 0) const;  // Python repr(): how items print inside a list or dict
  std::string type_name() const;  // Python's name for the type, for error messages
  // Every item an iteration yields: list items, dict keys, string characters; undefined yields
  // nothing; anything else is a Fault.
  std::vector<Value> iterate() const;
  // len(): code points of a string, items of a list or dict; undefined has 0.
  size_t length() const;

 private:
  std::variant<Undef, NoneT, bool, int64_t, double, std::string, std::shared_ptr<ListObj>,
               std::shared_ptr<DictObj>, std::shared_ptr<NamespaceObj>, std::shared_ptr<Callable>>
      v_;
};

// Nesting past this is refused when printing, comparing or serialising (a list that contains
// itself would otherwise recurse forever).
constexpr int kMaxValueDepth = 512;

bool equals(const Value& a, const Value& b, int depth = 0);
// <0, 0, >0 as Python's ordering; a Fault for types Python cannot order.
int compare(const Value& a, const Value& b, int depth = 0);

// json.dumps(value, ensure_ascii, indent, separators, sort_keys) as Python writes it.
struct JsonStyle {
  bool ensure_ascii = false;
  int indent = -1;  // -1: one line
  std::string indent_text;  // set when indent is a string
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonStyle& style);

std::string float_repr(double d);  // Python repr(float): 1.0, 0.1, 1e+16

}  // namespace strata::chat
