// The `strata` command line: one binary, one subcommand per job.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "storage/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"strata: run Mixture-of-Experts models larger than RAM by streaming weights from NVMe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "strata 0.1.0");
  // Logs go to stderr and stay quiet unless asked for, so command output stays clean.
  spdlog::set_level(spdlog::level::warn);
  if (const char* lvl = std::getenv("STRATA_LOG")) spdlog::set_level(spdlog::level::from_str(lvl));

  int exit_code = 0;
  strata::tools::add_info_command(app, exit_code);
  strata::tools::add_tokenize_command(app, exit_code);
  strata::tools::add_template_command(app, exit_code);
  strata::tools::add_run_command(app, exit_code);
  strata::tools::add_perplexity_command(app, exit_code);
  strata::tools::add_synth_command(app, exit_code);
  strata::tools::add_bench_command(app, exit_code);
  strata::tools::add_serve_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const strata::Error& e) {
    std::fprintf(stderr, "strata: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata: internal error: %s\n", e.what());
    return 2;
  }
  return exit_code;
}
