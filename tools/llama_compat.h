// Command-line habits carried over from llama.cpp. CLI11 reads "-ngl 99" as "-n gl 99" (short
// options are one letter), so llama.cpp's multi-letter single-dash options are rewritten to
// their long spelling before parsing; the ones strata has no equivalent for are refused by
// name instead of being misread.
#pragma once
#include <string>
#include <vector>

namespace strata::tools {

// The arguments after the program name, rewritten ("-ngl" -> "--n-gpu-layers", "-no-cnv"
// dropped: strata never runs a conversation loop). strata::Error for a llama.cpp option
// strata does not have.
std::vector<std::string> rewrite_llama_options(const std::vector<std::string>& args);

}  // namespace strata::tools
