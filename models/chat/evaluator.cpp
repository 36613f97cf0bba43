// Statements: output, control flow, assignment, macros. Scoping follows jinja2: every loop
// iteration, macro call and call/with/generation body gets a fresh scope, `if` does not.
#include "models/chat/evaluator.h"

#include "storage/error.h"

namespace strata::chat {

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent.get())
    for (const auto& [k, v] : s->vars)
      if (k == name) return &v;
  return nullptr;
}

void Scope::set(std::string_view name, Value v) {
  for (auto& [k, old] : vars)
    if (k == name) {
      old = std::move(v);
      return;
    }
  vars.emplace_back(std::string(name), std::move(v));
}

Evaluator::DepthGuard::DepthGuard(Evaluator& e) : ev(e) {
  if (++ev.depth_ > ev.limits_.max_depth) {
    --ev.depth_;
    throw Fault{fmt::format("nesting deeper than the limit of {} (runaway recursion?)", ev.limits_.max_depth)};
  }
}

Evaluator::~Evaluator() {
  for (const ScopePtr& s : closure_scopes_) s->vars.clear();
  for (const Value& v : mutated_) {
    if (v.is_list()) v.as_list().items.clear();
    else if (v.is_dict()) v.as_dict().entries.clear();
    else if (v.is_namespace()) v.as_namespace().entries.clear();
  }
}

void Evaluator::note_mutation(const Value& container) {
  if (mutated_ids_.insert(container.identity()).second) mutated_.push_back(container);
}

void Evaluator::error_at(Loc at, const std::string& what) const {
  fail("{}:{}:{}: {}", name_, at.line, at.col, what);
}

void Evaluator::step() {
  if (++steps_ > limits_.max_steps)
    throw Fault{fmt::format("evaluation exceeded the limit of {} steps", limits_.max_steps)};
}

void Evaluator::check_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes)
    throw Fault{fmt::format("a string of {} bytes exceeds the output limit of {} bytes", bytes, limits_.max_output_bytes)};
}

void Evaluator::emit(std::string_view s) {
  if (out_->size() + s.size() > limits_.max_output_bytes)
    throw Fault{fmt::format("output exceeds the limit of {} bytes", limits_.max_output_bytes)};
  out_->append(s);
}

std::string Evaluator::render(const Body& body, ScopePtr globals) {
  scope_ = std::move(globals);
  std::string out;
  out_ = &out;
  exec(body);
  return out;
}

std::string Evaluator::capture(const Body& body) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  try {
    exec(body);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buf;
}

Flow Evaluator::exec(const Body& body) {
  for (const auto& s : body) {
    const Flow f = exec_stmt(*s);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

namespace {
// Restores the evaluator's scope when a nested one ends, also on the way out of an error.
struct ScopeSwap {
  ScopeSwap(ScopePtr& slot, ScopePtr next) : slot(slot), saved(std::move(slot)) { slot = std::move(next); }
  ~ScopeSwap() { slot = std::move(saved); }
  ScopePtr& slot;
  ScopePtr saved;
};
}  // namespace

Flow Evaluator::exec_stmt(const Stmt& s) {
  try {
    step();
    switch (s.kind) {
      case StmtKind::Text: emit(static_cast<const TextStmt&>(s).text); return Flow::Normal;
      case StmtKind::Output: {
        const Value v = eval(*static_cast<const OutputStmt&>(s).expr);
        if (v.is_string()) {
          emit(v.as_string());
        } else {
          emit(v.str());
        }
        return Flow::Normal;
      }
      case StmtKind::If: {
        DepthGuard guard(*this);
        const auto& st = static_cast<const IfStmt&>(s);
        for (const auto& [cond, body] : st.branches)
          if (eval(*cond).truthy()) return exec(body);
        return exec(st.otherwise);
      }
      case StmtKind::For: {
        DepthGuard guard(*this);
        return exec_for(static_cast<const ForStmt&>(s));
      }
      case StmtKind::Set: exec_set(static_cast<const SetStmt&>(s)); return Flow::Normal;
      case StmtKind::SetBlock: {
        const auto& st = static_cast<const SetBlockStmt&>(s);
        Value v(capture(st.body));
        for (const auto& f : st.filters) {
          const auto& fe = static_cast<const FilterExpr&>(*f);
          Args args;
          eval_args(fe.args, args);
          v = apply_filter(fe.name, v, args);
        }
        assign(st.target, std::move(v), s.loc);
        return Flow::Normal;
      }
      case StmtKind::Macro: {
        const auto& m = static_cast<const MacroStmt&>(s);
        auto fn = std::make_shared<Callable>();
        fn->name = m.name;
        fn->fn = [&m, closure = scope_](Evaluator& ev, Args& args) { return ev.call_macro(m, closure, args, Value()); };
        scope_->set(m.name, Value(std::move(fn)));
        closure_scopes_.push_back(scope_);
        return Flow::Normal;
      }
      case StmtKind::CallBlock: {
        const auto& st = static_cast<const CallBlockStmt&>(s);
        auto caller = std::make_shared<Callable>();
        caller->name = "caller";
        caller->fn = [&st, closure = scope_](Evaluator& ev, Args& args) {
          return ev.call_macro(st.caller, closure, args, Value());
        };
        closure_scopes_.push_back(scope_);
        const auto& ce = static_cast<const CallExpr&>(*st.call);
        const Value fn = eval(*ce.callee);
        Args args;
        eval_args(ce.args, args);
        args.kw.emplace_back("caller", Value(std::move(caller)));
        emit(call(fn, args).str());
        return Flow::Normal;
      }
      case StmtKind::FilterBlock: {
        const auto& st = static_cast<const FilterBlockStmt&>(s);
        Value v(capture(st.body));
        for (const auto& f : st.filters) {
          const auto& fe = static_cast<const FilterExpr&>(*f);
          Args args;
          eval_args(fe.args, args);
          v = apply_filter(fe.name, v, args);
        }
        emit(v.str());
        return Flow::Normal;
      }
      case StmtKind::With: {
        DepthGuard guard(*this);
        const auto& st = static_cast<const WithStmt&>(s);
        auto inner = std::make_shared<Scope>(scope_);
        for (const auto& [target, expr] : st.assigns) {
          Value v = eval(*expr);
          ScopeSwap swap(scope_, inner);
          assign(target, std::move(v), s.loc);
        }
        ScopeSwap swap(scope_, inner);
        return exec(st.body);
      }
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
    }
  } catch (const Fault& f) {
    error_at(s.loc, f.message);
  }
  return Flow::Normal;
}

Flow Evaluator::exec_for(const ForStmt& s) {
  const Value iterable = eval(*s.iter);
  std::vector<Value> items = iterable.iterate();
  if (s.filter) {
    std::vector<Value> kept;
    for (auto& item : items) {
      step();
      ScopeSwap swap(scope_, std::make_shared<Scope>(scope_));
      assign(s.target, item, s.loc);
      if (eval(*s.filter).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(s.otherwise);
  const auto n = int64_t(items.size());
  auto index = std::make_shared<int64_t>(0);
  auto cycle = std::make_shared<Callable>();
  cycle->name = "cycle";
  cycle->fn = [index](Evaluator&, Args& args) -> Value {
    if (args.pos.empty()) fault("no items for cycling given");
    return args.pos[size_t(*index % int64_t(args.pos.size()))];
  };
  const Value cycle_value(cycle);
  const ScopePtr outer = scope_;
  for (int64_t i = 0; i < n; ++i) {
    step();
    *index = i;
    auto loop = std::make_shared<DictObj>();
    loop->entries = {{Value("index"), Value(i + 1)},
                     {Value("index0"), Value(i)},
                     {Value("revindex"), Value(n - i)},
                     {Value("revindex0"), Value(n - i - 1)},
                     {Value("first"), Value(i == 0)},
                     {Value("last"), Value(i == n - 1)},
                     {Value("length"), Value(n)},
                     {Value("depth"), Value(1)},
                     {Value("depth0"), Value(0)},
                     {Value("previtem"), i > 0 ? items[size_t(i - 1)] : Value::undefined("there is no previous item")},
                     {Value("nextitem"), i + 1 < n ? items[size_t(i + 1)] : Value::undefined("there is no next item")},
                     {Value("cycle"), cycle_value}};
    ScopeSwap swap(scope_, std::make_shared<Scope>(outer));
    scope_->vars.reserve(4);
    assign(s.target, items[size_t(i)], s.loc);
    scope_->set("loop", Value(std::move(loop)));
    if (exec(s.body) == Flow::Break) break;
  }
  return Flow::Normal;
}

void Evaluator::exec_set(const SetStmt& s) { assign(s.target, eval(*s.value), s.loc); }

void Evaluator::assign(const Target& t, Value v, Loc at) {
  if (!t.attr.empty()) {
    const Value* ns = scope_->find(t.names[0]);
    if (!ns || !ns->is_namespace()) fault("cannot assign attribute '{}' on '{}': not a namespace", t.attr, t.names[0]);
    ns->as_namespace().set(Value(t.attr), std::move(v));
    note_mutation(*ns);
    return;
  }
  if (!t.unpack) {
    scope_->set(t.names[0], std::move(v));
    return;
  }
  const std::vector<Value> parts = v.iterate();
  if (parts.size() < t.names.size())
    fault("not enough values to unpack (expected {}, got {})", t.names.size(), parts.size());
  if (parts.size() > t.names.size()) fault("too many values to unpack (expected {})", t.names.size());
  for (size_t i = 0; i < parts.size(); ++i) scope_->set(t.names[i], parts[i]);
}

Value Evaluator::call_macro(const MacroStmt& m, const ScopePtr& closure, Args& args, Value caller) {
  DepthGuard guard(*this);
  step();
  auto scope = std::make_shared<Scope>(closure);
  ScopeSwap swap(scope_, scope);
  for (size_t i = 0; i < m.params.size(); ++i) {
    const std::string& p = m.params[i];
    const Value* given = nullptr;
    if (i < args.pos.size()) {
      given = &args.pos[i];
    } else {
      for (const auto& [k, v] : args.kw)
        if (k == p) given = &v;
    }
    if (given) {
      scope->set(p, *given);
    } else if (m.defaults[i]) {
      scope->set(p, eval(*m.defaults[i]));
    } else {
      scope->set(p, Value::undefined(fmt::format("parameter '{}' was not provided", p)));
    }
  }
  std::vector<Value> extra;
  for (size_t i = m.params.size(); i < args.pos.size(); ++i) extra.push_back(args.pos[i]);
  scope->set("varargs", Value::list(std::move(extra), true));
  auto kwargs = std::make_shared<DictObj>();
  for (const auto& [k, v] : args.kw) {
    if (k == "caller") {
      caller = v;
      continue;
    }
    bool is_param = false;
    for (const auto& p : m.params) is_param = is_param || p == k;
    if (!is_param) kwargs->set(Value(k), v);
  }
  scope->set("kwargs", Value(std::move(kwargs)));
  if (!caller.is_undefined()) scope->set("caller", std::move(caller));
  return Value(capture(m.body));
}

}  // namespace strata::chat
