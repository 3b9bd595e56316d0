// Output for people: JSON answers of the node rendered as aligned text. An array of objects
// (tables, records, indexes, ...) becomes a table with a header row and one column per leaf
// (`pos.x`), numeric columns right-aligned; an object becomes aligned `key  value` lines, its
// arrays of objects sub-tables; a field list ({name, type, size}) reads `hp:i32 name:str16`.
// Widths are terminal columns of UTF-8 text (CJK counts 2), so names in any script line up.
//
// Pure functions writing to the stream given: safe from any thread with its own stream.
#pragma once

#include <ostream>
#include <string>
#include <vector>
#include "tools/cli/json.h"

namespace tickdb::cli {

// The rows as an aligned table; `header` is the first row. A column is right-aligned when
// every cell of it below the header is a number.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

// Any JSON answer, for people.
void print_human(std::ostream& out, const json& value);

// An array of objects as a table (the columns are the union of their leaves, in order).
void print_objects(std::ostream& out, const json& array);

// Width of a UTF-8 string in terminal columns (wide East Asian characters count 2).
std::size_t display_width(const std::string& s);

}  // namespace tickdb::cli
