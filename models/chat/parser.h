// Recursive-descent parser for the jinja2 subset chat templates use; grammar and precedence as
// jinja2's own parser (filters and tests bind to the unary expression before them).
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "models/chat/ast.h"
#include "models/chat/lexer.h"

namespace strata::chat {

// Throws strata::Error "<name>:<line>:<col>: expected ..." on a syntax error.
Body parse_template(const std::vector<Token>& tokens, const std::string& name);

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& name) : toks_(tokens), name_(name) {}
  Body parse_all();

 private:
  // Statements (parser.cpp).
  Body body(std::initializer_list<std::string_view> end_tags);
  StmtPtr statement();
  StmtPtr for_stmt(Loc at);
  StmtPtr if_stmt(Loc at);
  StmtPtr set_stmt(Loc at);
  StmtPtr macro_stmt(Loc at);
  StmtPtr call_block(Loc at);
  StmtPtr filter_block(Loc at);
  StmtPtr with_stmt(Loc at);
  Target assign_target(bool allow_attr);
  void params(std::vector<std::string>& names, std::vector<ExprPtr>& defaults);
  void end_tag(std::string_view name);

  // Expressions (parser_expr.cpp).
 public:
  ExprPtr tuple(bool with_cond = true);
  ExprPtr expression(bool with_cond = true);
 private:
  ExprPtr or_expr();
  ExprPtr and_expr();
  ExprPtr not_expr();
  ExprPtr compare();
  ExprPtr math1();
  ExprPtr concat();
  ExprPtr math2();
  ExprPtr pow();
  ExprPtr unary(bool with_filter);
  ExprPtr primary();
  ExprPtr postfix(ExprPtr node);
  ExprPtr filter_and_test(ExprPtr node);
  ExprPtr filter(ExprPtr operand);
  ExprPtr subscript(ExprPtr obj);
  void call_args(CallArgs& args);

  // Token stream.
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  const Token& next() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }
  bool is_op(std::string_view op) const { return cur().type == Tok::Op && cur().value == op; }
  bool is_name(std::string_view n) const { return cur().type == Tok::Name && cur().value == n; }
  bool accept_op(std::string_view op);
  bool accept_name(std::string_view n);
  void expect_op(std::string_view op);
  std::string expect_name();
  void expect_block_end();
  [[noreturn]] void error(const Token& at, const std::string& what) const;
  std::string describe(const Token& t) const;

  // Keeps a hostile template's nesting from exhausting the stack while parsing.
  struct DepthGuard {
    explicit DepthGuard(Parser& p);
    ~DepthGuard() { --p.depth_; }
    Parser& p;
  };

  const std::vector<Token>& toks_;
  const std::string& name_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;  // break/continue are only valid inside a for
};

}  // namespace strata::chat
