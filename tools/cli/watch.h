// `watch TABLE`: a live view of a table through a WebSocket subscription. On a terminal it
// redraws an aligned table of the subscription's rows after every change (at most 10 times a
// second); otherwise (or with --json) it prints JSON lines: one `snapshot` line with every
// row once the snapshot is complete, then one `delta` line per change the node sends
// (`{"type":"delta","from","to","tick","ins","upd","del","out"}`), and `reset`/`ended` lines.
//
// Thread-safety: runs on the session's thread until the subscription ends (or --events).
#pragma once

#include <string>

#include "tools/cli/session.h"

namespace tickdb::cli {

struct WatchOptions {
  std::string table;
  std::string filter;
  std::string select;  // comma-separated fields
  int rate_hz = 0;     // 0: the node's tick rate
  int max_events = 0;  // stop after this many deltas with changes; 0: never
};

int watch_table(Session& session, const WatchOptions& options);

}  // namespace tickdb::cli
