// Placeholder: the 'synth' command lands with its own change.
#include "tools/commands.h"
namespace strata::tools {
void add_synth_command(CLI::App& app, int& exit_code) { (void)app; (void)exit_code; }
}
