// Transaction: a write set over one DbVersion. It collects inserts, updates, deletes and
// schema changes across several tables and commits them into one new DbVersion, which the
// caller publishes with one swap (VersionCell). Nothing is visible to anyone before that.
//
// Every operation is atomic on its own: it checks everything first (names, values, relations,
// cascades) and only then changes the transaction's state, so a failed operation leaves the
// transaction as it was and the caller may go on (or drop the whole transaction: the base
// version is untouched either way). Only running out of memory half-way poisons a
// transaction; commit() then refuses.
//
// Thread-safety: a Transaction is used by one thread at a time. Many transactions over the
// same base may run at once on different threads; they share nothing mutable.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/catalog.h"

namespace tickdb {

class Transaction {
 public:
  explicit Transaction(std::shared_ptr<const DbVersion> base);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const std::shared_ptr<const DbVersion>& base() const { return base_; }

  // ---- schema ----
  Status create_table(const std::string& name, const std::vector<FieldSpec>& fields,
                      std::uint64_t capacity = 0);
  Status drop_table(std::string_view name);
  Status add_field(std::string_view table, const FieldSpec& field);
  Status remove_field(std::string_view table, std::string_view field);
  Result<std::shared_ptr<const CompositeType>> create_type(const std::string& name,
                                                           const std::vector<FieldSpec>& fields);
  Status drop_type(std::string_view name);
  Result<Relation> create_relation(const std::string& from_table, const std::string& from_field,
                                   const std::string& to_table, OnDelete on_delete);
  Status delete_relation(std::uint64_t id);
  Status reserve(std::string_view table, std::uint64_t records);
  Status shrink_to_fit(std::string_view table);

  // ---- records ----
  // Inserts a whole record (record_size bytes, validated). With `id`, asks for that id:
  // already_exists when it is taken or lies below the table's next id (ids are never reused
  // and rise within a table). Returns the id.
  Result<std::uint64_t> insert(std::string_view table, std::span<const std::byte> record,
                               std::optional<std::uint64_t> id = std::nullopt);
  // Replaces a whole record. not_found when there is no such record.
  Status update(std::string_view table, std::uint64_t id, std::span<const std::byte> record);
  // Deletes a record, applying every relation's on_delete rule (transitively for cascade).
  Status erase(std::string_view table, std::uint64_t id);
  // Direct writable access to a table's chunks for bulk work (parallel procedures): the
  // caller must keep every value valid and every relation intact.
  Result<TableVersion*> writable_table(std::string_view table);
  // A parallel update of `table` (see TableVersion::begin_parallel_update): phase 1, and
  // phase 3, whose failure poisons the transaction.
  Result<std::vector<ChunkWork>> begin_parallel_update(std::string_view table);
  Status finish_parallel_update(std::string_view table, std::vector<ChunkWork>& work);

  // ---- reads of this transaction's own state ----
  const TableVersion* table(std::string_view name) const;
  Result<const TableVersion*> find_table(std::string_view name) const;
  const TableMap& tables() const {
    touched_.all = true;
    return tables_;
  }
  const TypeRegistry& types() const { return *types_; }
  const RelationMap& relations() const { return *relations_; }
  std::optional<RecordView> get(std::string_view table, std::uint64_t id) const;
  bool changed() const { return changed_; }
  // Marks the transaction failed when `s` is an error (commit() then refuses); returns s.
  // For bulk work that leaves a half-done change behind when it fails.
  Status poison(Status s);
  bool poisoned() const { return poisoned_.has_value(); }
  // Every table this transaction has looked at or written, by name (see DbVersion::rebase).
  const TouchSet& touched() const { return touched_; }

  // The new version (not yet published; the caller publishes it). The base itself when
  // nothing changed. The transaction cannot be used afterwards.
  Result<std::shared_ptr<const DbVersion>> commit();

 private:
  Result<TableVersion*> writer(std::string_view table);
  void touch(std::string_view table) const { touched_.add(table); }
  Status check_open() const;
  Status check_references(const TableVersion& t, std::span<const std::byte> record) const;
  // Replaces a table by its records re-laid out under `schema`.
  Status relayout(const TableVersion& t, std::shared_ptr<const TableSchema> schema);

  std::shared_ptr<const DbVersion> base_;
  std::uint64_t owner_;
  TableMap tables_;
  std::map<std::string, std::shared_ptr<TableVersion>, std::less<>> writers_;
  std::shared_ptr<const TypeRegistry> types_;
  std::shared_ptr<const RelationMap> relations_;
  std::uint64_t next_relation_id_;
  bool changed_ = false;
  bool committed_ = false;
  std::optional<Error> poisoned_;
  mutable TouchSet touched_;
};

// A fresh owner id for a writer (transactions and loaders): never 0, never reused.
std::uint64_t new_owner_id();

}  // namespace tickdb
