// Global functions a chat template may call, and the argument helpers builtins share.
#include <ctime>

#include "models/chat/builtins.h"
#include "models/chat/evaluator.h"
#include "storage/error.h"

namespace strata::chat {

const Value* arg(const Args& args, size_t i, std::string_view name) {
  if (i < args.pos.size()) return &args.pos[i];
  for (const auto& [k, v] : args.kw)
    if (k == name) return &v;
  return nullptr;
}

Value arg_or(const Args& args, size_t i, std::string_view name, Value fallback) {
  const Value* v = arg(args, i, name);
  return v ? *v : std::move(fallback);
}

std::string arg_str(const Args& args, size_t i, std::string_view name, std::string fallback) {
  const Value* v = arg(args, i, name);
  return v && !v->is_none() ? v->str() : std::move(fallback);
}

int64_t arg_int(const Args& args, size_t i, std::string_view name, int64_t fallback) {
  const Value* v = arg(args, i, name);
  if (!v || v->is_none()) return fallback;
  if (!v->is_number()) fault("argument '{}' must be a number, not {}", name, v->type_name());
  return v->to_int();
}

bool arg_bool(const Args& args, size_t i, std::string_view name, bool fallback) {
  const Value* v = arg(args, i, name);
  return v ? v->truthy() : fallback;
}

namespace {

Value make_callable(std::string name, std::function<Value(Evaluator&, Args&)> fn) {
  auto c = std::make_shared<Callable>();
  c->name = std::move(name);
  c->fn = std::move(fn);
  return Value(std::move(c));
}

Value range(Evaluator& ev, Args& a) {
  if (a.pos.empty() || a.pos.size() > 3) fault("range expected 1 to 3 arguments, got {}", a.pos.size());
  for (const auto& v : a.pos)
    if (!v.is_int() && !v.is_bool()) fault("'{}' object cannot be interpreted as an integer", v.type_name());
  const int64_t start = a.pos.size() == 1 ? 0 : a.pos[0].to_int();
  const int64_t stop = a.pos.size() == 1 ? a.pos[0].to_int() : a.pos[1].to_int();
  const int64_t step = a.pos.size() == 3 ? a.pos[2].to_int() : 1;
  if (step == 0) fault("range() arg 3 must not be zero");
  const __int128 span = step > 0 ? __int128(stop) - start : __int128(start) - stop;
  const __int128 n = span <= 0 ? 0 : (span + (step > 0 ? step : -__int128(step)) - 1) / (step > 0 ? step : -__int128(step));
  // Each item costs a step to use, so a range longer than the steps left can only run out.
  if (n > __int128(ev.steps_left()))
    fault("range of {} items exceeds the evaluation step limit of {}", int64_t(n), ev.limits().max_steps);
  if (n > __int128(ev.limits().max_output_bytes))
    fault("range of {} items exceeds the size limit of {}", int64_t(n), ev.limits().max_output_bytes);
  std::vector<Value> out;
  out.reserve(size_t(n));
  for (int64_t i = 0, v = start; i < int64_t(n); ++i, v += step) out.emplace_back(v);
  return Value::list(std::move(out));
}

// dict(**kw) and namespace(**kw) also accept one mapping (or list of pairs) positionally.
void fill(DictObj& d, Args& a, const char* what) {
  if (a.pos.size() > 1) fault("{} expected at most 1 positional argument, got {}", what, a.pos.size());
  if (!a.pos.empty()) {
    const Value& src = a.pos[0];
    if (src.is_dict() || src.is_namespace()) {
      for (const auto& [k, v] : (src.is_dict() ? src.as_dict() : src.as_namespace()).entries) d.set(k, v);
    } else {
      for (const Value& pair : src.iterate()) {
        const std::vector<Value> kv = pair.iterate();
        if (kv.size() != 2) fault("{} sequence elements must be pairs", what);
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : a.kw) d.set(Value(k), v);
}

std::string strftime_at(std::time_t t, const std::string& f) {
  std::tm tm{};
  localtime_r(&t, &tm);
  if (f.empty()) return "";
  for (size_t cap = 256; cap <= (1u << 16); cap *= 4) {
    std::string buf(cap, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
    if (n > 0) return buf.substr(0, n);
  }
  return "";
}

}  // namespace

void install_globals(Scope& scope) {
  scope.set("range", make_callable("range", range));
  scope.set("dict", make_callable("dict", [](Evaluator&, Args& a) {
    auto d = std::make_shared<DictObj>();
    fill(*d, a, "dict");
    return Value(std::move(d));
  }));
  scope.set("namespace", make_callable("namespace", [](Evaluator&, Args& a) {
    auto ns = std::make_shared<NamespaceObj>();
    fill(*ns, a, "namespace");
    return Value(std::move(ns));
  }));
  scope.set("raise_exception", make_callable("raise_exception", [](Evaluator&, Args& a) -> Value {
    // The template's own message, unprefixed: it is written for the user.
    throw Error(a.pos.empty() ? std::string("raise_exception called") : a.pos[0].str());
  }));
  scope.set("strftime_now", make_callable("strftime_now", [](Evaluator& ev, Args& a) {
    return Value(strftime_at(ev.now(), arg_str(a, 0, "format", "")));
  }));
}

}  // namespace strata::chat
