// Writes generated text to a stream as valid UTF-8: a character split across two tokens is
// held until it completes, and bytes that can never form a character (a random-weight model
// emits plenty) become U+FFFD instead of reaching the terminal raw.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace strata::tools {

class Utf8Printer {
 public:
  explicit Utf8Printer(std::FILE* out) : out_(out) {}
  void write(std::string_view text);
  // Writes what is held (an unfinished character becomes U+FFFD) and flushes.
  void flush();

  // Everything valid in `text` as is, every invalid byte as U+FFFD; a trailing sequence that
  // could still complete is returned in `rest` instead (when rest is not null).
  static std::string sanitize(std::string_view text, std::string* rest = nullptr);

 private:
  std::FILE* out_;
  std::string held_;
};

}  // namespace strata::tools
