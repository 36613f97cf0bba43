// Cutting generated text at the first stop string while streaming it token by token.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace strata::models {

// Text is fed as it is decoded, one token's piece at a time. What comes back is safe to show
// now: a tail that could still grow into a stop string is held back, and so is an incomplete
// trailing UTF-8 sequence (a character split across tokens), so emitted text never ends in
// half a character. Matching is on bytes; a stop string may span any number of pieces.
class StopStringMatcher {
 public:
  struct Result {
    std::string emit;  // text to pass on now
    bool stopped;      // a stop string completed; emit holds the text before it
  };

  // Empty stop strings are ignored (they would end every generation before it began).
  explicit StopStringMatcher(std::vector<std::string> stops);

  // After a stop, the stop string and everything after it are dropped: later calls return
  // {"", true}.
  Result feed(std::string_view piece);

  // At the end of generation: returns (and forgets) the held-back text, even a partial UTF-8
  // sequence, since nothing more will complete it. Empty after a stop.
  std::string flush();

  bool stopped() const { return stopped_; }

  // Ready for a new generation with the same stop strings.
  void reset();

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace strata::models
