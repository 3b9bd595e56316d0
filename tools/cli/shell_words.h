// Splitting a line of the interactive prompt into words the way a POSIX shell would, so the
// prompt and argv run through one parser: whitespace separates words; '...' is literal;
// "..." allows \" \\ \$ \` escapes; a backslash outside quotes escapes the next character;
// '#' at the start of a word begins a comment. No expansion of any kind.
//
// Pure function, no state: safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tickdb::cli {

struct ShellWords {
  std::vector<std::string> words;
  std::string error;  // non-empty when the line is malformed (an unterminated quote)
};

ShellWords split_shell_words(std::string_view line);

}  // namespace tickdb::cli
