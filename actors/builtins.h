// The built-in callables: every `db.*` method of API.md's JSON-RPC table (but db.snapshot,
// which arrives with persistence), registered like any procedure (see procedures.h).
//
// Thread-safety: register_builtins fills a Registry before the runtime starts.
#pragma once

#include "actors/procedures.h"

namespace tickdb {

Status register_builtins(Registry& reg);

}  // namespace tickdb
