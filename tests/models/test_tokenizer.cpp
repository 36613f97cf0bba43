// Tokenizers against llama.cpp: its tokenizer test vectors (every case), the prompt ids of every
// golden model, pre-tokenizer splits worked out by hand from the regexes, special tokens, errors,
// speed, and the `strata tokenize` command.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/gguf/gguf.h"
#include "models/tokenizer/pretokenizer.h"
#include "models/tokenizer/tokenizer.h"
#include "storage/error.h"
#include "tests/shared_data.h"

using strata::tok::PreTokenizer;
using strata::tok::TokenAttr;
using strata::tok::TokenId;
using strata::tok::Tokenizer;
using strata::tok::VocabSpec;

namespace {

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Tokenizers are loaded once per file: the large vocabs take a moment to parse.
const Tokenizer& tokenizer_for(const std::filesystem::path& gguf_path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[gguf_path.string()];
  if (!slot) slot = Tokenizer::from_gguf(strata::gguf::GGUFFile::open(gguf_path.string()));
  return *slot;
}

std::string escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20) out += fmt::format("\\x{:02x}", c);
    else out += char(c);
  }
  return out;
}

std::string hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += char(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

std::vector<std::string> words(PreTokenizer kind, std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view w : strata::tok::pre_tokenize(kind, text)) out.emplace_back(w);
  return out;
}

}  // namespace

TEST_CASE("tokenizer: every llama.cpp test vector of every vocab") {
  STRATA_REQUIRE_SHARED(shared);
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "deepseek-llm"}) {
    const auto base = shared / "vocab" / fmt::format("ggml-vocab-{}.gguf", name);
    const Tokenizer& tok = tokenizer_for(base);
    // Cases are separated by "\n__ggml_vocab_test__\n"; the file ends with one.
    const std::string inp = read_all(base.string() + ".inp");
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> cases;
    for (size_t pos = 0; pos < inp.size();) {
      const size_t at = inp.find(sep, pos);
      REQUIRE(at != std::string::npos);
      cases.push_back(inp.substr(pos, at - pos));
      pos = at + sep.size();
    }
    std::istringstream out(read_all(base.string() + ".out"));
    std::vector<std::vector<TokenId>> expected;
    for (std::string line; std::getline(out, line);) {
      std::istringstream ids(line);
      expected.emplace_back();
      for (TokenId id; ids >> id;) expected.back().push_back(id);
    }
    REQUIRE(cases.size() == expected.size());
    REQUIRE(cases.size() >= 40);
    for (size_t i = 0; i < cases.size(); ++i) {
      const std::vector<TokenId> got = tok.encode(cases[i], false, false);
      CHECK_MESSAGE(got == expected[i], name << " case " << i << " '" << escaped(cases[i]) << "': got "
                                             << fmt::format("{}", fmt::join(got, " ")) << ", expected "
                                             << fmt::format("{}", fmt::join(expected[i], " ")));
      // Byte-level BPE loses nothing; SentencePiece adds its one space in front.
      const std::string back = tok.decode(got, true);
      const bool spm = std::string(name) == "llama-spm" || std::string(name) == "phi-3";
      CHECK_MESSAGE(back == (spm && !cases[i].empty() ? " " + cases[i] : cases[i]),
                    name << " case " << i << " does not decode back: '" << escaped(back) << "'");
    }
  }
}

TEST_CASE("tokenizer: prompt ids, pieces and generated text of every golden model") {
  STRATA_REQUIRE_SHARED(shared);
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(shared / "models" / "golden")) {
    const std::string fname = entry.path().filename().string();
    if (!fname.ends_with(".public.json")) continue;
    const nlohmann::json golden = nlohmann::json::parse(read_all(entry.path()));
    const Tokenizer& tok = tokenizer_for(shared / "models" / golden["model_file"].get<std::string>());
    for (const auto& r : golden["results"]) {
      const std::string prompt = unhex(r["prompt_hex"].get<std::string>());
      CHECK(prompt == r["prompt"].get<std::string>());
      const auto want = r["prompt_ids"].get<std::vector<TokenId>>();
      const std::vector<TokenId> got = tok.encode(prompt, true, false);
      CHECK_MESSAGE(got == want, fname << " '" << escaped(prompt) << "': got "
                                       << fmt::format("{}", fmt::join(got, " ")));
      const auto pieces = r["prompt_pieces_hex"].get<std::vector<std::string>>();
      REQUIRE(pieces.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i)
        CHECK_MESSAGE(hex(tok.token_to_piece(want[i], true)) == pieces[i], fname << " token " << want[i]);
      // Without the BOS, the ids decode back to the prompt (SentencePiece: after its space).
      std::vector<TokenId> text_ids(want.begin() + (tok.add_bos() ? 1 : 0), want.end());
      const std::string back = tok.decode(text_ids);
      CHECK(back == (tok.add_bos() ? " " + prompt : prompt));

      auto greedy = r["greedy_ids"].get<std::vector<TokenId>>();
      if (r["stopped_at_eog"].get<bool>()) {
        CHECK(tok.is_eog(greedy.back()));
        greedy.pop_back();
      }
      CHECK_MESSAGE(hex(tok.decode(greedy, true)) == r["greedy_text_hex"].get<std::string>(), fname);
      ++checked;
    }
  }
  CHECK(checked >= 13 * 5);
}

TEST_CASE("tokenizer: pre-tokenizer splits follow each regex") {
  // gpt-2: contractions are case-sensitive; one space joins the next word; numbers stay whole.
  CHECK(words(PreTokenizer::Gpt2, "I'M here, you're 12345!!") ==
        std::vector<std::string>{"I", "'", "M", " here", ",", " you", "'re", " 12345", "!!"});
  CHECK(words(PreTokenizer::Gpt2, "a   b\t\n") == std::vector<std::string>{"a", "  ", " b", "\t\n"});
  // llama3: case-insensitive contractions, a non-letter may lead a word, digits in threes,
  // punctuation takes the line breaks after it, whitespace ends at its last line break.
  CHECK(words(PreTokenizer::Llama3, "I'M here, \"you\" 12345") ==
        std::vector<std::string>{"I", "'M", " here", ",", " \"", "you", "\"", " ", "123", "45"});
  CHECK(words(PreTokenizer::Llama3, "hi!!\n\nyo \n  x") ==
        std::vector<std::string>{"hi", "!!\n\n", "yo", " \n", " ", " x"});
  CHECK(words(PreTokenizer::Qwen2, "x 2024") == std::vector<std::string>{"x", " ", "2", "0", "2", "4"});
  // llama.cpp's default (no tokenizer.ggml.pre): punctuation runs, then gpt-2, then numbers,
  // then digit triples.
  CHECK(words(PreTokenizer::Default, "abc 12345 $x") ==
        std::vector<std::string>{"abc", " ", "123", "45", " ", "$", "x"});
  // deepseek-llm: each line break alone, Latin words with one leading space, CJK runs.
  CHECK(words(PreTokenizer::DeepseekLlm, "Hi\n\n 世界ok") ==
        std::vector<std::string>{"Hi", "\n", "\n", " ", "世界", "ok"});
  // No byte is ever dropped, valid UTF-8 or not.
  const std::string broken = "a\xff\xfe b\xe2\x82";
  for (PreTokenizer kind : {PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2,
                            PreTokenizer::DeepseekLlm, PreTokenizer::Default}) {
    std::string joined;
    for (const auto& w : words(kind, broken)) joined += w;
    CHECK(joined == broken);
  }
}

TEST_CASE("tokenizer: special tokens, BOS/EOS and pieces") {
  STRATA_REQUIRE_SHARED(shared);
  const Tokenizer& gpt2 = tokenizer_for(shared / "vocab" / "ggml-vocab-gpt-2.gguf");
  CHECK(gpt2.encode("<|endoftext|>", false, true) == std::vector<TokenId>{50256});
  const auto as_text = gpt2.encode("<|endoftext|>", false, false);
  CHECK(as_text.size() > 1);
  CHECK(gpt2.decode(as_text) == "<|endoftext|>");
  CHECK(gpt2.token_to_piece(50256, true) == "<|endoftext|>");
  CHECK(gpt2.token_to_piece(50256, false).empty());
  CHECK(gpt2.is_eog(50256));
  CHECK_FALSE(gpt2.add_bos());
  CHECK(gpt2.encode("Hello", true) == gpt2.encode("Hello", false));

  const Tokenizer& spm = tokenizer_for(shared / "vocab" / "ggml-vocab-llama-spm.gguf");
  CHECK(spm.bos() == 1);
  CHECK(spm.eos() == 2);
  CHECK(spm.add_bos());
  const auto hello = spm.encode("Hello", false);
  REQUIRE(hello.size() == 1);
  CHECK(spm.encode("Hello", true) == std::vector<TokenId>{1, hello[0]});
  // A special token cuts the text; the text after it gets its own space prefix.
  CHECK(spm.encode("Hello</s>Hello", false, true) == std::vector<TokenId>{hello[0], 2, hello[0]});
  CHECK(spm.token_to_piece(spm.find_token("<0x0A>")) == "\n");
  CHECK(spm.token_to_piece(hello[0]) == " Hello");
  CHECK(spm.token_attr(1) == TokenAttr::Control);

  // Phi-3 drops the whitespace after its chat tokens (llama.cpp keys this on general.name);
  // ids as llama.cpp gives them for this chat turn.
  const Tokenizer& phi3 = tokenizer_for(shared / "vocab" / "ggml-vocab-phi-3.gguf");
  CHECK(phi3.encode("<|user|>\nSYS\nHI<|end|>\n<|assistant|>\n", true, true) ==
        std::vector<TokenId>{1, 32010, 317, 21554, 13, 17628, 32007, 32001});
  CHECK(phi3.is_eog(32007));  // <|end|>
  CHECK(phi3.is_eog(32000));  // eos <|endoftext|>

  // User-defined tokens are matched even without parse_special (DeepSeek's 'ö' is one).
  const Tokenizer& ds = tokenizer_for(shared / "vocab" / "ggml-vocab-deepseek-llm.gguf");
  const TokenId o_umlaut = ds.find_token("ö");
  REQUIRE(o_umlaut >= 0);
  CHECK(ds.token_attr(o_umlaut) == TokenAttr::UserDefined);
  CHECK(ds.encode("ö", false, false) == std::vector<TokenId>{o_umlaut});
  CHECK(ds.encode("x", true) == std::vector<TokenId>{100000, ds.find_token("x")});
}

TEST_CASE("tokenizer: bad metadata is an error naming the file and the value") {
  VocabSpec spec;
  spec.source = "m.gguf";
  spec.tokens = {"a", "b", "ab"};
  spec.model = "bert";
  auto message = [&] {
    try {
      Tokenizer::from_spec(spec);
    } catch (const strata::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message().find("m.gguf") != std::string::npos);
  CHECK(message().find("'bert'") != std::string::npos);
  spec.model = "gpt2";
  spec.merges = {"a b"};
  spec.pre = "klingon";
  CHECK(message().find("m.gguf") != std::string::npos);
  CHECK(message().find("'klingon'") != std::string::npos);
  spec.pre = "gpt-2";
  spec.merges.clear();
  CHECK(message().find("tokenizer.ggml.merges") != std::string::npos);
  spec.merges = {"a b"};
  spec.scores = {0.0f};
  spec.model = "llama";
  CHECK(message().find("tokenizer.ggml.scores") != std::string::npos);
  spec.scores.clear();
  spec.tokens.clear();
  CHECK(message().find("tokenizer.ggml.tokens") != std::string::npos);

  // A hand-built BPE vocab works, and an out-of-range id keeps the default.
  spec.model = "gpt2";
  spec.tokens = {"a", "b", "ab", "Ġ", "Ġab"};
  spec.merges = {"a b", "Ġ ab"};
  spec.bos_id = 4294967295;
  spec.eos_id = 2;
  auto tok = Tokenizer::from_spec(spec);
  CHECK(tok->encode("ab ab", false) == std::vector<TokenId>{2, 4});
  CHECK(tok->bos() == -1);  // the BPE default id (11) is outside this vocab
  CHECK(tok->eos() == 2);
}

TEST_CASE("tokenizer: 10 KB of text encodes well within 50 ms") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string text = read_all(shared / "models" / "ppl_stories.txt");
  REQUIRE(text.size() > 9000);
  for (const char* name : {"llama-spm", "gpt-2", "deepseek-llm"}) {
    const Tokenizer& tok = tokenizer_for(shared / "vocab" / fmt::format("ggml-vocab-{}.gguf", name));
    tok.encode(text, true);  // first-use tables
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text, true);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE(std::string(name) << ": " << text.size() << " bytes -> " << ids.size() << " tokens in " << ms << " ms");
    CHECK(ids.size() > 1500);
    CHECK(ms < 50.0);
  }
}

TEST_CASE("tokenizer: strata tokenize prints ids and pieces") {
  STRATA_REQUIRE_SHARED(shared);
  const std::string bin = strata::test::strata_binary();
  if (!std::filesystem::exists(bin)) {
    MESSAGE("skipped: " << bin << " is not built");
    return;
  }
  auto run = [&](const std::string& args) {
    std::string out;
    FILE* p = popen((bin + " tokenize " + args + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
    return out;
  };
  const std::string model = (shared / "models" / "stories260K-f32.gguf").string();
  const auto j = nlohmann::json::parse(run("-m " + model + " -p 'Once upon a time' --json"));
  CHECK(j["ids"].get<std::vector<TokenId>>() == std::vector<TokenId>{1, 403, 407, 261, 378});
  CHECK(j["pieces"][1].get<std::string>() == " Once");
  const auto no_bos = nlohmann::json::parse(run("-m " + model + " -p 'Once' --no-bos --json"));
  CHECK(no_bos["ids"].get<std::vector<TokenId>>() == std::vector<TokenId>{403});
  CHECK(run("-m " + model + " -p 'Once upon'") == "1 '<s>'\n403 ' Once'\n407 ' upon'\n");
  CHECK(run("-m /nonexistent.gguf -p x").find("/nonexistent.gguf") != std::string::npos);
}
