// `import TABLE FILE`: a JSON-lines or CSV file inserted in atomic batches through the bulk
// insert route (POST /table/{name}/records). Each line is checked against the table's schema
// before its batch is sent, so a bad line is reported by its number and its batch is never
// sent: every earlier batch is in, nothing of the bad one is. A batch the node refuses (a
// unique key taken, say) is reported by its line range, with the count that went in.
//
// JSON lines: one object per line, as export writes them (an "id" asks for that id). CSV: a
// header row of field names (composite leaves dotted: pos.x; "id" optional), then one record
// per row, converted by each column's type. Thread-safety: runs on the session's thread.
#pragma once

#include <string>

#include "tools/cli/session.h"

namespace tickdb::cli {

struct ImportOptions {
  std::string table;
  std::string file;    // "-" is stdin
  std::string format;  // "jsonl" or "csv"; empty: by the file's extension
  int batch = 1000;    // records per atomic batch
};

// The exit code (exit_codes.h); prints the summary or the error.
int import_file(Session& session, const ImportOptions& options);

// jsonl or csv by the file name's extension; empty when it says nothing.
std::string format_of(const std::string& file);

}  // namespace tickdb::cli
