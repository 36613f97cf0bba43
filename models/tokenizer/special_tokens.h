// Cutting text around special-token texts before the model's own tokenization runs.
//
// Longer texts win: tokens are taken longest first, each claiming all its occurrences (left to
// right, not overlapping) in the text no longer token has claimed. Control and unknown tokens
// take part only when special-token parsing is asked for; user-defined tokens always do.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/tokenizer/tokenizer.h"

namespace strata::tok::detail {

class SpecialTokenMatcher {
 public:
  struct Entry {
    TokenId id;
    std::string text;
    bool always;  // matched even without parse_special (user-defined tokens)
    bool lstrip;  // swallow the whitespace just before it
    bool rstrip;  // swallow the whitespace just after it
  };
  struct Fragment {
    TokenId token;  // -1: raw text [begin, end)
    size_t begin, end;
  };

  SpecialTokenMatcher() = default;
  explicit SpecialTokenMatcher(std::vector<Entry> entries);

  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t entry_any = -1;     // first entry (in priority order) whose text ends here
    int32_t entry_always = -1;  // first such entry that is matched without parse_special
  };
  int32_t child(int32_t node, uint8_t byte) const;

  std::vector<Entry> entries_;  // priority order: longest text first
  std::vector<Node> nodes_;     // trie over the entries' texts; node 0 is the root
  std::array<bool, 256> starts_{};
};

}  // namespace strata::tok::detail
