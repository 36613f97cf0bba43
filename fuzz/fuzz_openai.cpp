// OpenAI request bodies (/v1/chat/completions and /v1/completions) through the server's own
// parse_body and prepare_* validation. ApiError and strata::Error are the server's 4xx answers;
// any other exception (a JSON type_error, out_of_range, ...) would be a 500 or worse: a bug.
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_api_common.h"
#include "server/json_fields.h"
#include "server/openai_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const server::ModelContext& m = fuzz::api_context();
  server::json j;
  try {
    j = server::parse_body(body);
  } catch (const server::ApiError&) {
    return 0;
  }
  for (int ep = 0; ep < 2; ++ep) {
    try {
      server::PreparedRequest p = ep == 0 ? server::prepare_chat(j, m) : server::prepare_completion(j, m);
      auto fmt = server::make_openai_format(p, m);
      (void)fmt->stream_begin();
    } catch (const server::ApiError&) {
    } catch (const Error&) {
    }
  }
  return 0;
}
