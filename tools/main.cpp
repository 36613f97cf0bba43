// The `strata` command line: one binary, one subcommand per job.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "storage/error.h"
#include "tools/commands.h"
#include "tools/llama_compat.h"
#include "tools/validators.h"

namespace {

bool is_command(const CLI::App& app, const std::string& name) {
  for (const CLI::App* c : app.get_subcommands([](const CLI::App*) { return true; }))
    if (c->check_name(name)) return true;
  return false;
}

// "run, bench, perplexity, ..." in the order they were added.
std::string command_names(const CLI::App& app) {
  std::string names;
  for (const CLI::App* c : app.get_subcommands([](const CLI::App*) { return true; }))
    names += (names.empty() ? "" : ", ") + c->get_name();
  return names;
}

}  // namespace

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
  strata::tools::add_cachesim_command(app, exit_code);
  strata::tools::add_batch_command(app, exit_code);
  strata::tools::add_place_command(app, exit_code);
  strata::tools::add_iobench_command(app, exit_code);
  strata::tools::add_plan_command(app, exit_code);
  try {
    std::vector<std::string> args = strata::tools::rewrite_llama_options(std::vector<std::string>(argv + 1, argv + argc));
    if (!args.empty() && !args[0].starts_with("-") && !is_command(app, args[0]))
      strata::fail("unknown command '{}'; the commands are: {} (strata COMMAND --help for each)", args[0],
                   command_names(app));
    std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "strata: %s\nRun with --help for more information.\n",
                 strata::tools::describe_parse_error(e).c_str());
    return e.get_exit_code();
  } catch (const strata::Error& e) {
    std::fprintf(stderr, "strata: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata: internal error: %s\n", e.what());
    return 2;
  }
  return exit_code;
}
