// The one command parser of tickdb-cli (CLI11), shared by argv and the interactive prompt:
// every operation of API.md as a subcommand, the global options --url/--token/--json/
// --timeout, and the mapping of every failure to its exit code (exit_codes.h).
//
// Thread-safety: run_command_line uses the session given; one thread per session.
#pragma once

#include <string>
#include <vector>

#include "tools/cli/session.h"

namespace tickdb::cli {

struct CommandResult {
  int exit_code = 0;
  bool no_command = false;  // only global options were given: the caller opens the prompt
  bool quit = false;        // `exit` / `quit` (the prompt ends)
};

// Parses `args` (the words after the program name) and runs the command. In the prompt
// (`in_prompt`), global options on a line apply to that line only; from argv they become the
// session's settings (and those of a prompt opened after).
CommandResult run_command_line(Session& session, const std::vector<std::string>& args,
                               bool in_prompt);

}  // namespace tickdb::cli
