// Projection: the `select` of a query or a subscription, resolved against a table's schema:
// a tree whose levels list fields by name, each taken whole or narrowed to some of its leaves
// ("pos.x"), so a record is written as JSON text with only the selected fields, straight from
// its packed bytes. Also the selected byte ranges, to tell whether a change touched them.
//
// Thread-safety: an immutable value once made; emit() may run on many threads at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/schema.h"

namespace tickdb {

class Projection {
 public:
  // invalid_argument ("select: field 'x' does not exist ...") for an unknown path. "id" is
  // always written and may be named. An empty list selects every field.
  static Result<Projection> make(const TableSchema& schema, const std::vector<std::string>& select);

  // {"id":N, ...selected fields...}
  void append_record(std::string& out, const std::byte* record, std::uint64_t id) const;
  // The selected fields' byte ranges (offset, size); every field when all are selected.
  const std::vector<std::pair<std::uint32_t, std::uint32_t>>& ranges() const { return ranges_; }
  bool all() const { return all_; }
  // True when a selected byte differs between two records of the schema.
  bool differs(const std::byte* a, const std::byte* b) const;

 private:
  struct Level;
  std::shared_ptr<const Level> root_;
  const TableSchema* schema_ = nullptr;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges_;
  bool all_ = true;
};

}  // namespace tickdb
