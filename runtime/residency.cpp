#include "runtime/residency.h"

#include <algorithm>
#include <cmath>

namespace strata::runtime {

double ResidencyPolicy::freq(const UnitUsage& u, int64_t now) const {
  if (u.last_clock < 0) return 0;
  const double age = static_cast<double>(std::max<int64_t>(0, now - u.last_clock));
  return u.freq * std::exp2(-age / p_.freq_half_life);
}

void ResidencyPolicy::on_access(UnitUsage& u, int64_t now) const {
  u.freq = freq(u, now) + 1.0;
  u.last_clock = std::max(u.last_clock, now);
}

double ResidencyPolicy::recency(const UnitUsage& u, int64_t now) const {
  if (u.last_clock < 0) return 0;
  const double age = static_cast<double>(std::max<int64_t>(0, now - u.last_clock));
  return std::exp2(-age / p_.recency_half_life);
}

int ResidencyPolicy::distance(int unit_layer, int current) const {
  const int period = n_layers_ + 2;
  return ((unit_layer - current) % period + period) % period;
}

double ResidencyPolicy::reload_cost_s(uint64_t bytes, double bw) const {
  return p_.read_latency_s + static_cast<double>(bytes) / std::max(bw, 1e6);
}

double ResidencyPolicy::keep_score(const UnitUsage& u, uint64_t bytes, int distance, int64_t now, double bw) const {
  const double use = p_.w_freq * freq(u, now) + p_.w_recency * recency(u, now);
  const double per_byte = reload_cost_s(bytes, bw) / static_cast<double>(std::max<uint64_t>(bytes, 1));
  return use * per_byte / (1.0 + distance);
}

}  // namespace strata::runtime
