#include "tools/cli/prompt.h"

#include <editline/readline.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <optional>

#include "tools/cli/commands.h"
#include "tools/cli/exit_codes.h"
#include "tools/cli/shell_words.h"

namespace tickdb::cli {

namespace {

std::string history_file() {
  if (const char* h = std::getenv("TICKDB_HISTORY")) return h;
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.tickdb_history";
  return {};
}

// The next line, or nullopt at the end of input.
std::optional<std::string> next_line(bool tty) {
  if (!tty) {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    return line;
  }
  char* raw = readline("tickdb> ");
  if (!raw) return std::nullopt;
  std::string line(raw);
  std::free(raw);
  if (line.find_first_not_of(" \t") != std::string::npos) add_history(line.c_str());
  return line;
}

}  // namespace

int run_prompt(Session& session) {
  const bool tty = isatty(STDIN_FILENO) == 1;
  const std::string history = history_file();
  if (tty) {
    using_history();
    if (!history.empty()) read_history(history.c_str());
    session.out << "tickdb-cli connected to " << session.settings.url
                << " (help lists the commands, exit leaves)\n";
  }
  int last = kExitOk;
  while (auto line = next_line(tty)) {
    ShellWords sw = split_shell_words(*line);
    if (!sw.error.empty()) {
      session.err << "error: " << sw.error << '\n';
      last = kExitUsage;
      continue;
    }
    if (sw.words.empty()) continue;
    if (sw.words[0] == "help") {
      sw.words.erase(sw.words.begin());
      sw.words.push_back("--help");
    }
    const CommandResult r = run_command_line(session, sw.words, true);
    session.out.flush();
    if (r.quit) break;
    if (!r.no_command) last = r.exit_code;
  }
  if (tty && !history.empty()) write_history(history.c_str());
  return last;
}

}  // namespace tickdb::cli
