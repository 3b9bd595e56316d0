// Callables: every operation a client can call by name, built-in (`db.*` of API.md) or a
// user procedure from a module, registered the same way (name, description, params
// description, function) in one Registry, so that dispatch from HTTP is a single lookup and
// listing the registry is what `db.procedures` returns.
//
// A callable's function gets a CallContext: the transaction it runs in (for writes), the
// database state it reads (its own transaction's, so it sees its own writes), and the worker
// pool for parallel work (see parallel_update / parallel_reduce below). Where it runs is its
// Route:
//  - read:   on the caller's thread over the current published version; no writes.
//  - table:  a write to the one table named by params "table": on that table's actor, batched
//            with the other writes waiting there into one new version (group commit).
//  - serial: on the transaction executor, in a transaction of its own (schema changes,
//            db.transaction and every procedure). What it writes becomes visible all at once
//            when it returns; if it fails or throws, nothing of it does.
// Transactions are optimistic: a write that conflicts with a concurrent one is run again over
// the newer version, so a callable may run more than once before its result is returned. Keep
// procedures free of side effects outside the database.
//
// This header has no CAF in it: procedure modules include it (see module_api.h).
//
// Thread-safety: a Registry is filled before the runtime starts and read-only afterwards (safe
// from many threads). A CallContext belongs to the one call that runs with it.
#pragma once

#include <atomic>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json_codec.h"

namespace tickdb {

// Runs numbered tasks on the worker actors (worker_pool.h), or serially (SerialRunner).
class ParallelRunner {
 public:
  virtual ~ParallelRunner() = default;
  virtual std::size_t workers() const = 0;
  // Runs task(0) .. task(n-1), each once, on up to workers() threads; returns when all have
  // finished: the first error (an exception becomes internal) or ok.
  virtual Status run(std::size_t n, const std::function<Status(std::size_t)>& task) = 0;
};

class SerialRunner final : public ParallelRunner {
 public:
  std::size_t workers() const override { return 1; }
  Status run(std::size_t n, const std::function<Status(std::size_t)>& task) override;
};

class Registry;
class CallContext;

enum class Route { read, table, serial };
std::string_view route_name(Route r);

using CallFn = std::function<Result<json>(CallContext&, const json& params)>;

struct Callable {
  std::string name;
  std::string description;
  json params;  // a description of the params (free-form JSON, shown by db.procedures)
  Route route = Route::serial;
  CallFn fn;
  bool builtin = false;  // db.*: its errors keep their codes; a procedure's become procedure_failed
  bool in_transaction = true;  // may be an op of db.transaction
  // A callable made for one call (Runtime::run_async) that stands for a registered one: the
  // params that call would take, as JSON text; the commit log records `name` with these.
  std::optional<std::string> logged_params;
  // Answered by a node service, asynchronously (db.snapshot): call_async hands it the params
  // and the answer callback instead of running `fn`.
  std::function<void(const json& params, std::function<void(Result<json>)> done)> async_fn;
};

// What a deleting parallel update collects: each worker part deletes through its own scope;
// the deletes are applied through the transaction after the parallel phase (relations apply).
class UpdateScope {
 public:
  void erase(std::uint64_t id) { doomed_.push_back(id); }
  const std::vector<std::uint64_t>& doomed() const { return doomed_; }
  // Values written into relation fields, checked after the parallel phase.
  std::vector<std::pair<std::size_t, std::uint64_t>>& refs() { return refs_; }

 private:
  std::vector<std::uint64_t> doomed_;
  std::vector<std::pair<std::size_t, std::uint64_t>> refs_;  // (relation index, value)
};

class CallContext {
 public:
  // A writing context over a transaction.
  CallContext(Transaction& txn, const Registry& reg, ParallelRunner& runner);
  // A read-only context over a published version.
  CallContext(std::shared_ptr<const DbVersion> view, const Registry& reg, ParallelRunner& runner);

  bool writable() const { return txn_ != nullptr; }
  // The transaction (a read-only context has none: internal error).
  Result<Transaction*> txn();

  // Reads see this call's own writes.
  Result<const TableVersion*> find_table(std::string_view name) const;
  // The tables this call asked for, found or not (a writing context: its transaction's).
  const TouchSet& touched() const;
  // 0 for the call a client made; 1 and more for the calls it makes (call()).
  int depth() const { return depth_; }
  std::optional<RecordView> get(std::string_view table, std::uint64_t id) const;
  const TypeRegistry& types() const;
  const RelationMap& relations() const;
  const Registry& registry() const { return *reg_; }
  ParallelRunner& runner() { return *runner_; }

  // The tick this call runs in (0 and 0.0 outside the tick loop).
  std::uint64_t tick() const { return tick_; }
  double tick_dt() const { return tick_dt_; }
  void set_tick(std::uint64_t tick, double dt) {
    tick_ = tick;
    tick_dt_ = dt;
  }

  // Calls another callable inside this call's transaction (db.transaction's ops). Its route
  // must allow it: a write needs a writable context.
  Result<json> call(std::string_view name, const json& params);

  // ---- parallel work over a table's chunks on the workers ----
  //
  // Work is split into contiguous runs of whole chunks (chunks start on cache lines, so no
  // two workers ever write the same line). The result is the serial run's: the same chunks
  // are visited by the same code, and reductions are combined in chunk order.

  // An update: fn(MutableChunkSpan&, UpdateScope&) -> Status runs once per used chunk, on
  // writable copies that the workers make themselves (each worker writes its own new chunks);
  // the caller's transaction commits once at the end. Skip dead slots (alive[i] == 0). Values
  // must stay valid for their types; values written into a relation's field are checked after
  // the parallel phase, and ids passed to scope.erase() are deleted then (relation rules
  // apply). Any failure fails the call and poisons the transaction: nothing of it commits.
  Status parallel_update_chunks(
      std::string_view table,
      const std::function<Status(const MutableChunkSpan&, UpdateScope&)>& fn);
  // Per live record: fn(std::byte* record, std::uint64_t id, UpdateScope&) (no return value).
  template <class Fn>
  Status parallel_update(std::string_view table, Fn fn) {
    return parallel_update_chunks(
        table, [&fn](const MutableChunkSpan& c, UpdateScope& scope) -> Status {
          // A local copy: records are bytes, which may alias anything the closure holds, so
          // only a copy whose address never escapes keeps its captures in registers.
          Fn f = fn;
          std::byte* rec = c.records;
          if (c.all_alive) {
            for (std::uint32_t i = 0; i < c.count; ++i, rec += c.record_size)
              f(rec, c.ids[i], scope);
          } else {
            for (std::uint32_t i = 0; i < c.count; ++i, rec += c.record_size)
              if (c.alive[i]) f(rec, c.ids[i], scope);
          }
          return {};
        });
  }

  // A reduction: map(const ChunkSpan&, T& partial) runs once per used chunk (partials start as
  // copies of `init`, one per part), then combine(T& into, const T& part) folds the parts in
  // chunk order into a copy of `init`.
  template <class T, class Map, class Combine>
  Result<T> parallel_reduce(std::string_view table, const T& init, Map map, Combine combine) {
    auto t = find_table(table);
    if (!t) return t.error();
    const TableVersion* tv = *t;
    const std::size_t n = tv->used_chunk_count();
    const std::size_t parts = part_count(n);
    struct alignas(64) Part {
      T value;
    };
    std::vector<Part> partial(parts, Part{init});
    TICKDB_TRY(runner_->run(parts, [&](std::size_t p) -> Status {
      auto [b, e] = part_range(n, parts, p);
      for (std::size_t k = b; k < e; ++k) {
        if (k + 1 < e) tv->prefetch_ahead(k);
        map(tv->chunk_span(k), partial[p].value);
      }
      return {};
    }));
    T out = init;
    for (auto& p : partial) combine(out, p.value);
    return out;
  }

  // How the parallel helpers split n chunks: part_count(n) parts of contiguous whole chunks;
  // part p covers chunks part_range(n, parts, p) = [begin, end).
  static constexpr std::size_t kPartsPerWorker = 4;
  std::size_t part_count(std::size_t chunks) const;
  static std::pair<std::size_t, std::size_t> part_range(std::size_t chunks, std::size_t parts,
                                                        std::size_t p) {
    return {chunks * p / parts, chunks * (p + 1) / parts};
  }

 private:
  Transaction* txn_ = nullptr;
  std::shared_ptr<const DbVersion> view_;
  const Registry* reg_;
  ParallelRunner* runner_;
  std::uint64_t tick_ = 0;
  double tick_dt_ = 0.0;
  int depth_ = 0;
  mutable TouchSet read_touched_;  // a read-only context's find_table calls
};

// Whether a client's call of `c` is placed by the tables it uses as it runs (inside a
// cluster: Registry::set_table_locator): a procedure, or a db.transaction (its ops may call
// procedures). Other built-ins name their tables in their params and are routed by them.
inline bool placed_as_it_runs(const Callable& c) {
  return !c.builtin || c.name == "db.transaction";
}

// Callable names: like API.md's names, with dots between parts ("db.insert", "game.step").
bool valid_callable_name(std::string_view name);

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // invalid_argument for a bad name or a callable without a function; already_exists for a
  // taken name. Names starting "db." are kept for built-ins.
  Status add(Callable c);
  const Callable* find(std::string_view name) const;
  std::size_t size() const { return order_.size(); }
  // What db.procedures returns: [{"name", "description", "params"?}] in registration order.
  json list() const;

  // The limits of one call of a procedure (not of a built-in): procedures.timeout_ms,
  // procedures.max_write_bytes and procedures.max_alloc_bytes (0: none). Set before calls run.
  struct Limits {
    std::uint64_t timeout_ms = 0;
    std::uint64_t max_write_bytes = 0;
    std::uint64_t max_alloc_bytes = 0;  // actors/alloc_budget.h: only where the program counts
  };
  void set_limits(Limits l) { limits_ = l; }
  const Limits& limits() const { return limits_; }

  // Inside a cluster: the other node that owns a table this node does not have, if any
  // (Cluster::owner). Set once the cluster is joined (any time, any thread); the function must
  // outlive the registry's calls. A procedure called by a client whose tables all live on one
  // other node fails with Errc::misdirected naming it; one whose tables are spread over nodes
  // fails with invalid_argument naming them. Nothing of either commits.
  using TableLocator = std::function<std::optional<std::string>(std::string_view table)>;
  void set_table_locator(const TableLocator* l) const {
    locator_.store(l, std::memory_order_release);
  }
  const TableLocator* table_locator() const { return locator_.load(std::memory_order_acquire); }

 private:
  Limits limits_;
  mutable std::atomic<const TableLocator*> locator_{nullptr};
  std::deque<Callable> order_;  // stable addresses: a Callable* stays valid
  std::map<std::string, const Callable*, std::less<>> by_name_;
};

// Runs one call of `c` in `ctx` (the context's transaction is the caller's to commit or drop):
// an exception becomes an error, and a procedure's error becomes procedure_failed. A
// procedure in a writing context runs under the registry's limits (Transaction::set_limits):
// past them it fails with procedure_failed (resource_exhausted inside) and its transaction is
// poisoned, so nothing of it commits.
Result<json> invoke(const Callable& c, CallContext& ctx, const json& params);

// ---- reading params (the built-ins and procedures share these) ----

// A params object: checks that it is an object whose keys are all in `allowed`.
Status check_params(const json& params, std::initializer_list<std::string_view> allowed,
                    std::string_view method);
Result<std::string> param_string(const json& params, std::string_view key, std::string_view method);
Result<std::uint64_t> param_u64(const json& params, std::string_view key, std::string_view method);
Result<double> param_number(const json& params, std::string_view key, std::string_view method);
// The key's value if present, else `fallback`.
Result<std::uint64_t> param_u64_or(const json& params, std::string_view key, std::uint64_t fallback,
                                   std::string_view method);
Result<double> param_number_or(const json& params, std::string_view key, double fallback,
                               std::string_view method);

}  // namespace tickdb
