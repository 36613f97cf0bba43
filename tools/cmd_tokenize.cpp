// `strata tokenize -m MODEL (-p TEXT | -f FILE) [--json] [--no-bos] [--special]`: the token ids
// a model's tokenizer gives a text. Reads only the GGUF metadata, never the weights.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "models/gguf/gguf.h"
#include "models/tokenizer/tokenizer.h"
#include "storage/error.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace strata::tools {
namespace {

// A piece as a readable single-quoted literal: valid UTF-8 as is, control and stray bytes as
// escapes, so a byte-fallback token or a newline stays visible.
std::string quoted(const std::string& piece) {
  std::string out = "'";
  for (size_t i = 0; i < piece.size();) {
    const auto c = uint8_t(piece[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool valid = len > 0 && i + len <= piece.size();
    for (size_t k = 1; valid && k < len; ++k) valid = (uint8_t(piece[i + k]) & 0xC0) == 0x80;
    if (!valid) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else if (len > 1) {
      out.append(piece, i, len);
      i += len;
    } else if (c == '\n') {
      out += "\\n", ++i;
    } else if (c == '\t') {
      out += "\\t", ++i;
    } else if (c == '\r') {
      out += "\\r", ++i;
    } else if (c == '\\' || c == '\'') {
      out += '\\', out += char(c), ++i;
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c), ++i;
    } else {
      out += char(c), ++i;
    }
  }
  return out + "'";
}

struct Options {
  std::string model, prompt, file;
  bool json = false, no_bos = false, special = false;
};

void run(const Options& o) {
  const std::string text = o.file.empty() ? o.prompt : read_file_bytes(o.file);
  const gguf::GGUFFile f = gguf::GGUFFile::open(o.model);
  const auto tokenizer = tok::Tokenizer::from_gguf(f);
  const std::vector<tok::TokenId> ids = tokenizer->encode(text, !o.no_bos, o.special);
  if (o.json) {
    nlohmann::json j;
    j["ids"] = ids;
    j["pieces"] = nlohmann::json::array();
    for (tok::TokenId id : ids) j["pieces"].push_back(tokenizer->token_to_piece(id, true));
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  for (tok::TokenId id : ids) std::printf("%d %s\n", id, quoted(tokenizer->token_to_piece(id, true)).c_str());
}

}  // namespace

void add_tokenize_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids of a text (reads only the tokenizer metadata)");
  auto o = std::make_shared<Options>();
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  auto* prompt = cmd->add_option("-p,--prompt", o->prompt, "Text to tokenize");
  auto* file = cmd->add_option("-f,--file", o->file, "Tokenize this file's bytes instead of -p");
  prompt->excludes(file);
  file->excludes(prompt);
  cmd->add_flag("--json", o->json, "Print {\"ids\": [...], \"pieces\": [...]}");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add BOS/EOS (add_special = false)");
  cmd->add_flag("--special", o->special, "Parse control-token texts such as <|im_end|> as tokens");
  cmd->callback([&exit_code, o, prompt, file] {
    if (prompt->count() == 0 && file->count() == 0) fail("tokenize: give the text with -p TEXT or -f FILE");
    run(*o);
    exit_code = 0;
  });
}

}  // namespace strata::tools
