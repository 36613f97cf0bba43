// Placeholder: the 'run' command lands with its own change.
#include "tools/commands.h"
namespace strata::tools {
void add_run_command(CLI::App& app, int& exit_code) { (void)app; (void)exit_code; }
}
