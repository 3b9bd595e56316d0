// The order of a query, resolved against a table's schema: its keys as (offset, type) pairs,
// a comparator over packed records, and a candidate record. Shared by query.cpp (paging,
// cursors) and query_plan.cpp (index walks); not part of the public API.
//
// Thread-safety: plain values.
#pragma once

#include <string>
#include <vector>

#include "core/record.h"

namespace tickdb::query_detail {

struct Key {
  bool is_id = true;  // the record id, unless resolved to a field
  bool desc = false;
  Kind kind = Kind::U64;
  std::uint32_t offset = 0, size = 8;
  std::string path;
};

inline Result<Key> resolve_key(const TableSchema& s, const std::string& path, const char* what) {
  Key k;
  k.path = path;
  if (path == "id") return k;
  auto loc = s.locate(path);
  if (!loc) return make_error(Errc::invalid_argument, std::string(what) + ": " + loc.message());
  if (loc->type.kind == Kind::Composite)
    return make_error(Errc::invalid_argument, std::string(what) + ": field '" +
                                                  path.substr(0, 128) +
                                                  "' is a composite; order by its leaves");
  k.is_id = false;
  k.kind = loc->type.kind;
  k.offset = loc->offset;
  k.size = loc->type.size;
  return k;
}

inline int cmp3(auto a, auto b) {
  return a < b ? -1 : b < a ? 1 : 0;
}

// Compares one key of two records in the field's own order (-0.0 = 0.0; strings as bytes).
inline int cmp_key(const Key& k, const std::byte* a, std::uint64_t ida, const std::byte* b,
                   std::uint64_t idb) {
  if (k.is_id) return cmp3(ida, idb);
  a += k.offset;
  b += k.offset;
  switch (k.kind) {
    case Kind::Bool:
      return cmp3(load_bool(a), load_bool(b));
    case Kind::I8:
      return cmp3(load<std::int8_t>(a), load<std::int8_t>(b));
    case Kind::I16:
      return cmp3(load<std::int16_t>(a), load<std::int16_t>(b));
    case Kind::I32:
      return cmp3(load<std::int32_t>(a), load<std::int32_t>(b));
    case Kind::I64:
      return cmp3(load<std::int64_t>(a), load<std::int64_t>(b));
    case Kind::U8:
      return cmp3(load<std::uint8_t>(a), load<std::uint8_t>(b));
    case Kind::U16:
      return cmp3(load<std::uint16_t>(a), load<std::uint16_t>(b));
    case Kind::U32:
      return cmp3(load<std::uint32_t>(a), load<std::uint32_t>(b));
    case Kind::U64:
      return cmp3(load<std::uint64_t>(a), load<std::uint64_t>(b));
    case Kind::F32:
      return cmp3(load<float>(a), load<float>(b));
    case Kind::F64:
      return cmp3(load<double>(a), load<double>(b));
    case Kind::Str: {
      int c = load_str(a, k.size).compare(load_str(b, k.size));
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    default:
      return 0;
  }
}

// A record as the order sees it.
struct Cand {
  const std::byte* rec;
  std::uint64_t id;
};

struct Order {
  std::vector<Key> keys;  // ends with an id key (the tie-breaker), added when not given
  int operator()(const Cand& a, const Cand& b) const {
    for (const Key& k : keys) {
      int c = cmp_key(k, a.rec, a.id, b.rec, b.id);
      if (c) return k.desc ? -c : c;
    }
    return 0;
  }
  bool by_id() const { return keys.size() == 1 && keys[0].is_id; }
};

}  // namespace tickdb::query_detail
