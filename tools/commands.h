// Each `strata` subcommand lives in its own cmd_<name>.cpp and registers itself on the CLI11 app.
// A command's callback sets the process exit code through the returned int reference.
#pragma once
#include <CLI/CLI.hpp>

namespace strata::tools {

// Each returns nothing; the subcommand's callback runs the command and stores its exit status
// in `exit_code`. Errors (strata::Error) are caught in main and printed as "strata: <message>".
void add_info_command(CLI::App& app, int& exit_code);
void add_tokenize_command(CLI::App& app, int& exit_code);
void add_template_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code);
void add_perplexity_command(CLI::App& app, int& exit_code);
void add_synth_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
void add_serve_command(CLI::App& app, int& exit_code);
void add_cachesim_command(CLI::App& app, int& exit_code);
void add_batch_command(CLI::App& app, int& exit_code);
void add_place_command(CLI::App& app, int& exit_code);
void add_iobench_command(CLI::App& app, int& exit_code);
void add_plan_command(CLI::App& app, int& exit_code);

}  // namespace strata::tools
