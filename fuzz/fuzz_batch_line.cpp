// Batch JSONL input lines (`strata batch`): the line parser on arbitrary bytes, then, for a
// well-formed line, the same API mapping the server uses for its body, and the custom_id claims
// across the lines of one input. parse_input_line never throws; prepare_request answers with
// ApiError (or strata::Error) like the server. Any other exception or crash is a bug.
#include <cstdint>
#include <string_view>

#include "batch/batch_input.h"
#include "batch/batch_request.h"
#include "fuzz/fuzz_api_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const server::ModelContext& m = fuzz::api_context();
  // The input may hold several lines, as a file does: each is parsed and claimed in order.
  batch::CustomIdClaims claims;
  size_t start = 0;
  int64_t line_no = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    ++line_no;
    start = end + 1;
    if (batch::is_blank_line(line)) continue;
    batch::ParsedLine p = claims.claim(batch::parse_input_line(line, line_no));
    (void)batch::custom_id_of(p);
    if (const auto* in = std::get_if<batch::InputLine>(&p)) {
      (void)batch::line_digest(in->line, in->custom_id);
      try {
        (void)batch::prepare_request(*in, m, int64_t{1700000000});
      } catch (const server::ApiError&) {
      } catch (const Error&) {
      }
    }
  }
  return 0;
}
