// Splits template source into text and tag tokens, applying jinja2's whitespace rules as
// transformers configures them: trim_blocks, lstrip_blocks, `-` markers, no trailing newline.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace strata::chat {

struct Loc {
  int line = 1;
  int col = 1;
};

enum class Tok {
  Text,        // literal template text (already whitespace-trimmed)
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // value holds the decoded literal
  Int,
  Float,
  Op,          // value holds the operator: + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : |
  Eof,
};

struct Token {
  Tok type;
  std::string value;
  Loc loc;
};

// Throws strata::Error "<name>:<line>:<col>: ..." on an unterminated tag, string or comment.
std::vector<Token> tokenize(std::string_view source, const std::string& name);

}  // namespace strata::chat
