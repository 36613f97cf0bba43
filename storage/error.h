// The one error style of strata: user-caused failures (files, flags, requests) throw
// strata::Error with a message naming the file or field and what was expected. Exceptions are
// caught at module boundaries (the command line, a server handler, a task body) and never
// allowed to cross a TBB task or an Asio handler. Programming errors are asserts.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace strata {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace strata
