// Runtime: the actor side of one node, started from its config: the actor system, the
// shared Database, one actor per table (spawned on first write), the transaction executor,
// the worker pool, the tick scheduler, and the registry of callables (built-ins, then every
// module's procedures).
//
// call() / call_async() are the one entry for every callable, by name (what the HTTP layer
// uses): a read runs on the caller's thread over the current version (no lock, no message);
// a write to one table goes to that table's actor; everything else to the executor.
//
// No CAF in this header (pimpl): the HTTP layer includes it.
//
// Thread-safety: every method is safe from any thread. call() blocks until the answer is
// there: never call it from an actor or a Beast I/O thread (use call_async there).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/procedures.h"
#include "actors/scheduler_actor_fwd.h"
#include "actors/tick_stats.h"
#include "core/key_file.h"
#include "core/node_modes.h"
#include "core/version_cell.h"

namespace caf {
class actor_system;
}

namespace tickdb {

class CommitSink;
class IdempotencyLedger;
class PublishListener;
struct LogEntry;

struct RuntimeConfig {
  double tick_rate_hz = 60;                    // tick.rate_hz: 15..120
  std::vector<TickProcedure> tick_procedures;  // tick.procedures
  std::size_t workers = 0;                     // workers.count: 0 = one per core
  std::vector<std::string> modules;            // procedures.modules: shared libraries
  bool start_ticks = true;                     // tests may drive without the tick loop
  SchedulerPolicy scheduler_policy =
      SchedulerPolicy::sharing;  // workers.scheduler_policy (runtime.cpp)
  int table_conflict_tries = 8;  // a table actor's tries before it hands a batch to the executor
  // procedures.timeout_ms / procedures.max_write_bytes (Registry::Limits; 0: none). Tests and
  // embedders run without them unless they set them.
  std::uint64_t procedure_timeout_ms = 0;
  std::uint64_t procedure_max_write_bytes = 0;
  std::uint64_t procedure_max_alloc_bytes = 0;
  // cluster.idempotency_ttl_s / _max_keys: how long and how many keyed calls' results the
  // ledger keeps (actors/idempotency_ledger.h).
  double idempotency_ttl_s = 300;
  std::uint64_t idempotency_max_keys = 100'000;
  // Cluster (actors/cluster.h): CAF's middleman is loaded only when set, with the cluster's
  // name as its app identifier and its heartbeats on.
  struct ClusterTransport {
    std::string name = "tickdb";
    std::chrono::milliseconds heartbeat{250}, connection_timeout{1000};
    unsigned decode_threads = 0;  // CAF's middleman.workers (cluster.decode_threads)
  };
  std::optional<ClusterTransport> cluster;
  // Answers db.snapshot (the persistence's snapshot_async); without it db.snapshot refuses.
  std::function<void(std::function<void(Result<json>)> done)> snapshot;
  // Registers callables compiled into the program (a server embedding tickdb, tests), after
  // the built-ins and before the modules.
  std::function<Status(Registry&)> register_procedures;
};

class Runtime {
 public:
  // Loads the modules, checks the tick procedures, spawns the actors and starts ticking.
  // invalid_argument naming what is wrong (a bad rate, a module file, an unknown procedure).
  static Result<std::unique_ptr<Runtime>> start(
      RuntimeConfig cfg, std::shared_ptr<const DbVersion> initial = DbVersion::empty());
  ~Runtime();  // stop()s
  // Stops the tick loop and every actor (calls still queued are answered first).
  void stop();
  // Starts the tick loop when RuntimeConfig::start_ticks was false (after recovery).
  void start_ticks();

  // Recovery: replays one commit log entry on the calling thread (its calls in order, each in
  // a transaction over the one before) and publishes the result as the entry's version.
  // Only before writers start (no HTTP, no ticks). Errors name the entry and the call: a
  // call that is not registered, or one that fails now although it once succeeded.
  Status replay(const LogEntry& entry);
  // Committed calls go to `sink` from now on (nullptr: none). Set while nothing writes.
  void set_commit_sink(CommitSink* sink);
  // The keyed calls committed so far (Database::ledger): recovery loads a snapshot's key file
  // into it; the persistence writes keys_through(version) beside each snapshot.
  IdempotencyLedger& idempotency_ledger();
  std::vector<KeyRecord> keys_through(std::uint64_t version);

  // A REST write of one record. It names its table, so it goes to that table's actor
  // straight away (no "table" to find in params); it commits and logs as the db.insert /
  // db.update / db.delete call it stands for.
  struct RecordWrite {
    enum class Op { insert, update, erase };
    Op op = Op::insert;
    std::string table;
    std::uint64_t id = 0;  // update, erase
    json values;           // insert, update: the fields
  };
  void write_async(RecordWrite w, std::function<void(Result<json>)> done);

  Result<json> call(std::string_view method, json params);
  void call_async(std::string_view method, json params, std::function<void(Result<json>)> done);
  // Runs a callable made for this one call (not in the registry) on the executor, in a
  // transaction of its own, as a Route::serial callable would run: for requests the HTTP
  // layer has already read into native form (http/fast_txn.h). `c->route` must be serial.
  void run_async(std::shared_ptr<const Callable> c, std::function<void(Result<json>)> done);

  // The same for a callable of Route::table made for one call, on `table`'s actor (batched
  // with the other writes waiting there).
  void run_on_table_async(const std::string& table, std::shared_ptr<const Callable> c,
                          std::function<void(Result<json>)> done);

  // What readers see (Database::readable): with durable reads, the newest version on disk.
  std::shared_ptr<const DbVersion> current() const;
  // The newest version in memory (Database::current): what a write is prepared against.
  std::shared_ptr<const DbVersion> head() const;
  // storage.read_visibility (Database::set_durable_reads, made_durable).
  void set_durable_reads(bool on);
  bool durable_reads() const;
  void made_durable(const std::shared_ptr<const DbVersion>& v);
  // Database::roll_back (the persistence, when the log lost entries).
  std::shared_ptr<const DbVersion> roll_back(const std::shared_ptr<const DbVersion>& to);
  // Database::set_publish_listener: told of every version published from now on.
  void set_publish_listener(PublishListener* l);
  VersionCell<DbVersion>& versions();
  const Registry& registry() const;
  ParallelRunner& workers();  // until stop()

  // Tick loop.
  Status set_tick_rate(double hz);
  double tick_rate() const;
  std::uint64_t ticks() const;
  TickStats::Snapshot tick_stats(std::size_t window = 0) const;  // TickStats::snapshot
  std::vector<std::int64_t> tick_lateness_samples() const;  // ns, the last TickStats::kWindow ticks

  struct CommitStats {
    std::uint64_t versions, rebases, conflicts, calls, handoffs, table_actors;
  };
  CommitStats commit_stats() const;
  caf::actor_system& system();

 private:
  Runtime();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickdb
