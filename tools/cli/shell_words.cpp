#include "tools/cli/shell_words.h"

namespace tickdb::cli {

ShellWords split_shell_words(std::string_view line) {
  ShellWords out;
  std::string word;
  bool in_word = false;  // a word has started (even an empty one, as in '')
  std::size_t i = 0;
  const auto finish = [&] {
    if (in_word) out.words.push_back(std::move(word));
    word.clear();
    in_word = false;
  };
  while (i < line.size()) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      finish();
      ++i;
    } else if (c == '#' && !in_word) {
      break;
    } else if (c == '\'') {
      const auto end = line.find('\'', i + 1);
      if (end == std::string_view::npos) {
        out.error = "unterminated single quote";
        return out;
      }
      word.append(line.substr(i + 1, end - i - 1));
      in_word = true;
      i = end + 1;
    } else if (c == '"') {
      in_word = true;
      ++i;
      for (;;) {
        if (i >= line.size()) {
          out.error = "unterminated double quote";
          return out;
        }
        const char d = line[i];
        if (d == '"') {
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < line.size() &&
            (line[i + 1] == '"' || line[i + 1] == '\\' || line[i + 1] == '$' ||
             line[i + 1] == '`')) {
          word.push_back(line[i + 1]);
          i += 2;
        } else {
          word.push_back(d);
          ++i;
        }
      }
    } else if (c == '\\') {
      if (i + 1 < line.size()) word.push_back(line[i + 1]);
      in_word = true;
      i += 2;
    } else {
      word.push_back(c);
      in_word = true;
      ++i;
    }
  }
  finish();
  return out;
}

}  // namespace tickdb::cli
