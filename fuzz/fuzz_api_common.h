// The served model as the API fuzz targets see it: synth's SentencePiece vocabulary and the real
// chat-template interpreter on the ChatML template (what `strata serve` uses for a model without
// a template), so a request body goes through the same validation, rendering and tokenizing as
// in the server.
#pragma once
#include <memory>

#include "models/chat/chat_template.h"
#include "models/synth.h"
#include "models/tokenizer/tokenizer.h"
#include "server/api_types.h"

namespace strata::fuzz {

inline const server::ModelContext& api_context() {
  static const auto tk = [] {
    tok::VocabSpec s;
    s.model = "llama";
    s.tokens = models::synth_vocab(300);
    s.scores.assign(s.tokens.size(), 0.0f);
    s.token_types.assign(s.tokens.size(), 1);
    s.token_types[0] = 2;
    s.token_types[1] = s.token_types[2] = 3;
    for (int b = 0; b < 256; ++b) s.token_types[3 + b] = 6;
    for (size_t i = 259; i < s.tokens.size(); ++i) s.scores[i] = -float(i - 259);
    s.bos_id = 1;
    s.eos_id = 2;
    s.unk_id = 0;
    s.add_bos = true;
    return tok::Tokenizer::from_spec(s);
  }();
  static const server::ModelContext ctx = [] {
    server::ModelContext m;
    m.id = "tiny";
    m.names = {"tiny.gguf", "tiny"};
    m.tokenizer = tk.get();
    m.n_ctx = 256;
    m.created = 1700000000;
    m.chat_template_source = chat::kChatMlTemplate;
    auto tmpl = chat::ChatTemplate::parse(chat::kChatMlTemplate, "chatml");
    m.render_chat = [tmpl](const server::json& c) { return tmpl.render(c); };
    return m;
  }();
  return ctx;
}

}  // namespace strata::fuzz
