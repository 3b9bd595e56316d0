// The exit codes of tickdb-cli, one per kind of failure, so a script can tell a typo from a
// refusal by the node from a node that is not there. docs/cli.md documents them; the e2e test
// (tests/e2e/cli_test.py) holds each to its number.
//
// CliError is how a command reports a failure up to the dispatcher, which prints its message
// on stderr and exits with its code. Thread-safety: plain values.
#pragma once

#include <stdexcept>
#include <string>

namespace tickdb::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitServerError = 1,  // the node answered with an error (its code and message are printed)
  kExitUsage = 2,        // bad command line: unknown command, missing argument, bad JSON given
  kExitUnreachable = 3,  // no connection to the node, or it hung up / timed out
  kExitBadInput = 4,     // import: a bad line in the file, or a file that cannot be read/written
};

class CliError : public std::runtime_error {
 public:
  CliError(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

}  // namespace tickdb::cli
