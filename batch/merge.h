// `strata batch merge`: the shard outputs (and error files) of one input, as one file in input
// order, checked: every non-blank input line has exactly one record, and no record belongs to
// no line. Byte for byte what an unsharded run's output merged alone gives.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace strata::batch {

struct MergeOptions {
  std::string input;
  std::vector<std::string> parts;  // shard outputs and error files, any order
  std::string output;
  std::string errors;              // empty: error records go to `output` too
};

struct MergeCounts {
  uint64_t records = 0, ok = 0, failed = 0;
};

// strata::Error naming the missing line or the doubled record (and the files holding it).
// The output is written to a temporary file and renamed into place once complete.
MergeCounts merge_outputs(const MergeOptions& o);

}  // namespace strata::batch
