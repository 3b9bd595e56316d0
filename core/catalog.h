// DbVersion: the whole database at one version: composite types, tables and relations.
//
// One DbVersion pointer covers every table, so a transaction over several tables publishes
// in one swap (see version_cell.h). A published DbVersion is immutable; it is built only by
// Transaction::commit. Readers hold a std::shared_ptr<const DbVersion> for as long as they
// like, from any thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/table.h"

namespace tickdb {

enum class OnDelete { restrict, cascade, set_zero };
std::string_view on_delete_name(OnDelete o);
std::optional<OnDelete> on_delete_from_name(std::string_view s);

// A field of one table holds ids of another table's records.
struct Relation {
  std::uint64_t id = 0;
  std::string from_table;
  std::string from_field;
  std::string to_table;
  OnDelete on_delete = OnDelete::restrict;
};

// The tables a transaction read or wrote, by name; `all` when it looked at every table.
struct TouchSet {
  std::vector<std::string> tables;
  bool all = false;
  bool contains(std::string_view name) const {
    for (const auto& t : tables)
      if (t == name) return true;
    return false;
  }
  void add(std::string_view name) {
    if (!all && !contains(name)) tables.emplace_back(name);
  }
  void merge(const TouchSet& o) {
    all = all || o.all;
    for (const auto& t : o.tables) add(t);
  }
};

using TableMap = std::map<std::string, std::shared_ptr<const TableVersion>, std::less<>>;
using RelationMap = std::map<std::uint64_t, Relation>;

class DbVersion {
 public:
  // An empty database at version 0.
  static std::shared_ptr<const DbVersion> empty();
  // The same database numbered `version` (loading a snapshot, replaying a log: the version
  // the writer had).
  static std::shared_ptr<const DbVersion> with_version(const std::shared_ptr<const DbVersion>& v,
                                                       std::uint64_t version);

  std::uint64_t version() const { return version_; }
  const TypeRegistry& types() const { return *types_; }
  const TableMap& tables() const { return tables_; }
  const RelationMap& relations() const { return *relations_; }
  std::uint64_t next_relation_id() const { return next_relation_id_; }

  const TableVersion* table(std::string_view name) const {
    auto it = tables_.find(name);
    return it == tables_.end() ? nullptr : it->second.get();
  }
  std::shared_ptr<const TableVersion> table_shared(std::string_view name) const {
    auto it = tables_.find(name);
    return it == tables_.end() ? nullptr : it->second;
  }
  // not_found with the API's message when the table does not exist.
  Result<const TableVersion*> find_table(std::string_view name) const;

  // Optimistic concurrency: `mine` was committed over `base`, but `current` has been
  // published since. When nothing `mine`'s transaction touched differs between base and
  // current (each touched table the same object, the same types and relations), returns
  // current with the touched tables taken from mine: the same result as running the
  // transaction over current. Else `conflict`: run the transaction again over current.
  static Result<std::shared_ptr<const DbVersion>> rebase(const DbVersion& base, const DbVersion& mine,
                                                         const DbVersion& current,
                                                         const TouchSet& touched);

 private:
  friend class Transaction;
  friend class CatalogLoader;
  std::uint64_t version_ = 0;
  std::shared_ptr<const TypeRegistry> types_;
  TableMap tables_;
  std::shared_ptr<const RelationMap> relations_;
  std::uint64_t next_relation_id_ = 1;
};

}  // namespace tickdb
