#include "tools/units.h"

#include <fmt/format.h>

#include <cmath>

namespace strata::tools {

std::string format_bytes(double b) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && std::fabs(b) >= 1024) {
    b /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{:.0f} B", b);
  // Three significant figures: 8.50 MiB, 85.0 MiB, 850 MiB.
  const int decimals = std::fabs(b) >= 100 ? 0 : std::fabs(b) >= 10 ? 1 : 2;
  return fmt::format("{:.{}f} {}", b, decimals, kUnits[u]);
}

std::string format_rate(double bytes_per_s) { return format_bytes(bytes_per_s) + "/s"; }

std::string format_duration(double s) {
  if (s < 10) return fmt::format("{:.1f} s", s);
  if (s < 60) return fmt::format("{:.0f} s", s);
  const long long t = std::llround(s);
  if (t < 3600) return fmt::format("{} min {} s", t / 60, t % 60);
  return fmt::format("{} h {} min", t / 3600, (t % 3600) / 60);
}

}  // namespace strata::tools
