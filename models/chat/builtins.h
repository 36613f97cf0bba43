// What a template can call by name: filters (x|f), tests (x is t), methods of str/list/dict
// (x.split()), and the global functions (range, dict, namespace, raise_exception, strftime_now).
#pragma once
#include <string>
#include <string_view>

#include "models/chat/value.h"

namespace strata::chat {

class Evaluator;
struct Scope;

using FilterFn = Value (*)(Evaluator& ev, const Value& input, Args& args);
using TestFn = bool (*)(Evaluator& ev, const Value& input, Args& args);

const FilterFn* find_filter(std::string_view name);  // null when jinja2 has no such filter
const TestFn* find_test(std::string_view name);

bool has_method(const Value& obj, std::string_view name);
Value call_method(Evaluator& ev, const Value& obj, std::string_view name, Args& args);

void install_globals(Scope& scope);

// Argument access for builtins: the i-th positional, else the keyword `name`, else `fallback`.
const Value* arg(const Args& args, size_t i, std::string_view name);
Value arg_or(const Args& args, size_t i, std::string_view name, Value fallback);
std::string arg_str(const Args& args, size_t i, std::string_view name, std::string fallback);
int64_t arg_int(const Args& args, size_t i, std::string_view name, int64_t fallback);
bool arg_bool(const Args& args, size_t i, std::string_view name, bool fallback);

// Python formatting: "fmt" % args and "fmt".format(*pos, **kw). A width, precision or index
// beyond max_bytes (the render's output limit) is an error before anything is allocated.
std::string percent_format(const std::string& fmt, const Value& args, size_t max_bytes);
std::string str_format(const std::string& fmt, const Args& args, size_t max_bytes);

}  // namespace strata::chat
