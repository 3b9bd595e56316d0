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
// table's writes gets its turn. The other way round, a table actor whose batch keeps losing
// (its relation checks read a table that is written all the time) hands the batch to the
// executor after a few tries and holds itself until the executor has run it: every write
// completes, in order.
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

class TableDirectory {
 public:
  TableDirectory(caf::actor_system& sys, Database& db) : sys_(&sys), db_(&db) {}
  // The executor that table actors hand a batch to when it keeps conflicting (set before
  // the first get()).
  void set_executor(txn_actor e) { executor_ = std::move(e); }
  // Conflicts in a row before a table actor hands its batch to the executor (>= 1).
  void set_max_tries(int n) { max_tries_ = std::max(1, n); }
  // The actor of `table` (spawned on first use).
  table_actor get(std::string_view table);
  // The actors of the touched tables that have one (all of them when touched.all).
  std::vector<table_actor> find(const TouchSet& touched) const;
  std::vector<table_actor> all() const;
  std::size_t size() const;
  // Forgets every actor (the node has stopped them).
  void clear();

 private:
  caf::actor_system* sys_;
  Database* db_;
  txn_actor executor_;
  int max_tries_ = 8;
  mutable std::mutex mu_;
  std::map<std::string, table_actor, std::less<>> actors_;
};

}  // namespace tickdb
