// The client's copy of one live subscription (API.md, Live subscriptions): the rows of the
// snapshot, then every delta applied, `ins`/`upd` as upserts and `del`/`out` as removals (so a
// repeated delta is harmless). What `watch` draws.
//
// Thread-safety: one thread.
#pragma once

#include <cstdint>
#include <map>

#include "tools/cli/json.h"

namespace tickdb::cli {

class LiveModel {
 public:
  void clear() { rows_.clear(); }
  // Rows of a snapshot frame (each has its "id").
  void add_rows(const json& rows);
  // One subscription's changes of a delta; the number of rows it touched.
  std::size_t apply(const json& changes);
  const std::map<std::uint64_t, json>& rows() const { return rows_; }
  // The rows by id, as a JSON array.
  json to_json() const;

 private:
  std::map<std::uint64_t, json> rows_;
};

}  // namespace tickdb::cli
