// Python str semantics over UTF-8 bytes: lengths and indices count code points, whitespace and
// case follow Unicode (case mapping covers Latin-1, Latin Extended-A, Greek and Cyrillic).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::chat::text {

bool is_ascii(std::string_view s);
std::u32string decode(std::string_view s);  // invalid bytes become U+FFFD
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
size_t length(std::string_view s);
// Code points [start, start + count) (clamped).
std::string substr(std::string_view s, size_t start, size_t count);
size_t codepoint_index(std::string_view s, size_t byte_offset);

bool is_space(char32_t c);
char32_t to_lower(char32_t c);
char32_t to_upper(char32_t c);
bool is_cased_upper(char32_t c);
bool is_cased_lower(char32_t c);
bool is_alpha(char32_t c);

// strip/lstrip/rstrip: `chars` empty optional means whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string lower(std::string_view s);
std::string upper(std::string_view s);
std::string capitalize(std::string_view s);  // str.capitalize(): first upper, rest lower
std::string title(std::string_view s);       // str.title(): each cased run starts upper
std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);
size_t count(std::string_view s, std::string_view sub);
std::string repeat(std::string_view s, int64_t n);

// Python repr() of a str: single quotes unless only double quotes avoid escaping.
std::string repr(std::string_view s);

}  // namespace strata::chat::text
