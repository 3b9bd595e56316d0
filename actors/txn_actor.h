// The transaction executor: runs every serial call (schema changes, db.transaction, every
// procedure, tick procedures) in a transaction of its own, on a thread of its own (a detached
// actor: a procedure may run long and wait for the worker pool, which must not take a
// scheduler thread from the table actors).
//
// Calls queued while a batch runs are run as the next batch: each in its own transaction,
// chained over the one before, published once (run_batch, BatchMode::chained). A batch that
// conflicts with a table actor's concurrent writes runs again; from the second try on, the
// executor first holds the actors of every table the batch touched (they answer what they
// have queued, then wait), so a long transaction completes however busy those tables are.
// Only the executor holds table actors, and table actors never wait for anyone: no deadlock.
// A table actor whose own batch keeps conflicting hands it over (handoff_atom) and waits,
// held, until the executor has run it (chained like any batch, with holds if need be).
//
// Thread-safety: an actor; its state is its own.
#pragma once

#include "actors/messages.h"
#include "actors/table_actor.h"

namespace tickdb {

txn_actor spawn_txn_actor(caf::actor_system& sys, Database& db, TableDirectory& dir);

}  // namespace tickdb
