// The interactive prompt: `tickdb-cli` with no command. Each line is split like a shell
// would (shell_words.h) and run by the same parser as argv (commands.h). On a terminal it
// has line editing and a history (libedit, kept in ~/.tickdb_history or $TICKDB_HISTORY);
// with stdin not a terminal it reads plain lines and prints no prompt, so a script can drive
// it. `help` lists the commands, `exit`/`quit`/end of input leave.
//
// Thread-safety: the main thread (libedit holds global state).
#pragma once

#include "tools/cli/session.h"

namespace tickdb::cli {

// The exit code of the last command run (0 when none ran), as a shell does.
int run_prompt(Session& session);

}  // namespace tickdb::cli
