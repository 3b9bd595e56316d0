// TableIndex: one secondary index of a table: its definition (IndexDef), its key layout
// resolved against the table's schema, and the live structure (an OrderedIndex of full keys
// for `ordered`, a HashIndex of value -> ids for `hash`).
//
// A TableIndex is a small value owned by a TableVersion (TableVersion::indexes()): the
// definition and layout are shared immutably between versions, the structure is persistent,
// so copying a TableIndex is O(1) and a writer's add/remove copy only the nodes on their path
// (see ordered_index.h, hash_index.h). Relation fields get an automatic ordered index
// (auto_ = true) that the transaction creates and drops with the relations.
//
// Thread-safety: const methods are safe from many threads on a published version; add,
// remove and the builders belong to the owner of the TableVersion that holds the index.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/hash_index.h"
#include "core/index_key.h"
#include "core/ordered_index.h"

namespace tickdb {

class TableVersion;

enum class IndexType { ordered, hash };
std::string_view index_type_name(IndexType t);
std::optional<IndexType> index_type_from_name(std::string_view s);

struct IndexDef {
  std::string name;
  std::vector<std::string> fields;  // paths: "hp", "pos.x"; the id is implicitly last
  IndexType type = IndexType::ordered;
  bool unique = false;
  bool auto_ = false;  // made for a relation's from_field; dropped with the relation
  bool operator==(const IndexDef&) const = default;
};

// What GET /table/{name}/indexes shows of one index.
struct IndexDescription {
  std::string name;
  std::string table;
  std::vector<std::string> fields;
  IndexType type = IndexType::ordered;
  bool unique = false;
  std::uint64_t entries = 0;  // records indexed
  std::uint64_t bytes = 0;    // memory of the structure
  bool auto_ = false;
};

class TableIndex {
 public:
  // An empty index over `schema`: invalid_argument for a bad name or fields (see
  // KeyLayout::make). Names follow the rules of table names; auto indexes are exempt.
  static Result<TableIndex> make(const TableSchema& schema, IndexDef def);

  const IndexDef& def() const { return spec_->def; }
  const std::string& name() const { return spec_->def.name; }
  const KeyLayout& layout() const { return spec_->layout; }
  bool is_hash() const { return spec_->def.type == IndexType::hash; }
  bool unique() const { return spec_->def.unique; }
  // The structure: ordered() for ordered indexes (full keys: values then id), hash() for
  // hash ones (values -> ids).
  const OrderedIndex& ordered() const { return ordered_; }
  const HashIndex& hash() const { return hash_; }
  std::size_t entries() const { return is_hash() ? hash_.size() : ordered_.size(); }
  // The record id of a full key of ordered() (its last 8 bytes): decode_id(key + value_size).
  std::uint64_t key_id(const std::byte* key) const {
    return decode_id(key + layout().value_size());
  }
  IndexDescription describe(std::string_view table) const;

  // The ids of records whose indexed values equal `value` (layout().value_size() encoded
  // bytes), ascending, at most `limit` of them.
  std::vector<std::uint64_t> ids_with_value(const std::byte* value, std::size_t limit) const;

  // ---- writer API (the owner of the TableVersion) ----
  // Adds / removes a record's key. May throw std::bad_alloc (TableVersion guards it).
  void add(const std::byte* record, std::uint64_t id, std::uint64_t owner);
  void remove(const std::byte* record, std::uint64_t id, std::uint64_t owner);
  // Rebuilt from every live record of `t` (whose schema the layout must be of): the keys
  // sorted, then built bottom-up. For a unique index (unless check_unique is false),
  // unique_violation naming the index and two ids when two records have the same key; the
  // index is then as it was.
  Status rebuild(const TableVersion& t, std::uint64_t owner, bool check_unique = true);
  // For a unique index: unique_violation when two records of `t` share a key (O(n)).
  Status check_unique_all(const TableVersion& t) const;

 private:
  struct Spec {
    IndexDef def;
    KeyLayout layout;
  };
  std::shared_ptr<const Spec> spec_;
  OrderedIndex ordered_;
  HashIndex hash_;
};

// The unique_violation of index `index` of `table` for records a and b (same key):
// "unique index 'players_name' of table 'players': records 3 and 9 have the same key
// (name = "bob")".
Error unique_violation(const TableVersion& table, const TableIndex& index, std::uint64_t a,
                       std::uint64_t b);

// Checks every index of `t` against one rebuilt from its records (for tests): internal
// naming the index and the first difference, or ok.
Status check_indexes(const TableVersion& t);

}  // namespace tickdb
