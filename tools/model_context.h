// The loaded model as the API mapping sees it (server::ModelContext: names, tokenizer, chat
// template, context) and the default KV budget, built the same way for `serve` and `batch` so
// that one request body gets the same answer from both.
#pragma once
#include <cstdint>
#include <string>

#include "models/model.h"
#include "server/api_types.h"

namespace strata::tools {

// --chat-template FILE when given, else the GGUF's tokenizer.chat_template, else ChatML; logged
// once on the "server" logger. Fills ctx.id (the alias, else the file name without .gguf),
// names, tokenizer, render_chat, chat_template_source and n_ctx; `created` is left to the caller.
void fill_model_context(server::ModelContext& ctx, const models::Model& model, const std::string& model_path,
                        const std::string& alias, const std::string& chat_template_file, int64_t n_ctx);

// Without --kv-budget: room for every batch slot to use its whole context, but never more than
// a quarter of physical memory, so a full batch of long sequences waits instead of running the
// machine out of memory.
uint64_t default_kv_budget(const models::Model& m, int max_batch, int64_t n_ctx);

}  // namespace strata::tools
