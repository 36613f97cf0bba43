// The batch logger: stderr, so that stdout keeps only the summary (--json parses cleanly).
#pragma once
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace strata::batch {

inline std::shared_ptr<spdlog::logger> batch_log() {
  static std::shared_ptr<spdlog::logger> log = [] {
    if (auto existing = spdlog::get("batch")) return existing;
    return spdlog::stderr_color_mt("batch");
  }();
  return log;
}

}  // namespace strata::batch
