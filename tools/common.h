// Helpers shared by the subcommands: reading prompt files, thread control, timing.
#pragma once
#include <tbb/global_control.h>

#include <cstdint>
#include <memory>
#include <string>

namespace strata::tools {

// Reads a whole file as exact bytes; strata::Error naming the file on failure.
std::string read_file_bytes(const std::string& path);

// A size flag ("512M", "4G", "11.1G", "1.5GiB", a byte count; binary multiples) in bytes;
// strata::Error naming the flag unless it is positive and at most 2^60.
uint64_t parse_size(const std::string& text, const char* flag);

// The CPU's "model name" from /proc/cpuinfo ("unknown" where the kernel names none): bench rows
// (llama-bench's cpu_info) and plan's cached compute measurement key on it.
std::string cpu_model_name();

// Limits oneTBB to n worker threads (n <= 0: all cores) for the life of the returned object.
// More threads than the machine has would only be reported, never run (oneTBB caps them):
// one warning line, and the hardware count is used.
std::unique_ptr<tbb::global_control> limit_threads(int n);

}  // namespace strata::tools
