// CLI11 checks for numeric flags whose messages read like "--n-predict must be >= 0 (got -1)"
// (main() joins the flag name and the message), instead of CLI11's own range text with a
// 300-digit bound. Each also refuses text that is not a number, naming it.
#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace strata::tools {

// A number >= lo.
CLI::Validator at_least(double lo);
// A number in [lo, hi].
CLI::Validator between(double lo, double hi);
// A whole number in [lo, hi] (no fraction, no trailing text); hi defaults to what an int holds.
CLI::Validator integer_at_least(long long lo, long long hi = 2147483647);

// The text of CLI11's parse error as strata prints it: a ValidationError's "--flag: message"
// becomes "--flag message"; others pass through.
std::string describe_parse_error(const CLI::ParseError& e);

}  // namespace strata::tools
