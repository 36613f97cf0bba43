#include "models/chat/parser.h"

#include "storage/error.h"

namespace strata::chat {
namespace {
constexpr int kMaxParseDepth = 200;
}

Body parse_template(const std::vector<Token>& tokens, const std::string& name) {
  return Parser(tokens, name).parse_all();
}

Parser::DepthGuard::DepthGuard(Parser& parser) : p(parser) {
  if (++p.depth_ > kMaxParseDepth) p.error(p.cur(), fmt::format("nesting deeper than {} levels", kMaxParseDepth));
}

std::string Parser::describe(const Token& t) const {
  switch (t.type) {
    case Tok::Text: return "text";
    case Tok::VarBegin: return "'{{'";
    case Tok::VarEnd: return "'}}'";
    case Tok::BlockBegin: return "'{%'";
    case Tok::BlockEnd: return "'%}'";
    case Tok::String: return "a string";
    case Tok::Int:
    case Tok::Float: return "'" + t.value + "'";
    case Tok::Eof: return "end of template";
    default: return "'" + t.value + "'";
  }
}

void Parser::error(const Token& at, const std::string& what) const {
  Loc l = at.loc;
  if (at.type == Tok::Eof) l = toks_.size() > 1 ? toks_[toks_.size() - 2].loc : at.loc;
  fail("{}:{}:{}: {}", name_, l.line, l.col, what);
}

bool Parser::accept_op(std::string_view op) {
  if (!is_op(op)) return false;
  next();
  return true;
}

bool Parser::accept_name(std::string_view n) {
  if (!is_name(n)) return false;
  next();
  return true;
}

void Parser::expect_op(std::string_view op) {
  if (!accept_op(op)) error(cur(), fmt::format("expected '{}', got {}", op, describe(cur())));
}

std::string Parser::expect_name() {
  if (cur().type != Tok::Name) error(cur(), fmt::format("expected a name, got {}", describe(cur())));
  return next().value;
}

void Parser::expect_block_end() {
  if (cur().type != Tok::BlockEnd) error(cur(), fmt::format("expected '%}}', got {}", describe(cur())));
  next();
}

Body Parser::parse_all() {
  Body b = body({});
  if (cur().type != Tok::Eof) error(cur(), fmt::format("unexpected {}", describe(cur())));
  return b;
}

// Parses statements up to a {% tag %} named in `end_tags`; stops on its name token.
Body Parser::body(std::initializer_list<std::string_view> end_tags) {
  DepthGuard guard(*this);
  Body out;
  while (true) {
    const Token& t = cur();
    if (t.type == Tok::Eof) {
      if (end_tags.size() == 0) return out;
      std::string want;
      for (auto tag : end_tags) want += (want.empty() ? "'" : " or '") + std::string(tag) + "'";
      error(t, "unexpected end of template, expected " + want);
    }
    if (t.type == Tok::Text) {
      out.push_back(std::make_unique<TextStmt>(t.loc, t.value));
      next();
    } else if (t.type == Tok::VarBegin) {
      next();
      auto e = tuple();
      if (cur().type != Tok::VarEnd) error(cur(), fmt::format("expected '}}}}', got {}", describe(cur())));
      next();
      out.push_back(std::make_unique<OutputStmt>(t.loc, std::move(e)));
    } else if (t.type == Tok::BlockBegin) {
      const Token& kw = peek();
      for (auto tag : end_tags)
        if (kw.type == Tok::Name && kw.value == tag) {
          next();
          return out;
        }
      next();
      if (auto s = statement()) out.push_back(std::move(s));
    } else {
      error(t, fmt::format("unexpected {}", describe(t)));
    }
  }
}

// Consumes `{% name %}` after body() stopped on the name.
void Parser::end_tag(std::string_view name) {
  if (!accept_name(name)) error(cur(), fmt::format("expected '{}', got {}", name, describe(cur())));
  expect_block_end();
}

StmtPtr Parser::statement() {
  const Token& kw = cur();
  if (kw.type != Tok::Name) error(kw, fmt::format("expected a tag name, got {}", describe(kw)));
  const Loc at = kw.loc;
  const std::string name = next().value;
  if (name == "for") return for_stmt(at);
  if (name == "if") return if_stmt(at);
  if (name == "set") return set_stmt(at);
  if (name == "macro") return macro_stmt(at);
  if (name == "call") return call_block(at);
  if (name == "filter") return filter_block(at);
  if (name == "with") return with_stmt(at);
  if (name == "generation") {
    // transformers' generation tag renders its body as a call block: in a scope of its own.
    expect_block_end();
    auto w = std::make_unique<WithStmt>(at);
    w->body = body({"endgeneration"});
    end_tag("endgeneration");
    return w;
  }
  if (name == "break" || name == "continue") {
    if (loop_depth_ == 0) error(kw, fmt::format("'{}' outside of a for loop", name));
    expect_block_end();
    return std::make_unique<Stmt>(name == "break" ? StmtKind::Break : StmtKind::Continue, at);
  }
  error(kw, fmt::format("unknown tag '{}'", name));
}

StmtPtr Parser::for_stmt(Loc at) {
  auto s = std::make_unique<ForStmt>(at);
  s->target = assign_target(false);
  if (!accept_name("in")) error(cur(), fmt::format("expected 'in', got {}", describe(cur())));
  s->iter = tuple(false);
  if (accept_name("if")) s->filter = expression();
  if (is_name("recursive")) error(cur(), "recursive loops are not supported");
  expect_block_end();
  ++loop_depth_;
  s->body = body({"endfor", "else"});
  --loop_depth_;
  if (accept_name("else")) {
    expect_block_end();
    s->otherwise = body({"endfor"});
  }
  end_tag("endfor");
  return s;
}

StmtPtr Parser::if_stmt(Loc at) {
  auto s = std::make_unique<IfStmt>(at);
  while (true) {
    auto cond = tuple(false);
    expect_block_end();
    Body b = body({"elif", "else", "endif"});
    s->branches.emplace_back(std::move(cond), std::move(b));
    if (accept_name("elif")) continue;
    if (accept_name("else")) {
      expect_block_end();
      s->otherwise = body({"endif"});
    }
    end_tag("endif");
    return s;
  }
}

StmtPtr Parser::set_stmt(Loc at) {
  Target target = assign_target(true);
  if (accept_op("=")) {
    auto s = std::make_unique<SetStmt>(at);
    s->target = std::move(target);
    s->value = tuple();
    expect_block_end();
    return s;
  }
  auto s = std::make_unique<SetBlockStmt>(at);
  s->target = std::move(target);
  while (is_op("|")) s->filters.push_back(filter(nullptr));
  expect_block_end();
  s->body = body({"endset"});
  end_tag("endset");
  return s;
}

Target Parser::assign_target(bool allow_attr) {
  Target t;
  const bool paren = accept_op("(");
  t.names.push_back(expect_name());
  if (allow_attr && !paren && accept_op(".")) {
    t.attr = expect_name();
    return t;
  }
  while (accept_op(",")) {
    t.unpack = true;
    if (cur().type != Tok::Name) break;  // trailing comma
    t.names.push_back(expect_name());
  }
  if (paren) {
    expect_op(")");
    t.unpack = true;
  }
  for (const auto& n : t.names)
    if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None")
      error(cur(), fmt::format("cannot assign to '{}'", n));
  return t;
}

void Parser::params(std::vector<std::string>& names, std::vector<ExprPtr>& defaults) {
  expect_op("(");
  while (!is_op(")")) {
    if (!names.empty()) expect_op(",");
    if (is_op(")")) break;
    names.push_back(expect_name());
    defaults.push_back(accept_op("=") ? expression() : nullptr);
  }
  expect_op(")");
}

StmtPtr Parser::macro_stmt(Loc at) {
  auto s = std::make_unique<MacroStmt>(at);
  s->name = expect_name();
  params(s->params, s->defaults);
  expect_block_end();
  const int saved_loops = loop_depth_;
  loop_depth_ = 0;
  s->body = body({"endmacro"});
  loop_depth_ = saved_loops;
  end_tag("endmacro");
  return s;
}

StmtPtr Parser::call_block(Loc at) {
  auto s = std::make_unique<CallBlockStmt>(at);
  s->caller.name = "caller";
  s->caller.loc = at;
  if (is_op("(")) params(s->caller.params, s->caller.defaults);
  const Token& call_at = cur();
  s->call = expression();
  if (s->call->kind != ExprKind::Call) error(call_at, "expected a call after 'call'");
  expect_block_end();
  const int saved_loops = loop_depth_;
  loop_depth_ = 0;
  s->caller.body = body({"endcall"});
  loop_depth_ = saved_loops;
  end_tag("endcall");
  return s;
}

StmtPtr Parser::filter_block(Loc at) {
  auto s = std::make_unique<FilterBlockStmt>(at);
  do {
    s->filters.push_back(filter(nullptr));
  } while (is_op("|"));
  expect_block_end();
  s->body = body({"endfilter"});
  end_tag("endfilter");
  return s;
}

StmtPtr Parser::with_stmt(Loc at) {
  auto s = std::make_unique<WithStmt>(at);
  while (cur().type != Tok::BlockEnd) {
    if (!s->assigns.empty()) expect_op(",");
    Target t = assign_target(false);
    expect_op("=");
    s->assigns.emplace_back(std::move(t), expression());
  }
  expect_block_end();
  s->body = body({"endwith"});
  end_tag("endwith");
  return s;
}

}  // namespace strata::chat
