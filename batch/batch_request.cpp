#include "batch/batch_request.h"

#include "server/openai_api.h"

namespace strata::batch {

uint64_t seed_for(std::string_view custom_id) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : custom_id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

server::PreparedRequest prepare_request(const InputLine& in, const server::ModelContext& m,
                                        std::optional<int64_t> created) {
  json body = in.body;
  body.erase("model");  // an absent model is accepted; the answer names the served one
  server::PreparedRequest p =
      in.endpoint == Endpoint::Chat ? server::prepare_chat(body, m) : server::prepare_completion(body, m);
  const auto seed = in.body.find("seed");
  if (seed == in.body.end() || seed->is_null()) p.request.sampling.seed = seed_for(in.custom_id);
  p.stream = false;  // a batch answer is one body; stream and stream_options change nothing else
  p.include_usage = false;
  p.id = (in.endpoint == Endpoint::Chat ? "chatcmpl-" : "cmpl-") + line_digest(in.line, in.custom_id);
  if (created) p.created = *created;
  return p;
}

json response_body(const server::PreparedRequest& p, const server::Outcome& o, const server::ModelContext& m) {
  return p.kind == server::ApiKind::Chat ? server::chat_response(p, o, m) : server::completion_response(p, o, m);
}

}  // namespace strata::batch
