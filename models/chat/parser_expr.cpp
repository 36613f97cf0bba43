// Expression grammar, lowest precedence first: conditional, or, and, not, comparisons,
// + -, ~, * / // %, **, unary - +, then primary with postfix . [] () and filters/tests.
#include <charconv>
#include <cstdlib>

#include "models/chat/builtins.h"
#include "models/chat/parser.h"
#include "storage/error.h"

namespace strata::chat {

ExprPtr Parser::tuple(bool with_cond) {
  const Loc at = cur().loc;
  ExprPtr first = expression(with_cond);
  if (!is_op(",")) return first;
  auto t = std::make_unique<ListExpr>(at, true);
  t->items.push_back(std::move(first));
  while (accept_op(",")) {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")") || is_name("if")) break;
    t->items.push_back(expression(with_cond));
  }
  return t;
}

ExprPtr Parser::expression(bool with_cond) {
  DepthGuard guard(*this);
  const Loc at = cur().loc;
  ExprPtr e = or_expr();
  while (with_cond && accept_name("if")) {
    auto c = std::make_unique<CondExpr>(at);
    c->then = std::move(e);
    c->cond = or_expr();
    if (accept_name("else")) c->otherwise = expression();
    e = std::move(c);
  }
  return e;
}

ExprPtr Parser::or_expr() {
  ExprPtr e = and_expr();
  while (is_name("or")) {
    const Loc at = next().loc;
    e = std::make_unique<BinaryExpr>(ExprKind::Or, at, BinOp::Add, std::move(e), and_expr());
  }
  return e;
}

ExprPtr Parser::and_expr() {
  ExprPtr e = not_expr();
  while (is_name("and")) {
    const Loc at = next().loc;
    e = std::make_unique<BinaryExpr>(ExprKind::And, at, BinOp::Add, std::move(e), not_expr());
  }
  return e;
}

ExprPtr Parser::not_expr() {
  if (is_name("not")) {
    DepthGuard guard(*this);
    const Loc at = next().loc;
    return std::make_unique<UnaryExpr>(ExprKind::Not, at, not_expr());
  }
  return compare();
}

ExprPtr Parser::compare() {
  const Loc at = cur().loc;
  ExprPtr first = math1();
  std::unique_ptr<CompareExpr> c;
  while (true) {
    CmpOp op;
    if (cur().type == Tok::Op && (cur().value == "==" || cur().value == "!=" || cur().value == "<" ||
                                  cur().value == "<=" || cur().value == ">" || cur().value == ">=")) {
      const std::string& v = cur().value;
      op = v == "==" ? CmpOp::Eq : v == "!=" ? CmpOp::Ne : v == "<" ? CmpOp::Lt : v == "<=" ? CmpOp::Le
           : v == ">"  ? CmpOp::Gt : CmpOp::Ge;
      next();
    } else if (is_name("in")) {
      next();
      op = CmpOp::In;
    } else if (is_name("not") && peek().type == Tok::Name && peek().value == "in") {
      next(), next();
      op = CmpOp::NotIn;
    } else {
      break;
    }
    if (!c) c = std::make_unique<CompareExpr>(at, std::move(first));
    c->rest.emplace_back(op, math1());
  }
  if (c) return c;
  return first;
}

namespace {
ExprPtr binary(Loc at, BinOp op, ExprPtr a, ExprPtr b) {
  return std::make_unique<BinaryExpr>(ExprKind::Binary, at, op, std::move(a), std::move(b));
}
}  // namespace

ExprPtr Parser::math1() {
  ExprPtr e = concat();
  while (is_op("+") || is_op("-")) {
    const Token& t = next();
    e = binary(t.loc, t.value == "+" ? BinOp::Add : BinOp::Sub, std::move(e), concat());
  }
  return e;
}

ExprPtr Parser::concat() {
  ExprPtr e = math2();
  while (is_op("~")) {
    const Loc at = next().loc;
    e = binary(at, BinOp::Concat, std::move(e), math2());
  }
  return e;
}

ExprPtr Parser::math2() {
  ExprPtr e = pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& t = next();
    const BinOp op = t.value == "*" ? BinOp::Mul : t.value == "/" ? BinOp::Div : t.value == "//" ? BinOp::FloorDiv
                                                                                                  : BinOp::Mod;
    e = binary(t.loc, op, std::move(e), pow());
  }
  return e;
}

ExprPtr Parser::pow() {
  ExprPtr e = unary(true);
  while (is_op("**")) {
    const Loc at = next().loc;
    e = binary(at, BinOp::Pow, std::move(e), unary(true));
  }
  return e;
}

ExprPtr Parser::unary(bool with_filter) {
  DepthGuard guard(*this);
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    const Token& t = next();
    node = std::make_unique<UnaryExpr>(t.value == "-" ? ExprKind::Neg : ExprKind::Pos, t.loc, unary(false));
  } else {
    node = primary();
  }
  node = postfix(std::move(node));
  if (with_filter) node = filter_and_test(std::move(node));
  return node;
}

ExprPtr Parser::primary() {
  const Token& t = cur();
  const Loc at = t.loc;
  switch (t.type) {
    case Tok::Name: {
      next();
      const std::string& n = t.value;
      if (n == "true" || n == "True") return std::make_unique<ConstExpr>(at, Value(true));
      if (n == "false" || n == "False") return std::make_unique<ConstExpr>(at, Value(false));
      if (n == "none" || n == "None") return std::make_unique<ConstExpr>(at, Value(NoneT{}));
      return std::make_unique<NameExpr>(at, n);
    }
    case Tok::String: {
      std::string s = next().value;
      while (cur().type == Tok::String) s += next().value;  // adjacent literals join
      return std::make_unique<ConstExpr>(at, Value(std::move(s)));
    }
    case Tok::Int: {
      next();
      int64_t v = 0;
      const auto r = std::from_chars(t.value.data(), t.value.data() + t.value.size(), v);
      if (r.ec != std::errc()) return std::make_unique<ConstExpr>(at, Value(std::strtod(t.value.c_str(), nullptr)));
      return std::make_unique<ConstExpr>(at, Value(v));
    }
    case Tok::Float: next(); return std::make_unique<ConstExpr>(at, Value(std::strtod(t.value.c_str(), nullptr)));
    case Tok::Op:
      if (accept_op("(")) {
        if (accept_op(")")) return std::make_unique<ListExpr>(at, true);
        ExprPtr first = expression();
        if (accept_op(")")) return first;
        auto tup = std::make_unique<ListExpr>(at, true);
        tup->items.push_back(std::move(first));
        while (accept_op(",")) {
          if (is_op(")")) break;
          tup->items.push_back(expression());
        }
        expect_op(")");
        return tup;
      }
      if (accept_op("[")) {
        auto list = std::make_unique<ListExpr>(at, false);
        while (!is_op("]")) {
          if (!list->items.empty()) expect_op(",");
          if (is_op("]")) break;
          list->items.push_back(expression());
        }
        expect_op("]");
        return list;
      }
      if (accept_op("{")) {
        auto dict = std::make_unique<DictExpr>(at);
        while (!is_op("}")) {
          if (!dict->items.empty()) expect_op(",");
          if (is_op("}")) break;
          ExprPtr key = expression();
          expect_op(":");
          dict->items.emplace_back(std::move(key), expression());
        }
        expect_op("}");
        return dict;
      }
      break;
    default: break;
  }
  error(t, fmt::format("expected an expression, got {}", describe(t)));
}

ExprPtr Parser::postfix(ExprPtr node) {
  while (true) {
    if (is_op(".")) {
      const Loc at = next().loc;
      if (cur().type == Tok::Int) {
        // `x.0` is x[0]; an index beyond 64 bits is a syntax error (std::stoll threw
        // out_of_range there, which no caller expects from a template).
        const Token& t = cur();
        int64_t index = 0;
        const auto r = std::from_chars(t.value.data(), t.value.data() + t.value.size(), index);
        if (r.ec != std::errc() || r.ptr != t.value.data() + t.value.size())
          error(t, "index '" + t.value + "' after '.' is out of range");
        next();
        node = std::make_unique<GetitemExpr>(at, std::move(node), std::make_unique<ConstExpr>(at, Value(index)));
      } else {
        node = std::make_unique<GetattrExpr>(at, std::move(node), expect_name());
      }
    } else if (is_op("[")) {
      node = subscript(std::move(node));
    } else if (is_op("(")) {
      auto call = std::make_unique<CallExpr>(cur().loc, std::move(node));
      call_args(call->args);
      node = std::move(call);
    } else {
      return node;
    }
  }
}

ExprPtr Parser::subscript(ExprPtr obj) {
  const Loc at = next().loc;  // '['
  ExprPtr start;
  if (!is_op(":")) {
    start = expression();
    if (accept_op("]")) return std::make_unique<GetitemExpr>(at, std::move(obj), std::move(start));
  }
  auto s = std::make_unique<SliceExpr>(at, std::move(obj));
  s->start = std::move(start);
  expect_op(":");
  if (!is_op("]") && !is_op(":")) s->stop = expression();
  if (accept_op(":") && !is_op("]")) s->step = expression();
  expect_op("]");
  return s;
}

void Parser::call_args(CallArgs& args) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (is_op(")")) break;
    if (is_op("*") || is_op("**")) error(cur(), "*args and **kwargs in calls are not supported");
    if (cur().type == Tok::Name && peek().type == Tok::Op && peek().value == "=") {
      std::string key = next().value;
      next();
      args.kw.emplace_back(std::move(key), expression());
    } else {
      if (!args.kw.empty()) error(cur(), "positional argument after a keyword argument");
      args.pos.push_back(expression());
    }
  }
  expect_op(")");
}

ExprPtr Parser::filter(ExprPtr operand) {
  accept_op("|");
  const Token& t = cur();
  const std::string name = expect_name();
  if (!find_filter(name)) error(t, fmt::format("no filter named '{}'", name));
  auto f = std::make_unique<FilterExpr>(t.loc, std::move(operand), name);
  if (is_op("(")) call_args(f->args);
  return f;
}

ExprPtr Parser::filter_and_test(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      node = filter(std::move(node));
    } else if (is_name("is")) {
      next();
      const bool negated = accept_name("not");
      const Token& t = cur();
      // Operator-like test names (==, <, ...) are written as names or symbols.
      std::string name;
      if (t.type == Tok::Op && (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == "<=" ||
                                t.value == ">" || t.value == ">=")) {
        name = next().value;
      } else {
        name = expect_name();
      }
      if (!find_test(name)) error(t, fmt::format("no test named '{}'", name));
      auto test = std::make_unique<TestExpr>(t.loc, std::move(node), name, negated);
      if (is_op("(")) {
        call_args(test->args);
      } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                  cur().type == Tok::Float || is_op("[") || is_op("{")) &&
                 !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") && !is_name("in") &&
                 !is_name("not") && !is_name("is")) {
        // `x is divisibleby 3`: one argument without parentheses.
        test->args.pos.push_back(postfix(primary()));
      }
      node = std::move(test);
    } else if (is_op("(")) {
      auto call = std::make_unique<CallExpr>(cur().loc, std::move(node));
      call_args(call->args);
      node = std::move(call);
    } else {
      return node;
    }
  }
}

}  // namespace strata::chat
