// tickdb-cli: the command-line client of a tickdb node. `tickdb-cli COMMAND ...` runs one
// command of API.md (docs/cli.md lists them, with the exit codes and the environment);
// `tickdb-cli` alone opens the interactive prompt running the same commands.
#include <csignal>
#include <iostream>

#include "tools/cli/commands.h"
#include "tools/cli/prompt.h"

int main(int argc, char** argv) {
  // A reader that goes away (`tickdb-cli export t | head`) ends us quietly, not with EPIPE
  // turned into an error mid-line: the default SIGPIPE action does just that.
  std::ios::sync_with_stdio(false);
  tickdb::cli::Session session{tickdb::cli::Settings{}};
  std::vector<std::string> args(argv + 1, argv + argc);
  const auto r = tickdb::cli::run_command_line(session, args, false);
  if (r.no_command && r.exit_code == 0) return tickdb::cli::run_prompt(session);
  return r.exit_code;
}
