// How sizes and speeds read in strata's human output: binary units everywhere (the same ones
// --memory-budget parses), scaled so a value never reads "0 MiB". JSON keeps raw bytes.
#pragma once
#include <cstdint>
#include <string>

namespace strata::tools {

// "512 B", "8.50 KiB", "8.50 MiB", "11.1 GiB".
std::string format_bytes(double bytes);
// "850 MiB/s", "1.23 GiB/s".
std::string format_rate(double bytes_per_s);
// "0.4 s", "12 s", "3 min 20 s".
std::string format_duration(double seconds);

}  // namespace strata::tools
