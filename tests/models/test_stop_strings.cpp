#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "models/stop_strings.h"

using strata::models::StopStringMatcher;

namespace {

struct Run {
  std::vector<std::string> emitted;  // one entry per feed
  std::string text;                  // everything emitted, flush included
  bool stopped = false;
};

Run run(std::vector<std::string> stops, const std::vector<std::string>& pieces) {
  StopStringMatcher m(std::move(stops));
  Run r;
  for (const auto& piece : pieces) {
    auto result = m.feed(piece);
    r.emitted.push_back(result.emit);
    r.text += result.emit;
    if (result.stopped) {
      r.stopped = true;
      break;
    }
  }
  r.text += m.flush();
  return r;
}

}  // namespace

TEST_CASE("text without stop strings passes straight through") {
  const auto r = run({"</s>"}, {"Hello", ",", " world"});
  CHECK_FALSE(r.stopped);
  CHECK(r.emitted == std::vector<std::string>{"Hello", ",", " world"});
  CHECK(r.text == "Hello, world");
}

TEST_CASE("no stop strings at all") {
  const auto r = run({}, {"a<", "b"});
  CHECK(r.emitted == std::vector<std::string>{"a<", "b"});
}

TEST_CASE("a stop string inside one piece cuts it") {
  const auto r = run({"STOP"}, {"abc", "deSTOPfg", "never"});
  CHECK(r.stopped);
  CHECK(r.emitted == std::vector<std::string>{"abc", "de"});
  CHECK(r.text == "abcde");
}

TEST_CASE("a stop string spanning several pieces is held back, then dropped") {
  const auto r = run({"<|im_end|>"}, {"Hi", " there<", "|im", "_", "end", "|>", "more"});
  CHECK(r.stopped);
  CHECK(r.emitted == std::vector<std::string>{"Hi", " there", "", "", "", ""});
  CHECK(r.text == "Hi there");
}

TEST_CASE("a partial match that breaks off releases the held text") {
  const auto r = run({"<|im_end|>"}, {"a <|im", "_start", "|> b"});
  CHECK_FALSE(r.stopped);
  CHECK(r.emitted == std::vector<std::string>{"a ", "<|im_start", "|> b"});
  CHECK(r.text == "a <|im_start|> b");
}

TEST_CASE("after a mismatch a new match may begin inside the held text") {
  // "aab" for stop "aab...": the first 'a' can no longer start a match, the second can.
  const auto r = run({"aabc"}, {"a", "a", "a", "b", "c", "x"});
  CHECK(r.stopped);
  CHECK(r.text == "a");
  CHECK(r.emitted == std::vector<std::string>{"", "", "a", "", ""});
}

TEST_CASE("several stop strings: the earliest one wins") {
  SUBCASE("earliest start, even if another completes in the same piece") {
    const auto r = run({"world", "lo w"}, {"hel", "lo world"});
    CHECK(r.stopped);
    CHECK(r.text == "hel");
  }
  SUBCASE("hold back for the longest possible prefix of any stop") {
    const auto r = run({"\n\n", "User:"}, {"ok\n", "Us", "er", ":"});
    CHECK(r.stopped);
    CHECK(r.emitted == std::vector<std::string>{"ok", "\n", "", ""});
    CHECK(r.text == "ok\n");
  }
  SUBCASE("the second stop matches") {
    const auto r = run({"###", "END"}, {"x E", "N", "D y"});
    CHECK(r.stopped);
    CHECK(r.text == "x ");
  }
}

TEST_CASE("a stop at the very start emits nothing") {
  const auto r = run({"<eos>"}, {"<eos>", "tail"});
  CHECK(r.stopped);
  CHECK(r.emitted == std::vector<std::string>{""});
  CHECK(r.text.empty());
}

TEST_CASE("after a stop, feeding returns nothing and stays stopped") {
  StopStringMatcher m({"x"});
  CHECK(m.feed("abxcd").emit == "ab");
  const auto again = m.feed("more");
  CHECK(again.stopped);
  CHECK(again.emit.empty());
  CHECK(m.flush().empty());
  CHECK(m.stopped());
  m.reset();
  CHECK_FALSE(m.stopped());
  CHECK(m.feed("yz").emit == "yz");
}

TEST_CASE("an incomplete UTF-8 character is held back until complete") {
  // U+4F60 (E4 BD A0) split over three tokens, then U+1F600 (F0 9F 98 80) over two.
  const auto r = run({}, {"a\xE4", "\xBD", "\xA0" "b", "\xF0\x9F", "\x98\x80"});
  CHECK(r.emitted ==
        std::vector<std::string>{"a", "", "\xE4\xBD\xA0" "b", "", "\xF0\x9F\x98\x80"});
  // Three of four bytes, then the last; and a two-byte character (U+00E9) split in half.
  const auto r2 = run({}, {"\xF0\x9F\x98", "\x80!", "caf\xC3", "\xA9"});
  CHECK(r2.emitted == std::vector<std::string>{"", "\xF0\x9F\x98\x80!", "caf", "\xC3\xA9"});
}

TEST_CASE("UTF-8 hold-back and stop strings together") {
  SUBCASE("multi-byte stop string split mid-character") {
    const auto r = run({"\xE3\x80\x82"}, {"done\xE3", "\x80", "\x82", "after"});  // U+3002
    CHECK(r.stopped);
    CHECK(r.text == "done");
  }
  SUBCASE("a character that starts like the stop but is not it is released whole") {
    // U+3001 (E3 80 81) shares two bytes with the stop U+3002.
    const auto r = run({"\xE3\x80\x82"}, {"x\xE3", "\x80", "\x81y"});
    CHECK_FALSE(r.stopped);
    CHECK(r.emitted == std::vector<std::string>{"x", "", "\xE3\x80\x81y"});
  }
  SUBCASE("stray continuation bytes are not held forever") {
    const auto r = run({}, {"a\x80\x80\x80\x80", "b"});
    CHECK(r.emitted == std::vector<std::string>{"a\x80\x80\x80\x80", "b"});
  }
}

TEST_CASE("flush returns the held-back text at the end") {
  SUBCASE("a partial stop string") {
    StopStringMatcher m({"</answer>"});
    CHECK(m.feed("42</ans").emit == "42");
    CHECK(m.flush() == "</ans");
    CHECK(m.flush().empty());
  }
  SUBCASE("a partial UTF-8 character") {
    StopStringMatcher m({});
    CHECK(m.feed("ok\xF0\x9F").emit == "ok");
    CHECK(m.flush() == "\xF0\x9F");
  }
}

TEST_CASE("empty stop strings are ignored") {
  const auto r = run({"", "Z"}, {"ab", "cZ"});
  CHECK(r.stopped);
  CHECK(r.text == "abc");
}
