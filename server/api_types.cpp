#include "server/api_types.h"

#include <algorithm>
#include <random>

namespace strata::server {

bool ModelContext::accepts(std::string_view name) const {
  if (name.empty() || name == id) return true;
  return std::find(names.begin(), names.end(), name) != names.end();
}

const char* finish_reason_name(const engine::FinishEvent& f) {
  return f.reason == engine::FinishReason::Stop ? "stop" : "length";
}

std::string random_id(std::string_view prefix) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id(prefix);
  std::uniform_int_distribution<size_t> pick(0, sizeof kAlphabet - 2);
  for (int i = 0; i < 24; ++i) id += kAlphabet[pick(rng)];
  return id;
}

}  // namespace strata::server
