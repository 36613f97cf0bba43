// Placeholder: the 'tokenize' command lands with its own change.
#include "tools/commands.h"
namespace strata::tools {
void add_tokenize_command(CLI::App& app, int& exit_code) { (void)app; (void)exit_code; }
}
