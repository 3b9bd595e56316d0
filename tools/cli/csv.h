// CSV as RFC 4180 has it, for import and export: fields separated by ',', records by "\n"
// (a "\r\n" is read too), a field quoted with '"' when it holds ',', '"', '\r', '\n' or
// leading/trailing blanks, a '"' inside a quoted field doubled. A quoted field may span lines,
// so the reader counts physical lines to name the line a record starts on.
//
// Thread-safety: a CsvReader belongs to one thread; csv_field/csv_row are pure.
#pragma once

#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace tickdb::cli {

// One field, quoted if it has to be.
std::string csv_field(std::string_view value);
// A whole record with its "\n".
std::string csv_row(const std::vector<std::string>& fields);

class CsvReader {
 public:
  explicit CsvReader(std::istream& in) : in_(in) {}

  // The next record into `fields`; false at the end of the input or on a malformed record
  // (then error() says why). line() is the line the record started on (1-based).
  bool next(std::vector<std::string>& fields);
  const std::string& error() const { return error_; }
  std::size_t line() const { return start_line_; }

 private:
  std::istream& in_;
  std::size_t next_line_ = 1;
  std::size_t start_line_ = 0;
  std::string error_;
};

}  // namespace tickdb::cli
