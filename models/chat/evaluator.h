// Walks the parsed template against a context and writes the output. One Evaluator per render:
// it owns the mutable state (scopes, output buffers, step and depth counters).
#pragma once
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "models/chat/ast.h"
#include "models/chat/chat_template.h"
#include "models/chat/value.h"

namespace strata::chat {

// Variables visible at one level: the template top level, a loop iteration, a macro call.
// Lookups walk outward through `parent`; assignments always land in the innermost scope.
struct Scope {
  explicit Scope(std::shared_ptr<Scope> p = nullptr) : parent(std::move(p)) {}
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;
  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value v);
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { Normal, Break, Continue };

class Evaluator {
 public:
  Evaluator(const std::string& name, const RenderLimits& limits, std::time_t now)
      : name_(name), limits_(limits), now_(now) {}
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  std::string render(const Body& body, ScopePtr globals);

  Value eval(const Expr& e);
  Value call(const Value& fn, Args& args);
  Value getattr(const Value& obj, std::string_view name);
  Value getitem(const Value& obj, const Value& key);
  Value apply_filter(std::string_view name, const Value& input, Args& args);
  bool apply_test(std::string_view name, const Value& input, Args& args);

  // Runs `body` with its output captured instead of written (macros, block set, filter blocks).
  std::string capture(const Body& body);
  Value call_macro(const MacroStmt& m, const ScopePtr& closure, Args& args, Value caller);

  // A container changed in place (list.append, ns.x = ...): the only way a template can make
  // a reference cycle, which the end of the render then breaks.
  void note_mutation(const Value& container);

  void step();
  // Fails when a string being built would exceed what the output may hold.
  void check_size(size_t bytes) const;
  std::time_t now() const { return now_; }
  const RenderLimits& limits() const { return limits_; }
  uint64_t steps_left() const { return steps_ < limits_.max_steps ? limits_.max_steps - steps_ : 0; }
  const std::string& name() const { return name_; }

  [[noreturn]] void error_at(Loc at, const std::string& what) const;

 private:
  Flow exec(const Body& body);
  Flow exec_stmt(const Stmt& s);
  Flow exec_for(const ForStmt& s);
  void exec_set(const SetStmt& s);
  void assign(const Target& t, Value v, Loc at);
  void emit(std::string_view s);

  Value eval_node(const Expr& e);
  Value eval_call(const CallExpr& c);
  Value eval_binary(BinOp op, const Value& a, const Value& b);
  bool eval_compare(CmpOp op, const Value& a, const Value& b);
  Value eval_slice(const SliceExpr& s);
  void eval_args(const CallArgs& in, Args& out);

  struct DepthGuard {
    explicit DepthGuard(Evaluator& e);
    ~DepthGuard() { --ev.depth_; }
    Evaluator& ev;
  };

  const std::string& name_;
  const RenderLimits& limits_;
  std::time_t now_;
  ScopePtr scope_;
  std::string* out_ = nullptr;
  uint64_t steps_ = 0;
  // Cleared when the render ends, so that cycles (a macro stored in the scope it closes over,
  // a list appended to itself) do not outlive it. Values never escape a render.
  std::vector<ScopePtr> closure_scopes_;
  std::vector<Value> mutated_;
  std::unordered_set<const void*> mutated_ids_;
  int depth_ = 0;
  Loc last_loc_;
};

// Python semantics shared by the evaluator and the builtins.
bool contains(const Value& container, const Value& item);
Value binary_op(BinOp op, const Value& a, const Value& b, size_t max_bytes);

}  // namespace strata::chat
