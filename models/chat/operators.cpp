// Python's arithmetic and membership rules: floor division and modulo, int/float promotion,
// str and list concatenation and repetition, `in` over strings, lists and dict keys.
#include <cmath>

#include "models/chat/builtins.h"
#include "models/chat/evaluator.h"
#include "models/chat/text.h"

namespace strata::chat {
namespace {

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
  fault("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name());
}

int64_t add(int64_t x, int64_t y) {
  int64_t r;
  if (__builtin_add_overflow(x, y, &r)) fault("integer overflow");
  return r;
}
int64_t sub(int64_t x, int64_t y) {
  int64_t r;
  if (__builtin_sub_overflow(x, y, &r)) fault("integer overflow");
  return r;
}
int64_t mul(int64_t x, int64_t y) {
  int64_t r;
  if (__builtin_mul_overflow(x, y, &r)) fault("integer overflow");
  return r;
}

Value repeat(const Value& seq, int64_t n, size_t max_bytes) {
  // The product is checked for overflow first: 'abcd' * (2**62 + 1) wraps to 4 bytes.
  size_t total = 0;
  if (seq.is_string()) {
    if (n > 0 && (__builtin_mul_overflow(seq.as_string().size(), size_t(n), &total) || total > max_bytes))
      fault("a string of {} x {} bytes exceeds the output limit of {} bytes", n, seq.as_string().size(), max_bytes);
    return Value(text::repeat(seq.as_string(), n));
  }
  const auto& items = seq.as_list().items;
  if (n > 0 && (__builtin_mul_overflow(items.size(), size_t(n), &total) || total > max_bytes))
    fault("list repetition too large");
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.as_list().tuple);
}

}  // namespace

Value binary_op(BinOp op, const Value& a, const Value& b, size_t max_bytes) {
  if (op == BinOp::Concat) {
    std::string s = a.str();
    s += b.str();
    if (s.size() > max_bytes) fault("a string of {} bytes exceeds the output limit of {} bytes", s.size(), max_bytes);
    return Value(std::move(s));
  }
  if (a.is_undefined()) fault("{}", a.undefined_hint());
  if (b.is_undefined()) fault("{}", b.undefined_hint());
  if (op == BinOp::Mod && a.is_string()) return Value(percent_format(a.as_string(), b, max_bytes));
  const bool numeric = a.is_number() && b.is_number();
  const bool floats = numeric && (a.is_float() || b.is_float());
  switch (op) {
    case BinOp::Add:
      if (floats) return Value(a.to_float() + b.to_float());
      if (numeric) return Value(add(a.to_int(), b.to_int()));
      if (a.is_string() && b.is_string()) {
        if (a.as_string().size() + b.as_string().size() > max_bytes)
          fault("a string of {} bytes exceeds the output limit of {} bytes",
                a.as_string().size() + b.as_string().size(), max_bytes);
        return Value(a.as_string() + b.as_string());
      }
      if (a.is_list() && b.is_list() && a.as_list().tuple == b.as_list().tuple) {
        std::vector<Value> out = a.as_list().items;
        out.insert(out.end(), b.as_list().items.begin(), b.as_list().items.end());
        return Value::list(std::move(out), a.as_list().tuple);
      }
      if (a.is_string() || a.is_list())
        fault("can only concatenate {} (not \"{}\") to {}", a.type_name(), b.type_name(), a.type_name());
      unsupported("+", a, b);
    case BinOp::Sub:
      if (floats) return Value(a.to_float() - b.to_float());
      if (numeric) return Value(sub(a.to_int(), b.to_int()));
      unsupported("-", a, b);
    case BinOp::Mul:
      if (floats) return Value(a.to_float() * b.to_float());
      if (numeric) return Value(mul(a.to_int(), b.to_int()));
      if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.to_int(), max_bytes);
      if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.to_int(), max_bytes);
      unsupported("*", a, b);
    case BinOp::Div:
      if (!numeric) unsupported("/", a, b);
      if (b.to_float() == 0.0) fault("division by zero");
      return Value(a.to_float() / b.to_float());
    case BinOp::FloorDiv:
      if (!numeric) unsupported("//", a, b);
      if (b.to_float() == 0.0) fault("integer division or modulo by zero");
      if (floats) return Value(std::floor(a.to_float() / b.to_float()));
      {
        const int64_t x = a.to_int(), y = b.to_int();
        if (x == INT64_MIN && y == -1) fault("integer overflow");
        int64_t q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
        return Value(q);
      }
    case BinOp::Mod:
      if (!numeric) unsupported("%", a, b);
      if (b.to_float() == 0.0) fault("integer division or modulo by zero");
      if (floats) {
        const double x = a.to_float(), y = b.to_float();
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value(m);
      }
      {
        const int64_t x = a.to_int(), y = b.to_int();
        if (y == -1) return Value(int64_t(0));
        int64_t m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value(m);
      }
    case BinOp::Pow:
      if (!numeric) unsupported("** or pow()", a, b);
      if (floats || b.to_int() < 0) return Value(std::pow(a.to_float(), b.to_float()));
      {
        int64_t base = a.to_int(), e = b.to_int(), acc = 1;
        while (e > 0) {
          if (e & 1) acc = mul(acc, base);
          e >>= 1;
          if (e) base = mul(base, base);
        }
        return Value(acc);
      }
    case BinOp::Concat: break;
  }
  return Value();
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::Undefined: return false;
    case Value::Kind::String:
      if (!item.is_string())
        fault("'in <string>' requires string as left operand, not {}", item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const auto& v : container.as_list().items)
        if (equals(v, item)) return true;
      return false;
    case Value::Kind::Dict: return container.as_dict().find(item) != nullptr;
    case Value::Kind::Namespace: return container.as_namespace().find(item) != nullptr;
    default: fault("argument of type '{}' is not iterable", container.type_name());
  }
}

}  // namespace strata::chat
