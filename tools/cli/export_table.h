// `export TABLE`: every record of a table (or those matching --filter) as JSON lines or CSV,
// paged through the query cursor so each page is one request and memory stays bounded. JSON
// lines hold the records exactly as the node answers them (u64 in full, floats in their
// shortest round-trip form, UTF-8 as is); CSV has a header row of leaf names (`id`, `hp`,
// `pos.x`) and quotes what needs it. Both import back to the same records.
//
// Note: pages are read one after another, so an export taken while writes go on is not one
// snapshot of the table (each page is of one version). Thread-safety: the session's thread.
#pragma once

#include <string>

#include "tools/cli/session.h"

namespace tickdb::cli {

struct ExportOptions {
  std::string table;
  std::string filter;
  std::string format = "jsonl";
  std::string output;  // a file; empty: stdout
  int page = 10000;    // records per request
};

int export_table(Session& session, const ExportOptions& options);

}  // namespace tickdb::cli
