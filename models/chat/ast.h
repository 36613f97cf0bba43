// The parsed template: expression and statement nodes, immutable once built.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/chat/lexer.h"
#include "models/chat/value.h"

namespace strata::chat {

enum class ExprKind {
  Const, Name, List, Dict, Getattr, Getitem, Slice, Call, Filter, Test, Neg, Pos, Not, Binary, And, Or, Compare, Cond
};
enum class BinOp { Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Concat };
enum class CmpOp { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr {
  Expr(ExprKind k, Loc l) : kind(k), loc(l) {}
  virtual ~Expr() = default;
  ExprKind kind;
  Loc loc;
};
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgs {
  std::vector<ExprPtr> pos;
  std::vector<std::pair<std::string, ExprPtr>> kw;
};

struct ConstExpr : Expr {
  ConstExpr(Loc l, Value v) : Expr(ExprKind::Const, l), value(std::move(v)) {}
  Value value;  // scalars only: list literals are built afresh since lists are mutable
};
struct NameExpr : Expr {
  NameExpr(Loc l, std::string n) : Expr(ExprKind::Name, l), name(std::move(n)) {}
  std::string name;
};
struct ListExpr : Expr {
  ListExpr(Loc l, bool t) : Expr(ExprKind::List, l), tuple(t) {}
  std::vector<ExprPtr> items;
  bool tuple;
};
struct DictExpr : Expr {
  explicit DictExpr(Loc l) : Expr(ExprKind::Dict, l) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};
struct GetattrExpr : Expr {
  GetattrExpr(Loc l, ExprPtr o, std::string a) : Expr(ExprKind::Getattr, l), obj(std::move(o)), attr(std::move(a)) {}
  ExprPtr obj;
  std::string attr;
};
struct GetitemExpr : Expr {
  GetitemExpr(Loc l, ExprPtr o, ExprPtr i) : Expr(ExprKind::Getitem, l), obj(std::move(o)), index(std::move(i)) {}
  ExprPtr obj, index;
};
struct SliceExpr : Expr {
  SliceExpr(Loc l, ExprPtr o) : Expr(ExprKind::Slice, l), obj(std::move(o)) {}
  ExprPtr obj, start, stop, step;  // any bound may be null
};
struct CallExpr : Expr {
  CallExpr(Loc l, ExprPtr c) : Expr(ExprKind::Call, l), callee(std::move(c)) {}
  ExprPtr callee;
  CallArgs args;
};
// `operand` is null for a filter in a {% filter %} block or a block {% set %}: the body is the input.
struct FilterExpr : Expr {
  FilterExpr(Loc l, ExprPtr o, std::string n) : Expr(ExprKind::Filter, l), operand(std::move(o)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  CallArgs args;
};
struct TestExpr : Expr {
  TestExpr(Loc l, ExprPtr o, std::string n, bool neg)
      : Expr(ExprKind::Test, l), operand(std::move(o)), name(std::move(n)), negated(neg) {}
  ExprPtr operand;
  std::string name;
  bool negated;
  CallArgs args;
};
struct UnaryExpr : Expr {  // Neg, Pos, Not
  UnaryExpr(ExprKind k, Loc l, ExprPtr o) : Expr(k, l), operand(std::move(o)) {}
  ExprPtr operand;
};
struct BinaryExpr : Expr {  // Binary (with op), And, Or
  BinaryExpr(ExprKind k, Loc l, BinOp o, ExprPtr a, ExprPtr b)
      : Expr(k, l), op(o), left(std::move(a)), right(std::move(b)) {}
  BinOp op;
  ExprPtr left, right;
};
struct CompareExpr : Expr {  // a < b < c chains as in Python
  CompareExpr(Loc l, ExprPtr f) : Expr(ExprKind::Compare, l), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<CmpOp, ExprPtr>> rest;
};
struct CondExpr : Expr {
  explicit CondExpr(Loc l) : Expr(ExprKind::Cond, l) {}
  ExprPtr cond, then, otherwise;  // otherwise null: undefined
};

enum class StmtKind { Text, Output, If, For, Set, SetBlock, Macro, CallBlock, FilterBlock, With, Break, Continue };

struct Stmt {
  Stmt(StmtKind k, Loc l) : kind(k), loc(l) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  Loc loc;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// What a {% set %} or {% for %} assigns to: names (several: tuple unpacking) or ns.attr.
struct Target {
  std::vector<std::string> names;
  bool unpack = false;
  std::string attr;  // non-empty: names[0] is a namespace and this its attribute
};

struct TextStmt : Stmt {
  TextStmt(Loc l, std::string t) : Stmt(StmtKind::Text, l), text(std::move(t)) {}
  std::string text;
};
struct OutputStmt : Stmt {
  OutputStmt(Loc l, ExprPtr e) : Stmt(StmtKind::Output, l), expr(std::move(e)) {}
  ExprPtr expr;
};
struct IfStmt : Stmt {
  explicit IfStmt(Loc l) : Stmt(StmtKind::If, l) {}
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body otherwise;
};
struct ForStmt : Stmt {
  explicit ForStmt(Loc l) : Stmt(StmtKind::For, l) {}
  Target target;
  ExprPtr iter, filter;
  Body body, otherwise;
};
struct SetStmt : Stmt {
  explicit SetStmt(Loc l) : Stmt(StmtKind::Set, l) {}
  Target target;
  ExprPtr value;
};
struct SetBlockStmt : Stmt {
  explicit SetBlockStmt(Loc l) : Stmt(StmtKind::SetBlock, l) {}
  Target target;
  std::vector<ExprPtr> filters;  // FilterExprs without operand, applied in order
  Body body;
};
struct MacroStmt : Stmt {
  explicit MacroStmt(Loc l) : Stmt(StmtKind::Macro, l) {}
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param; null: no default
  Body body;
};
struct CallBlockStmt : Stmt {
  explicit CallBlockStmt(Loc l) : Stmt(StmtKind::CallBlock, l) {}
  MacroStmt caller{Loc{}};  // the body as a macro named "caller"
  ExprPtr call;             // a CallExpr
};
struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(Loc l) : Stmt(StmtKind::FilterBlock, l) {}
  std::vector<ExprPtr> filters;
  Body body;
};
struct WithStmt : Stmt {
  explicit WithStmt(Loc l) : Stmt(StmtKind::With, l) {}
  std::vector<std::pair<Target, ExprPtr>> assigns;
  Body body;
};

}  // namespace strata::chat
