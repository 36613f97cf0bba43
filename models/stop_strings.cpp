#include "models/stop_strings.h"

#include <algorithm>
#include <utility>

namespace strata::models {

namespace {

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Bytes in the sequence a lead byte starts; 1 for ASCII and for bytes that cannot lead.
size_t sequence_length(unsigned char b) {
  if (b >= 0xC0 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF7) return 4;
  return 1;
}

// Moves `end` back to the start of a UTF-8 sequence that `end` would cut short. Invalid
// bytes are let through as they are: holding them back would not make them valid.
size_t utf8_safe_end(std::string_view s, size_t end) {
  size_t lead = end;
  while (lead > 0 && end - lead < 3 && is_continuation(static_cast<unsigned char>(s[lead - 1])))
    --lead;
  if (lead == 0) return end;
  --lead;  // the byte before the continuation run, if any, may be the lead
  const size_t need = sequence_length(static_cast<unsigned char>(s[lead]));
  return need > end - lead ? lead : end;
}

}  // namespace

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) {
  for (auto& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

StopStringMatcher::Result StopStringMatcher::feed(std::string_view piece) {
  if (stopped_) return {"", true};
  held_.append(piece);

  // Earliest complete stop string wins, wherever it started.
  size_t first = std::string::npos;
  for (const auto& stop : stops_) first = std::min(first, held_.find(stop));
  if (first != std::string::npos) {
    Result r{held_.substr(0, first), true};
    held_.clear();
    stopped_ = true;
    return r;
  }

  // Hold back the longest tail that is a proper prefix of some stop string: everything in
  // front of it can no longer be part of a match.
  size_t keep_from = held_.size();
  const std::string_view held(held_);
  for (const auto& stop : stops_) {
    for (size_t len = std::min(stop.size() - 1, held.size()); len > 0; --len) {
      if (held.ends_with(std::string_view(stop).substr(0, len))) {
        keep_from = std::min(keep_from, held.size() - len);
        break;
      }
    }
  }
  const size_t cut = utf8_safe_end(held, keep_from);
  Result r{held_.substr(0, cut), false};
  held_.erase(0, cut);
  return r;
}

std::string StopStringMatcher::flush() { return std::exchange(held_, std::string{}); }

void StopStringMatcher::reset() {
  held_.clear();
  stopped_ = false;
}

}  // namespace strata::models
