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
// Indexes (table_index.h) are kept in step by every write: insert, update, erase with its
// cascades and set_zero, schema changes (re-laid out tables rebuild theirs) and parallel
// updates (finish_parallel_update compares old and new chunks). writable_table() hands out
// raw access: the indexes of that table are rebuilt from its records at the next operation of
// this transaction and at commit, so write through the pointer before calling anything else.
// Unique keys are checked at commit (a transaction may swap two unique values): commit()
// fails with unique_violation and publishes nothing; check_unique() checks them earlier.
// Every relation has an automatic ordered index on its from_field, which erase() uses to
// find referencing records.
//
// Thread-safety: a Transaction is used by one thread at a time. Many transactions over the
// same base may run at once on different threads; they share nothing mutable.
#pragma once

#include <chrono>
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

  // ---- indexes ----
  // Creates an index and builds it from the table's records. not_found for the table;
  // invalid_argument for a bad name or fields (1..4 scalar fields, composite leaves allowed);
  // already_exists for a name the table has; unique_violation naming the index and two ids
  // when a unique index would hold a key twice. Returns the new index's description.
  Result<IndexDescription> create_index(std::string_view table, IndexDef def);
  // not_found for the table or the index; conflict for a relation's automatic index.
  Status drop_index(std::string_view table, std::string_view name);
  // The descriptions of a table's indexes (not_found for the table).
  Result<std::vector<IndexDescription>> describe_indexes(std::string_view table) const;
  // The unique keys written so far, checked now: unique_violation as commit() would say.
  Status check_unique();
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
  // Direct writable access to a table's chunks for bulk work (loading, benchmarks): the
  // caller must keep every value valid and every relation intact. The table's indexes are
  // rebuilt from its records at the next operation and at commit (see the top).
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
  // ---- a call's limits (procedures.timeout_ms, procedures.max_write_bytes) ----
  // While limits are set, an operation that finds the deadline passed, or that would write
  // more than max_write_bytes of records (inserts, updates, reserve) since set_limits(),
  // fails with resource_exhausted naming `who` and poisons the transaction: nothing of it
  // commits. The clock is read every kClockEvery operations. A const read (get, table) that
  // finds the call over its deadline poisons too and answers as if there were no record.
  struct Limits {
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    std::chrono::milliseconds timeout{0};  // for the message
    std::uint64_t max_write_bytes = UINT64_MAX;
    std::string who;  // "procedure 'game.spawn'"
  };
  static constexpr unsigned kClockEvery = 64;
  void set_limits(Limits l);
  void clear_limits() { limits_.reset(); }
  bool has_limits() const { return limits_.has_value(); }
  // What a call past its deadline fails with (builds it; changes nothing: any thread).
  Error deadline_error() const;
  // The deadline (time_point::max() without limits): workers of a parallel update read it.
  std::chrono::steady_clock::time_point deadline() const {
    return limits_ ? limits_->deadline : std::chrono::steady_clock::time_point::max();
  }
  // The error that poisoned the transaction (nullptr when it is not poisoned).
  const Error* poison_error() const { return poisoned_ ? &*poisoned_ : nullptr; }

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
  // check_open() and the limits: `bytes` more of records are about to be written.
  Status check_write(std::uint64_t bytes);
  // Past the deadline: poisons (mutable state: a const read may find it) and returns the error.
  Status check_deadline() const;
  Status check_references(const TableVersion& t, std::span<const std::byte> record) const;
  // Replaces a table by its records re-laid out under `schema`.
  Status relayout(const TableVersion& t, std::shared_ptr<const TableSchema> schema);
  // Rebuilds the indexes of the tables handed out by writable_table().
  Status settle_indexes();
  // The automatic index of a relation field: made when the first relation from it is
  // created, dropped with the last one.
  Status add_auto_index(const std::string& table, const std::string& field);
  void drop_auto_index_if_unused(const std::string& table, const std::string& field);
  // Ids of the records of r.from_table whose r.from_field is `to_id`.
  std::vector<std::uint64_t> referencing(const Relation& r, std::uint64_t to_id) const;
  // Remembers the unique indexes of `t` that record `id` now has a key in.
  void note_unique(const TableVersion& t, std::uint64_t id);

  std::shared_ptr<const DbVersion> base_;
  std::uint64_t owner_;
  TableMap tables_;
  std::map<std::string, std::shared_ptr<TableVersion>, std::less<>> writers_;
  std::shared_ptr<const TypeRegistry> types_;
  std::shared_ptr<const RelationMap> relations_;
  std::uint64_t next_relation_id_;
  bool changed_ = false;
  bool committed_ = false;
  mutable std::optional<Error> poisoned_;  // a const read past the deadline may set it
  std::optional<Limits> limits_;
  std::uint64_t written_bytes_ = 0;  // since set_limits()
  mutable unsigned ops_ = 0;         // operations since the clock was last read
  mutable TouchSet touched_;
  std::vector<std::string> dirty_;  // tables handed out by writable_table()
  struct PendingUnique {
    std::string table, index;
    std::uint64_t id;
  };
  std::vector<PendingUnique> pending_unique_;
  std::vector<std::string> unique_all_;  // tables whose unique indexes commit checks whole
  std::vector<std::byte> scratch_;       // a record's old bytes during update
};

// A fresh owner id for a writer (transactions and loaders): never 0, never reused.
std::uint64_t new_owner_id();

}  // namespace tickdb
