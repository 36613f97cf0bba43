#include "models/tokenizer/vocab_tokenizer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>

#include "storage/error.h"

namespace strata::tok::detail {

namespace {

TokenAttr attr_of_type(int32_t type) {
  switch (type) {
    case 1: return TokenAttr::Normal;
    case 2: return TokenAttr::Unknown;
    case 3: return TokenAttr::Control;
    case 4: return TokenAttr::UserDefined;
    case 5: return TokenAttr::Unused;
    case 6: return TokenAttr::Byte;
    default: return TokenAttr::Undefined;
  }
}

// Texts that end a turn or a generation in the common chat formats (llama.cpp detects them by
// text too, since few converters write eot/eom ids).
constexpr const char* kEndOfTurnTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>",      "_<EOT>",     "[EOT]",   "<end_of_utterance>",
};
constexpr const char* kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>",      "_<EOT>",  "<|end_of_text|>", "<end_of_utterance>",
};

}  // namespace

VocabTokenizer::VocabTokenizer(const VocabSpec& spec, Kind kind, bool default_add_bos)
    : source_(spec.source) {
  load_tokens(spec);
  set_special_ids(spec, kind);
  add_bos_ = spec.add_bos.value_or(default_add_bos);
  add_eos_ = spec.add_eos.value_or(false);
  add_space_prefix_ = spec.add_space_prefix.value_or(kind == Kind::Spm);
  build_special_matcher(spec);
}

void VocabTokenizer::load_tokens(const VocabSpec& spec) {
  const size_t n = spec.tokens.size();
  if (n == 0) fail("{}: tokenizer.ggml.tokens is empty", source_);
  if (n > size_t(INT32_MAX)) fail("{}: tokenizer.ggml.tokens has {} entries, too many", source_, n);
  if (!spec.scores.empty() && spec.scores.size() < n)
    fail("{}: tokenizer.ggml.scores has {} entries, expected one per token ({})", source_,
         spec.scores.size(), n);
  if (!spec.token_types.empty() && spec.token_types.size() < n)
    fail("{}: tokenizer.ggml.token_type has {} entries, expected one per token ({})", source_,
         spec.token_types.size(), n);
  tokens_.resize(n);
  ids_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Token& t = tokens_[i];
    // An empty entry could never be produced or matched; llama.cpp renames it the same way.
    t.text = spec.tokens[i].empty() ? fmt::format("[EMPTY_{}]", i) : spec.tokens[i];
    t.score = spec.scores.empty() ? 0.0f : spec.scores[i];
    t.attr = spec.token_types.empty() ? TokenAttr::Normal : attr_of_type(spec.token_types[i]);
    ids_.insert_or_assign(t.text, TokenId(i));  // a duplicated text maps to its last id
  }
}

void VocabTokenizer::set_special_ids(const VocabSpec& spec, Kind kind) {
  const auto n = int64_t(tokens_.size());
  auto id_or_none = [&](int64_t id) { return id >= 0 && id < n ? TokenId(id) : TokenId(-1); };
  // Family defaults, as llama.cpp assumes them for files that do not say.
  bos_ = id_or_none(kind == Kind::Spm ? 1 : 11);
  eos_ = id_or_none(kind == Kind::Spm ? 2 : 11);
  unk_ = kind == Kind::Spm ? id_or_none(0) : -1;
  auto apply = [&](const std::optional<int64_t>& value, TokenId& id, const char* key) {
    if (!value) return;
    if (*value >= 0 && *value < n) {
      id = TokenId(*value);
    } else {
      spdlog::debug("{}: tokenizer.ggml.{} = {} is not a token id; keeping {}", source_, key, *value, id);
    }
  };
  apply(spec.bos_id, bos_, "bos_token_id");
  apply(spec.eos_id, eos_, "eos_token_id");
  apply(spec.unk_id, unk_, "unknown_token_id");
  apply(spec.pad_id, pad_, "padding_token_id");
  apply(spec.eot_id, eot_, "eot_token_id");
  apply(spec.eom_id, eom_, "eom_token_id");

  if (eot_ < 0) {
    for (const char* text : kEndOfTurnTexts) {
      if (TokenId id = find_token(text); id >= 0) {
        eot_ = id;
        break;
      }
    }
  }
  if (eom_ < 0) eom_ = find_token("<|eom_id|>");
  for (const char* text : kEndOfGenerationTexts) {
    const TokenId id = find_token(text);
    if (id < 0) continue;
    eog_.push_back(id);
    // Such a token is a control token whatever the file says: it must never be produced from
    // plain text nor printed as text.
    tokens_[size_t(id)].attr = TokenAttr::Control;
  }
  for (TokenId id : {eos_, eot_, eom_})
    if (id >= 0) eog_.push_back(id);
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());
}

void VocabTokenizer::build_special_matcher(const VocabSpec& spec) {
  std::string name = spec.model_name;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  // llama.cpp strips the whitespace after Phi-3's special tokens (its chat format puts a
  // newline there that the model never saw as a token), keyed on the model name.
  const bool phi3 = name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos;
  std::vector<SpecialTokenMatcher::Entry> entries;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const Token& t = tokens_[i];
    if (t.attr != TokenAttr::Control && t.attr != TokenAttr::UserDefined && t.attr != TokenAttr::Unknown)
      continue;
    const bool keep_space = t.text == "<unk>" || t.text == "<s>" || t.text == "<|endoftext|>";
    entries.push_back({TokenId(i), t.text, t.attr == TokenAttr::UserDefined, false, phi3 && !keep_space});
  }
  specials_ = SpecialTokenMatcher(std::move(entries));
}

std::vector<TokenId> VocabTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  bool after_special = true;
  for (const auto& f : specials_.partition(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      encode_text(text.substr(f.begin, f.end - f.begin), after_special, out);
      after_special = false;
    }
  }
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

std::string VocabTokenizer::token_to_piece(TokenId id, bool special) const {
  if (id < 0 || size_t(id) >= tokens_.size()) return {};
  const Token& t = tokens_[size_t(id)];
  switch (t.attr) {
    case TokenAttr::Control:
    case TokenAttr::Unknown: return special ? t.text : std::string();
    case TokenAttr::UserDefined: return t.text;
    case TokenAttr::Normal: return normal_piece(t.text);
    case TokenAttr::Byte: {
      // "<0xAB>"
      unsigned byte = 0;
      if (t.text.size() == 6 && t.text.starts_with("<0x") && t.text.back() == '>' &&
          std::from_chars(t.text.data() + 3, t.text.data() + 5, byte, 16).ptr == t.text.data() + 5)
        return std::string(1, char(byte));
      return {};
    }
    default: return {};
  }
}

bool VocabTokenizer::is_eog(TokenId id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

const std::string& VocabTokenizer::token_text(TokenId id) const {
  static const std::string none;
  return id >= 0 && size_t(id) < tokens_.size() ? tokens_[size_t(id)].text : none;
}

TokenAttr VocabTokenizer::token_attr(TokenId id) const {
  return id >= 0 && size_t(id) < tokens_.size() ? tokens_[size_t(id)].attr : TokenAttr::Undefined;
}

TokenId VocabTokenizer::find_token(std::string_view text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? -1 : it->second;
}

}  // namespace strata::tok::detail
