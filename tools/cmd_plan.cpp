// `strata plan`: scaffolding only (registered so parallel work does not collide in main.cpp);
// replaced by the real command in this same series of commits.
#include "tools/commands.h"

namespace strata::tools {
void add_plan_command(CLI::App& app, int& exit_code) {
  app.add_subcommand("plan", "(not yet implemented)")->callback([&exit_code] { exit_code = 2; });
}
}  // namespace strata::tools
