// Expressions. Attribute and item access follow jinja2's default Undefined: a missing key or
// attribute is an undefined value, but using an undefined beyond printing, testing or
// iterating it (calling it, taking its attribute, doing arithmetic) is an error.
#include <algorithm>
#include <optional>

#include "models/chat/builtins.h"
#include "models/chat/evaluator.h"
#include "models/chat/text.h"

namespace strata::chat {

Value Evaluator::eval(const Expr& e) {
  try {
    step();
    DepthGuard guard(*this);
    return eval_node(e);
  } catch (const Fault& f) {
    error_at(e.loc, f.message);
  }
}

void Evaluator::eval_args(const CallArgs& in, Args& out) {
  out.pos.reserve(in.pos.size());
  for (const auto& a : in.pos) out.pos.push_back(eval(*a));
  for (const auto& [k, a] : in.kw) out.kw.emplace_back(k, eval(*a));
}

Value Evaluator::eval_node(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Const: return static_cast<const ConstExpr&>(e).value;
    case ExprKind::Name: {
      const auto& n = static_cast<const NameExpr&>(e);
      if (const Value* v = scope_->find(n.name)) return *v;
      return Value::undefined(fmt::format("'{}' is undefined", n.name));
    }
    case ExprKind::List: {
      const auto& l = static_cast<const ListExpr&>(e);
      std::vector<Value> items;
      items.reserve(l.items.size());
      for (const auto& item : l.items) items.push_back(eval(*item));
      return Value::list(std::move(items), l.tuple);
    }
    case ExprKind::Dict: {
      auto d = std::make_shared<DictObj>();
      for (const auto& [k, v] : static_cast<const DictExpr&>(e).items) {
        Value key = eval(*k);
        if (key.is_list() && !key.as_list().tuple) fault("unhashable type: 'list'");
        if (key.is_dict()) fault("unhashable type: 'dict'");
        d->set(std::move(key), eval(*v));
      }
      return Value(std::move(d));
    }
    case ExprKind::Getattr: {
      const auto& g = static_cast<const GetattrExpr&>(e);
      return getattr(eval(*g.obj), g.attr);
    }
    case ExprKind::Getitem: {
      const auto& g = static_cast<const GetitemExpr&>(e);
      const Value obj = eval(*g.obj);
      return getitem(obj, eval(*g.index));
    }
    case ExprKind::Slice: return eval_slice(static_cast<const SliceExpr&>(e));
    case ExprKind::Call: return eval_call(static_cast<const CallExpr&>(e));
    case ExprKind::Filter: {
      const auto& f = static_cast<const FilterExpr&>(e);
      const Value input = eval(*f.operand);
      Args args;
      eval_args(f.args, args);
      return apply_filter(f.name, input, args);
    }
    case ExprKind::Test: {
      const auto& t = static_cast<const TestExpr&>(e);
      const Value input = eval(*t.operand);
      Args args;
      eval_args(t.args, args);
      return Value(apply_test(t.name, input, args) != t.negated);
    }
    case ExprKind::Neg:
    case ExprKind::Pos: {
      const Value v = eval(*static_cast<const UnaryExpr&>(e).operand);
      if (v.is_undefined()) fault("{}", v.undefined_hint());
      if (!v.is_number()) fault("bad operand type for unary {}: '{}'", e.kind == ExprKind::Neg ? '-' : '+', v.type_name());
      if (e.kind == ExprKind::Pos) return v.is_bool() ? Value(v.to_int()) : v;
      if (v.is_float()) return Value(-v.as_float());
      if (v.to_int() == INT64_MIN) fault("integer overflow");
      return Value(-v.to_int());
    }
    case ExprKind::Not: return Value(!eval(*static_cast<const UnaryExpr&>(e).operand).truthy());
    case ExprKind::And: {
      const auto& b = static_cast<const BinaryExpr&>(e);
      Value l = eval(*b.left);
      return l.truthy() ? eval(*b.right) : l;
    }
    case ExprKind::Or: {
      const auto& b = static_cast<const BinaryExpr&>(e);
      Value l = eval(*b.left);
      return l.truthy() ? l : eval(*b.right);
    }
    case ExprKind::Binary: {
      const auto& b = static_cast<const BinaryExpr&>(e);
      const Value l = eval(*b.left);
      const Value r = eval(*b.right);
      return binary_op(b.op, l, r, limits_.max_output_bytes);
    }
    case ExprKind::Compare: {
      const auto& c = static_cast<const CompareExpr&>(e);
      Value left = eval(*c.first);
      for (const auto& [op, expr] : c.rest) {
        Value right = eval(*expr);
        if (!eval_compare(op, left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::Cond: {
      const auto& c = static_cast<const CondExpr&>(e);
      if (eval(*c.cond).truthy()) return eval(*c.then);
      if (c.otherwise) return eval(*c.otherwise);
      return Value::undefined("the inline if had no else branch");
    }
  }
  return Value();
}

bool Evaluator::eval_compare(CmpOp op, const Value& a, const Value& b) {
  switch (op) {
    case CmpOp::Eq: return equals(a, b);
    case CmpOp::Ne: return !equals(a, b);
    case CmpOp::In: return contains(b, a);
    case CmpOp::NotIn: return !contains(b, a);
    default: break;
  }
  if (a.is_undefined()) fault("{}", a.undefined_hint());
  if (b.is_undefined()) fault("{}", b.undefined_hint());
  const int c = compare(a, b);
  switch (op) {
    case CmpOp::Lt: return c < 0;
    case CmpOp::Le: return c <= 0;
    case CmpOp::Gt: return c > 0;
    default: return c >= 0;
  }
}

Value Evaluator::eval_call(const CallExpr& c) {
  if (c.callee->kind == ExprKind::Getattr) {
    // obj.method(...) calls the method directly rather than building a bound method first.
    const auto& g = static_cast<const GetattrExpr&>(*c.callee);
    const Value obj = eval(*g.obj);
    if ((obj.is_string() || obj.is_list() || obj.is_dict()) && has_method(obj, g.attr)) {
      Args args;
      eval_args(c.args, args);
      return call_method(*this, obj, g.attr, args);
    }
    const Value fn = getattr(obj, g.attr);
    Args args;
    eval_args(c.args, args);
    return call(fn, args);
  }
  const Value fn = eval(*c.callee);
  Args args;
  eval_args(c.args, args);
  return call(fn, args);
}

Value Evaluator::call(const Value& fn, Args& args) {
  if (fn.is_callable()) return fn.as_callable().fn(*this, args);
  if (fn.is_undefined()) fault("{}", fn.undefined_hint());
  fault("'{}' object is not callable", fn.type_name());
}

namespace {
std::string object_name(const Value& v) {
  return v.is_none() ? "'None'" : fmt::format("'{} object'", v.type_name());
}

Value bound_method(const Value& obj, std::string_view name) {
  auto fn = std::make_shared<Callable>();
  fn->name = std::string(name);
  fn->fn = [obj, method = std::string(name)](Evaluator& ev, Args& args) { return call_method(ev, obj, method, args); };
  return Value(std::move(fn));
}
}  // namespace

Value Evaluator::getattr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) fault("{}", obj.undefined_hint());
  if ((obj.is_string() || obj.is_list() || obj.is_dict()) && has_method(obj, name)) return bound_method(obj, name);
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(name)) return *v;
  } else if (obj.is_namespace()) {
    if (const Value* v = obj.as_namespace().find(name)) return *v;
  }
  return Value::undefined(fmt::format("{} has no attribute '{}'", object_name(obj), name));
}

Value Evaluator::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fault("{}", obj.undefined_hint());
  if (obj.is_dict() || obj.is_namespace()) {
    const DictObj& d = obj.is_dict() ? obj.as_dict() : obj.as_namespace();
    if (const Value* v = d.find(key)) return *v;
  } else if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t n = int64_t(obj.length());
    int64_t i = key.to_int();
    if (i < 0) i += n;
    if (i >= 0 && i < n) {
      if (obj.is_list()) return obj.as_list().items[size_t(i)];
      return Value(text::substr(obj.as_string(), size_t(i), 1));
    }
    return Value::undefined(fmt::format("{} has no element {}", object_name(obj), key.to_int()));
  }
  if (key.is_string()) return getattr(obj, key.as_string());
  return Value::undefined(fmt::format("{} has no element {}", object_name(obj), key.repr()));
}

Value Evaluator::eval_slice(const SliceExpr& s) {
  const Value obj = eval(*s.obj);
  auto bound = [&](const ExprPtr& e) -> std::optional<int64_t> {
    if (!e) return std::nullopt;
    const Value v = eval(*e);
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) fault("slice indices must be integers or None");
    return v.to_int();
  };
  const auto start = bound(s.start), stop = bound(s.stop), stride = bound(s.step);
  if (obj.is_undefined()) fault("{}", obj.undefined_hint());
  if (!obj.is_list() && !obj.is_string()) fault("'{}' object is not subscriptable", obj.type_name());
  const int64_t step = stride.value_or(1);
  if (step == 0) fault("slice step cannot be zero");
  const int64_t n = int64_t(obj.length());
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v < 0 ? *v + n : *v;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t from = clamp(start, step > 0 ? 0 : n - 1);
  const int64_t to = clamp(stop, step > 0 ? n : -1);
  std::vector<size_t> picks;
  for (int64_t i = from; step > 0 ? i < to : i > to; i += step) picks.push_back(size_t(i));
  if (obj.is_list()) {
    std::vector<Value> out;
    out.reserve(picks.size());
    for (size_t i : picks) out.push_back(obj.as_list().items[i]);
    return Value::list(std::move(out), obj.as_list().tuple);
  }
  const std::string& str = obj.as_string();
  if (text::is_ascii(str)) {
    std::string out;
    for (size_t i : picks) out += str[i];
    return Value(std::move(out));
  }
  const std::u32string cps = text::decode(str);
  std::u32string out;
  for (size_t i : picks) out += cps[i];
  return Value(text::encode(out));
}

Value Evaluator::apply_filter(std::string_view name, const Value& input, Args& args) {
  const FilterFn* f = find_filter(name);
  if (!f) fault("no filter named '{}'", name);
  return (*f)(*this, input, args);
}

bool Evaluator::apply_test(std::string_view name, const Value& input, Args& args) {
  const TestFn* t = find_test(name);
  if (!t) fault("no test named '{}'", name);
  return (*t)(*this, input, args);
}

}  // namespace strata::chat
