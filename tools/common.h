// Helpers shared by the subcommands: reading prompt files, thread control, timing.
#pragma once
#include <tbb/global_control.h>

#include <memory>
#include <string>

namespace strata::tools {

// Reads a whole file as exact bytes; strata::Error naming the file on failure.
std::string read_file_bytes(const std::string& path);

// Limits oneTBB to n worker threads (n <= 0: all cores) for the life of the returned object.
std::unique_ptr<tbb::global_control> limit_threads(int n);

}  // namespace strata::tools
