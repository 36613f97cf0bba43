// The two halves of the filter table (filters.cpp, filters_seq.cpp).
#pragma once
#include <string_view>
#include <utility>
#include <vector>

#include "models/chat/builtins.h"

namespace strata::chat {

using FilterEntry = std::pair<std::string_view, FilterFn>;
std::vector<FilterEntry> value_filters();
std::vector<FilterEntry> sequence_filters();

}  // namespace strata::chat
