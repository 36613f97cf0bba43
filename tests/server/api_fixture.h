// A small ModelContext for the API mapping tests: synth's SentencePiece-style vocabulary and a
// simple chat renderer (no template engine), so no model file is needed.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "models/synth.h"
#include "models/tokenizer/tokenizer.h"
#include "server/api_types.h"
#include "storage/error.h"

namespace strata::test {

inline std::unique_ptr<tok::Tokenizer> tiny_tokenizer() {
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
  s.add_eos = false;
  return tok::Tokenizer::from_spec(s);
}

struct ApiFixture {
  std::unique_ptr<tok::Tokenizer> tk = tiny_tokenizer();
  server::ModelContext m;
  server::json last_context;  // what the renderer last saw
  ApiFixture() {
    m.id = "tiny";
    m.names = {"tiny.gguf"};
    m.tokenizer = tk.get();
    m.n_ctx = 256;
    m.created = 1700000000;
    m.chat_template_source = "{{ messages }}";
    m.render_chat = [this](const server::json& ctx) {
      last_context = ctx;
      std::string s;
      for (const auto& msg : ctx["messages"]) {
        if (msg["role"] == "user" && msg["content"] == "raise") fail("roles must alternate");
        s += msg["role"].get<std::string>() + ": " + msg["content"].get<std::string>() + "\n";
      }
      if (ctx["add_generation_prompt"].get<bool>()) s += "assistant:";
      return s;
    };
  }
};

inline engine::TokenEvent token(const tok::Tokenizer& tk, int32_t id, double t = 0) {
  engine::TokenEvent e;
  e.token = id;
  e.piece = tk.token_to_piece(id);
  e.text = e.piece;
  e.logprob = -0.5f;
  e.top = {{id, -0.5f}, {300 - 1, -1.5f}};
  e.t = t;
  return e;
}

inline engine::FinishEvent finish(engine::FinishReason r, int64_t prompt, int64_t completion) {
  engine::FinishEvent f;
  f.reason = r;
  f.prompt_tokens = prompt;
  f.completion_tokens = completion;
  f.t_submit = 1;
  f.t_first_token = 1.25;
  f.t_end = 2;
  return f;
}

}  // namespace strata::test
