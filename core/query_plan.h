// The query planner: a small rule-based choice of one secondary index (table_index.h) for a
// query's filter and order, or none (a scan), and the walk that streams the index's candidate
// records (API.md, Indexes; DESIGN.md, Queries and indexes).
//
// Rules: the filter's top-level conjuncts (the whole filter, or the operands of its `&&`) that
// compare a field with a literal (`=`, `in`, `<`, `<=`, `>`, `>=`, `^=`) bind index fields.
//  - a hash index serves `=`/`in` on every one of its fields;
//  - an ordered index serves `=`/`in` on its first k fields, then a range or a prefix on field
//    k+1, and an `order` that is a prefix of its fields after those k (all ascending or all
//    descending) when every one of the k is bound to one value: the walk then goes in the
//    query's order and stops once the page is full;
//  - among usable indexes the most selective wins (a unique index with every field bound,
//    then hash equality, then more bound fields, then a range, then a served order).
// The index only narrows the candidates: every candidate is checked against the whole filter,
// so a plan can never change an answer, only its cost.
//
// Thread-safety: free functions over immutable versions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/filter.h"
#include "core/query_order.h"
#include "core/table.h"

namespace tickdb::query_detail {

struct IndexPlan {
  const TableIndex* index = nullptr;
  // Encoded values of the leading bound fields: one set per field (one value for `=`).
  std::vector<std::vector<std::string>> eq;
  // A range or a prefix on field eq.size() (encoded bytes; empty: unbounded).
  std::string lo, hi;
  bool lo_incl = true, hi_incl = true;
  std::string prefix;
  bool has_prefix = false;
  // The walk yields records in the query's order (ties aside): stop when the page is full.
  bool ordered_walk = false;
  bool desc = false;
  std::uint32_t order_off = 0, order_len = 0;  // where the served order's fields sit in a key
  std::size_t combos() const;
};

// The plan for `filter` (may be null) and `order` (ending with the id key) over t's indexes,
// or nullopt for a scan.
std::optional<IndexPlan> choose_index(const TableVersion& t, const CompiledFilter* filter,
                                      const Order& order);

// The ids the filter's top-level conjuncts allow (id = v, id in (...), id < v, ...): the id
// walks start and stop there. [1, max] when the filter says nothing of ids.
struct IdRange {
  std::uint64_t lo = 1, hi = UINT64_MAX;
  bool empty() const { return lo > hi; }
};
IdRange id_range(const CompiledFilter* filter);

// Calls visit(id, order_bytes) for each candidate in the plan's order (each id once) until it
// returns false; order_bytes points at the served order's encoded fields (ordered walks only).
// `seek`: for an ordered walk with a cursor, the cursor record (its order fields in place) to
// start from instead of the range's start. Returns the index entries examined.
// `prefetch` (may be empty): a hash lookup calls it for a batch of ids before it visits them,
// so the caller can start loading their records (their misses overlap).
std::uint64_t walk_index(
    const IndexPlan& p, const std::byte* seek,
    const std::function<bool(std::uint64_t id, const std::byte* order_bytes)>& visit,
    const std::function<void(std::uint64_t id)>& prefetch = {});

}  // namespace tickdb::query_detail
