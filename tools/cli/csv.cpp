#include "tools/cli/csv.h"

namespace tickdb::cli {

std::string csv_field(std::string_view v) {
  const bool quote = v.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' ||
                                     v.back() == '\t'));
  if (!quote) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out.push_back(',');
    out += csv_field(fields[i]);
  }
  out.push_back('\n');
  return out;
}

bool CsvReader::next(std::vector<std::string>& fields) {
  fields.clear();
  error_.clear();
  std::string line;
  // Skip empty lines between records (a trailing newline at the end of the file, say).
  do {
    if (!std::getline(in_, line)) return false;
    start_line_ = next_line_++;
    if (!line.empty() && line.back() == '\r') line.pop_back();
  } while (line.empty());

  std::string field;
  std::size_t i = 0;
  for (;;) {
    if (i < line.size() && line[i] == '"') {
      ++i;
      for (;;) {
        if (i >= line.size()) {
          // The quoted field goes on on the next physical line.
          std::string more;
          if (!std::getline(in_, more)) {
            error_ = "unterminated quoted field";
            return false;
          }
          ++next_line_;
          if (!more.empty() && more.back() == '\r') more.pop_back();
          field.push_back('\n');
          line = std::move(more);
          i = 0;
          continue;
        }
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (i < line.size() && line[i] != ',') {
        error_ = "text after a closing quote";
        return false;
      }
    } else {
      while (i < line.size() && line[i] != ',') {
        if (line[i] == '"') {
          error_ = "a quote inside an unquoted field";
          return false;
        }
        field.push_back(line[i++]);
      }
    }
    fields.push_back(std::move(field));
    field.clear();
    if (i >= line.size()) return true;
    ++i;  // the ','
    if (i == line.size()) {
      fields.emplace_back();  // "a," ends with an empty field
      return true;
    }
  }
}

}  // namespace tickdb::cli
