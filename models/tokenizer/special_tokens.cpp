#include "models/tokenizer/special_tokens.h"

#include <algorithm>

namespace strata::tok::detail {

namespace {

// C isspace: the whitespace a special token's strip flags swallow.
bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace

SpecialTokenMatcher::SpecialTokenMatcher(std::vector<Entry> entries) : entries_(std::move(entries)) {
  std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    if (a.text.size() != b.text.size()) return a.text.size() > b.text.size();
    return a.id < b.id;
  });
  nodes_.emplace_back();
  for (size_t k = 0; k < entries_.size(); ++k) {
    const std::string& text = entries_[k].text;
    if (text.empty()) continue;
    starts_[uint8_t(text[0])] = true;
    int32_t node = 0;
    for (char ch : text) {
      const auto byte = uint8_t(ch);
      auto& kids = nodes_[size_t(node)].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), byte,
                                 [](const auto& kid, uint8_t b) { return kid.first < b; });
      if (it != kids.end() && it->first == byte) {
        node = it->second;
      } else {
        const auto fresh = int32_t(nodes_.size());
        kids.insert(it, {byte, fresh});
        nodes_.emplace_back();  // invalidates `kids`; not used after this
        node = fresh;
      }
    }
    Node& end = nodes_[size_t(node)];
    if (end.entry_any < 0) end.entry_any = int32_t(k);
    if (entries_[k].always && end.entry_always < 0) end.entry_always = int32_t(k);
  }
}

int32_t SpecialTokenMatcher::child(int32_t node, uint8_t byte) const {
  const auto& kids = nodes_[size_t(node)].children;
  auto it = std::lower_bound(kids.begin(), kids.end(), byte,
                             [](const auto& kid, uint8_t b) { return kid.first < b; });
  return (it != kids.end() && it->first == byte) ? it->second : -1;
}

std::vector<SpecialTokenMatcher::Fragment> SpecialTokenMatcher::partition(std::string_view text,
                                                                          bool parse_special) const {
  const size_t n = text.size();
  // Every occurrence of every eligible text, found in one pass over the trie.
  struct Occurrence {
    int32_t entry;
    uint32_t pos;
  };
  std::vector<Occurrence> found;
  if (!entries_.empty()) {
    for (size_t p = 0; p < n; ++p) {
      if (!starts_[uint8_t(text[p])]) continue;
      int32_t node = 0;
      for (size_t q = p; q < n; ++q) {
        node = child(node, uint8_t(text[q]));
        if (node < 0) break;
        const Node& nd = nodes_[size_t(node)];
        const int32_t e = parse_special ? nd.entry_any : nd.entry_always;
        if (e >= 0) found.push_back({e, uint32_t(p)});
      }
    }
  }
  if (found.empty()) {
    if (n == 0) return {};
    return {{-1, 0, n}};
  }

  // Claim in priority order; an occurrence overlapping anything claimed before is not a match.
  std::sort(found.begin(), found.end(), [](const Occurrence& a, const Occurrence& b) {
    return a.entry != b.entry ? a.entry < b.entry : a.pos < b.pos;
  });
  constexpr int32_t kRaw = -1, kDropped = -2;
  std::vector<int32_t> owner(n, kRaw);
  for (const Occurrence& o : found) {
    const Entry& e = entries_[size_t(o.entry)];
    const size_t begin = o.pos, end = o.pos + e.text.size();
    if (!std::all_of(owner.begin() + long(begin), owner.begin() + long(end),
                     [](int32_t v) { return v == kRaw; }))
      continue;
    std::fill(owner.begin() + long(begin), owner.begin() + long(end), o.entry);
    if (e.lstrip)
      for (size_t q = begin; q > 0 && owner[q - 1] == kRaw && is_ascii_space(text[q - 1]); --q)
        owner[q - 1] = kDropped;
    if (e.rstrip)
      for (size_t q = end; q < n && owner[q] == kRaw && is_ascii_space(text[q]); ++q) owner[q] = kDropped;
  }

  std::vector<Fragment> out;
  for (size_t p = 0; p < n;) {
    if (owner[p] == kRaw) {
      size_t q = p;
      while (q < n && owner[q] == kRaw) ++q;
      out.push_back({-1, p, q});
      p = q;
    } else if (owner[p] == kDropped) {
      ++p;
    } else {
      const Entry& e = entries_[size_t(owner[p])];
      out.push_back({e.id, p, p + e.text.size()});
      p += e.text.size();
    }
  }
  return out;
}

}  // namespace strata::tok::detail
