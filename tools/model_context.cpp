#include "tools/model_context.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "models/chat/chat_template.h"
#include "server/app.h"
#include "storage/error.h"
#include "tools/common.h"

namespace strata::tools {
namespace {

chat::ChatTemplate pick_template(const std::string& file, const models::Model& model, const std::string& model_path,
                                 std::string& source) {
  auto log = server::server_log();
  if (!file.empty()) {
    source = read_file_bytes(file);
    auto t = chat::ChatTemplate::parse(source, file);
    log->info("chat template: {} (--chat-template)", file);
    return t;
  }
  if (auto s = model.file().get_string("tokenizer.chat_template"); s && !s->empty()) {
    try {
      auto t = chat::ChatTemplate::parse(*s, "tokenizer.chat_template");
      source = *s;
      log->info("chat template: the model's tokenizer.chat_template");
      return t;
    } catch (const Error& e) {
      log->warn("the model's chat template does not parse ({}); using ChatML", e.what());
    }
  } else {
    log->warn("{} has no chat template (tokenizer.chat_template); using ChatML", model_path);
  }
  source = chat::kChatMlTemplate;
  return chat::ChatTemplate::parse(source, "ChatML");
}

}  // namespace

void fill_model_context(server::ModelContext& ctx, const models::Model& model, const std::string& model_path,
                        const std::string& alias, const std::string& chat_template_file, int64_t n_ctx) {
  std::string source;
  const chat::ChatTemplate tmpl = pick_template(chat_template_file, model, model_path, source);
  const std::filesystem::path path(model_path);
  std::string stem = path.filename().string();
  if (stem.ends_with(".gguf")) stem.resize(stem.size() - 5);
  if (stem.ends_with(".strata.json")) stem.resize(stem.size() - 12);  // a placement manifest (`strata place`)
  ctx.id = alias.empty() ? stem : alias;
  ctx.names = {stem, path.filename().string(), model_path};
  ctx.tokenizer = &model.tokenizer();
  ctx.render_chat = [tmpl](const server::json& c) { return tmpl.render(c); };
  ctx.chat_template_source = source;
  ctx.n_ctx = n_ctx;
}

uint64_t default_kv_budget(const models::Model& m, int max_batch, int64_t n_ctx) {
  const auto& hp = m.hparams();
  const uint64_t per_pos = static_cast<uint64_t>(hp.n_layer) * static_cast<uint64_t>(hp.k_dim() + hp.v_dim()) * 4;
  const uint64_t want = per_pos * static_cast<uint64_t>(n_ctx) * static_cast<uint64_t>(max_batch);
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const uint64_t cap = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 4 : want;
  return std::max<uint64_t>(per_pos * static_cast<uint64_t>(n_ctx), std::min(want, cap));
}

}  // namespace strata::tools
