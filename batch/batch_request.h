// From a well-formed input line to the engine and back, through the server's own API mapping
// (server/openai_api.h), so a body gets the answer `strata serve` gives it. Three differences a
// batch needs: the body's "model" is not matched (a batch runs one model; the answer names it),
// the seed is the body's or one derived from the custom_id (a rerun samples the same tokens),
// and ids and `created` are fixed by the line, not drawn, so reruns write the same bytes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "batch/batch_input.h"
#include "server/api_types.h"

namespace strata::batch {

// The seed of a request without one: 64-bit FNV-1a of its custom_id.
uint64_t seed_for(std::string_view custom_id);

// Throws server::ApiError, as the server would answer the body (400 naming the field, ...).
// `created`: the unix time reported in the body (absent: now).
server::PreparedRequest prepare_request(const InputLine& in, const server::ModelContext& m,
                                        std::optional<int64_t> created);

// The non-streamed body the server returns; throws server::ApiError (500) for an engine error.
json response_body(const server::PreparedRequest& p, const server::Outcome& o, const server::ModelContext& m);

}  // namespace strata::batch
