// Table actors: one per table, owning that table's write path.
//
// Writes waiting in a table actor's mailbox are applied to one new version and published
// once (group commit): the first write of a batch sends the actor a flush message, which
// lands behind every write already queued, and the flush runs them all in one transaction
// (run_batch, BatchMode::shared). Each sender gets its own answer; one bad write does not fail
// the others (every built-in write is one statement: it checks everything before it changes
// anything). Writes to different tables run on different actors and never wait for each other:
// their versions are merged at publish time (Database::publish).
//
// The executor (txn_actor.h) may hold a table actor: it runs what it has queued, then waits
// with further writes until released, so that a transaction that keeps losing to this
// table's writes gets its turn.
//
// TableDirectory maps table names to their actors, spawning one the first time a table is
// written. Thread-safety: TableDirectory is safe from any thread; the actor's state is its own.
#pragma once

#include <map>
#include <mutex>
#include <vector>

#include "actors/database.h"
#include "actors/messages.h"

namespace tickdb {

table_actor spawn_table_actor(caf::actor_system& sys, Database& db);

class TableDirectory {
 public:
  TableDirectory(caf::actor_system& sys, Database& db) : sys_(&sys), db_(&db) {}
  // The actor of `table` (spawned on first use).
  table_actor get(std::string_view table);
  // The actors of the touched tables that have one (all of them when touched.all).
  std::vector<table_actor> find(const TouchSet& touched) const;
  std::vector<table_actor> all() const;
  std::size_t size() const;

 private:
  caf::actor_system* sys_;
  Database* db_;
  mutable std::mutex mu_;
  std::map<std::string, table_actor, std::less<>> actors_;
};

}  // namespace tickdb
