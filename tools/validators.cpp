#include "tools/validators.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace strata::tools {
namespace {

// The whole text as a finite number, or why not.
bool parse_number(const std::string& s, double& v, std::string& why) {
  const char* b = s.c_str();
  char* end = nullptr;
  errno = 0;
  v = std::strtod(b, &end);
  if (s.empty() || end == b || *end != '\0' || !std::isfinite(v)) {
    why = fmt::format("must be a number (got '{}')", s);
    return false;
  }
  return true;
}

std::string shown(double v) { return fmt::format("{}", v); }

}  // namespace

CLI::Validator at_least(double lo) {
  return CLI::Validator(
      [lo](std::string& s) -> std::string {
        double v = 0;
        std::string why;
        if (!parse_number(s, v, why)) return why;
        if (v < lo) return fmt::format("must be >= {} (got {})", shown(lo), s);
        return {};
      },
      fmt::format(">= {}", shown(lo)), "at_least");
}

CLI::Validator between(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        double v = 0;
        std::string why;
        if (!parse_number(s, v, why)) return why;
        if (v < lo || v > hi) return fmt::format("must be between {} and {} (got {})", shown(lo), shown(hi), s);
        return {};
      },
      fmt::format("{}..{}", shown(lo), shown(hi)), "between");
}

CLI::Validator integer_at_least(long long lo, long long hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        const char* b = s.c_str();
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(b, &end, 10);
        if (s.empty() || end == b || *end != '\0') return fmt::format("must be a whole number (got '{}')", s);
        if (v < lo) return fmt::format("must be >= {} (got {})", lo, s);
        if (errno == ERANGE || v > hi) return fmt::format("must be <= {} (got {})", hi, s);
        return {};
      },
      fmt::format(">= {}", lo), "integer_at_least");
}

std::string describe_parse_error(const CLI::ParseError& e) {
  std::string msg = e.what();
  if (dynamic_cast<const CLI::ValidationError*>(&e)) {
    const size_t colon = msg.find(": ");
    if (colon != std::string::npos && msg.starts_with("-")) msg.replace(colon, 2, " ");
  }
  return msg;
}

}  // namespace strata::tools
