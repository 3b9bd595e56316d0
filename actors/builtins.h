// The built-in callables: every `db.*` method of API.md's JSON-RPC table (but db.snapshot,
// which arrives with persistence), registered like any procedure (see procedures.h).
//
// Thread-safety: register_builtins fills a Registry before the runtime starts.
#pragma once

#include "actors/procedures.h"

namespace tickdb {

Status register_builtins(Registry& reg);

// db.list's page: records with id > after (or after skipping `offset` live records), at most
// `limit` (1..10000), as {"records","count","total","next_after"}.
Result<json> list_records(const TableVersion& t, std::uint64_t limit, std::optional<std::uint64_t> after,
                          std::optional<std::uint64_t> offset);

}  // namespace tickdb
