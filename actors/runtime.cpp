#include "actors/runtime.h"

#include <caf/io/all.hpp>

#include "actors/cluster_messages.h"

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "actors/builtins.h"
#include "actors/database.h"
#include "actors/modules.h"
#include "actors/scheduler_actor.h"
#include "actors/table_actor.h"
#include "actors/txn_actor.h"
#include "actors/worker_pool.h"
#include "core/commit_log.h"

namespace tickdb {

struct Runtime::Impl {
  RuntimeConfig cfg;
  // Declared first, destroyed last: callables point into the modules' code.
  ModuleSet modules;
  Registry registry;
  caf::actor_system_config caf_cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<Database> db;
  std::unique_ptr<TableDirectory> dir;
  txn_actor executor;
  caf::actor scheduler;
  SchedulerSetup setup;  // the tick loop's, until start_ticks()
  TickStats stats;
  std::atomic<std::uint64_t> ticks{0};
  std::atomic<double> rate{60};
  std::atomic<bool> stopping{false};
  std::atomic<int> inflight{
      0};  // call_async / set_tick_rate bodies running (stop() waits for them)
  std::mutex stop_mu;
  bool stopped = false;
};

Runtime::Runtime() : impl_(std::make_unique<Impl>()) {}

Runtime::~Runtime() {
  stop();
}

Result<std::unique_ptr<Runtime>> Runtime::start(RuntimeConfig cfg,
                                                std::shared_ptr<const DbVersion> initial) {
  auto bad = [](std::string m) { return make_error(Errc::invalid_argument, std::move(m)); };
  if (!valid_tick_rate(cfg.tick_rate_hz))
    return bad("tick.rate_hz must be 15..120, it is " + json(cfg.tick_rate_hz).dump());
  if (cfg.workers == 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  if (cfg.workers > 256)
    return bad("workers.count must be 1..256 (0: one per core), it is " +
               std::to_string(cfg.workers));

  std::unique_ptr<Runtime> rt(new Runtime());
  Impl& m = *rt->impl_;
  m.cfg = cfg;
  m.rate = cfg.tick_rate_hz;
  TICKDB_TRY(register_builtins(m.registry));
  m.registry.set_limits(
      {cfg.procedure_timeout_ms, cfg.procedure_max_write_bytes, cfg.procedure_max_alloc_bytes});
  {
    Callable snap;
    snap.name = "db.snapshot";
    snap.description = "Writes a snapshot of the whole database and answers once it is on disk.";
    snap.params = json::object();
    snap.route = Route::read;
    snap.builtin = true;
    snap.in_transaction = false;
    snap.fn = [](CallContext&, const json&) -> Result<json> {
      return make_error(Errc::conflict,
                        "db.snapshot: this node keeps no snapshots (no storage configured)");
    };
    if (cfg.snapshot) {
      auto hook = cfg.snapshot;
      snap.async_fn = [hook](const json& params, std::function<void(Result<json>)> done) {
        if (!params.is_object() || !params.empty()) {
          done(Result<json>(make_error(Errc::invalid_argument, "db.snapshot takes no params")));
          return;
        }
        hook(std::move(done));
      };
    }
    TICKDB_TRY(m.registry.add(std::move(snap)));
  }
  if (cfg.register_procedures) TICKDB_TRY(cfg.register_procedures(m.registry));
  for (const auto& path : cfg.modules) TICKDB_TRY(m.modules.load(path, m.registry));

  SchedulerSetup& setup = m.setup;
  for (const auto& tp : cfg.tick_procedures) {
    const Callable* c = m.registry.find(tp.name);
    if (!c)
      return bad("tick.procedures: '" + tp.name.substr(0, 128) + "' is not a registered procedure");
    if (tp.every == 0)
      return bad("tick.procedures: 'every' of '" + tp.name + "' must be at least 1");
    if (!tp.params.is_object())
      return bad("tick.procedures: 'params' of '" + tp.name + "' must be an object");
    setup.procedures.push_back({c, tp});
  }

  // Worker actors run on the scheduler's threads, one each, plus one so table actors keep a
  // thread while a parallel procedure runs; the executor and the tick loop have their own.
  m.caf_cfg.set("scheduler.max-threads", cfg.workers + 1);
  // Work sharing: one queue with a condition variable, so a message from a thread outside the
  // actor system (HTTP, the tick loop, callers of call()) wakes a worker at once; CAF's
  // default, work stealing, lets idle workers sleep between polls (measured: 76k vs 168k
  // blocking inserts/s; docs/benchmarks.md).
  m.caf_cfg.set("scheduler.policy", cfg.scheduler_policy == SchedulerPolicy::stealing
                                        ? caf::atom("stealing")
                                        : caf::atom("sharing"));
  if (cfg.cluster) {
    // Only the connecting side checks app identifiers; heartbeats are off unless set, and
    // must be timespans (an integer is refused with a line on stderr only).
    m.caf_cfg.load<caf::io::middleman>();
    add_cluster_message_types(m.caf_cfg);
    m.caf_cfg.set("middleman.app-identifiers", std::vector<std::string>{cfg.cluster->name});
    m.caf_cfg.set("middleman.heartbeat-interval", caf::timespan{cfg.cluster->heartbeat});
    m.caf_cfg.set("middleman.connection-timeout", caf::timespan{cfg.cluster->connection_timeout});
    // Peers' messages are decoded by the middleman's thread itself unless asked otherwise
    // (CAF's default is a worker, scheduled on the actor system's threads: one more hop).
    m.caf_cfg.set("middleman.workers", std::size_t{cfg.cluster->decode_threads});
  }
  m.sys = std::make_unique<caf::actor_system>(m.caf_cfg);
  m.pool = std::make_unique<WorkerPool>(*m.sys, cfg.workers);
  m.db = std::make_unique<Database>(std::move(initial), m.registry, *m.pool);
  m.db->ledger().configure(cfg.idempotency_ttl_s, cfg.idempotency_max_keys);
  m.dir = std::make_unique<TableDirectory>(*m.sys, *m.db);
  m.dir->set_max_tries(cfg.table_conflict_tries);
  m.executor = spawn_txn_actor(*m.sys, *m.db, *m.dir);
  if (cfg.start_ticks) rt->start_ticks();
  return rt;
}

void Runtime::start_ticks() {
  Impl& m = *impl_;
  std::lock_guard lock(m.stop_mu);
  if (m.scheduler || m.stopping.load() || !m.sys) return;
  m.setup.rate_hz = m.rate.load();
  m.setup.executor = m.executor;
  m.setup.stats = &m.stats;
  m.setup.ticks = &m.ticks;
  m.scheduler = spawn_scheduler(*m.sys, std::move(m.setup));
}

void Runtime::set_commit_sink(CommitSink* sink) {
  impl_->db->set_sink(sink);
}

IdempotencyLedger& Runtime::idempotency_ledger() {
  return impl_->db->ledger();
}

std::vector<KeyRecord> Runtime::keys_through(std::uint64_t version) {
  return impl_->db->keys_through(version);
}

Status Runtime::replay(const LogEntry& e) {
  Impl& m = *impl_;
  auto base = m.db->current();
  auto where = [&] { return "log entry of version " + std::to_string(e.version) + ": "; };
  if (e.prev_version != base->version())
    return make_error(Errc::conflict,
                      where() + "it follows version " + std::to_string(e.prev_version) +
                          " but the database is at version " + std::to_string(base->version()) +
                          " (a log segment is missing, or the log belongs to another snapshot)");
  std::shared_ptr<const DbVersion> head = base;
  std::size_t i = 0;
  Database::Keyed keyed;
  for (const auto& call : e.calls) {
    const Callable* c = m.registry.find(call.name);
    if (!c || !c->fn || c->async_fn)
      return make_error(Errc::not_found, where() + "call " + std::to_string(i) + " names '" +
                                             call.name.substr(0, 128) +
                                             "', which is not registered here (a module missing?)");
    auto params = parse_json(call.params, 256);
    if (!params)
      return make_error(Errc::invalid_argument,
                        where() + "call " + std::to_string(i) + ": " + params.message());
    Transaction txn(head);
    // No limits: a call that was committed once must replay, however slow this machine is.
    txn.set_limits(Transaction::Limits{});
    CallContext ctx(txn, m.registry, *m.pool);
    ctx.set_tick(call.tick, call.tick_dt);
    Result<json> r = invoke(*c, ctx, *params);
    if (!r.is_ok())
      return make_error(Errc::conflict,
                        where() + "call " + std::to_string(i) + " ('" + call.name.substr(0, 128) +
                            "') succeeded once but fails now: " + r.error().message +
                            " (procedures must be deterministic, and the modules the same)");
    auto v = txn.commit();
    if (!v) return make_error(v.code(), where() + v.message());
    head = *v;
    if (!call.key.key.empty())
      keyed.emplace_back(call.key.key, IdempotencyLedger::Entry{call.key.fingerprint, std::move(*r),
                                                                e.version, call.key.unix_ms});
    ++i;
  }
  auto next = DbVersion::with_version(head, e.version);
  if (!m.db->cell().publish_if(base.get(), next))
    return make_error(Errc::internal, where() + "the database changed during replay");
  // The keyed calls answer their repeats as they did before the restart.
  for (auto& [key, entry] : keyed) m.db->ledger().record(key, std::move(entry));
  return {};
}

void Runtime::stop() {
  Impl& m = *impl_;
  std::lock_guard lock(m.stop_mu);
  if (m.stopped || !m.sys) return;
  m.stopping = true;
  // Let every call_async that got past its check finish sending (or reading) first.
  while (m.inflight.load() > 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  {
    caf::scoped_actor self{*m.sys};
    if (m.scheduler) {
      TICKDB_MAILBOX_SEND(m.scheduler.id());
      self->send(m.scheduler, stop_atom::value);
      self->wait_for(m.scheduler);
    }
    TICKDB_MAILBOX_SEND(m.executor.id());
    self->send(m.executor, stop_atom::value);
    self->wait_for(m.executor);
    for (const auto& a : m.dir->all()) {
      TICKDB_MAILBOX_SEND(a.id());
      self->send(a, stop_atom::value);
      self->wait_for(a);
    }
  }
  m.scheduler = nullptr;
  m.executor = nullptr;
  m.dir->clear();
  m.pool.reset();
  m.sys.reset();  // waits for the last actors (the workers) to finish
  m.stopped = true;
}

namespace {
// Counts a call_async (or set_tick_rate) in flight, so stop() tears nothing down under it.
struct InFlight {
  std::atomic<int>& n;
  explicit InFlight(std::atomic<int>& c) : n(c) { n.fetch_add(1); }
  ~InFlight() { n.fetch_sub(1); }
};

// A write call under an IdempotencyScope takes its key here. True when the ledger holds the
// result of that key (the call committed before, perhaps before a restart): `done` got it
// (or a conflict when the key came with another request) and the call is not run again.
bool answered_by_ledger(const IdempotencyLedger& ledger, CallKey& key,
                        std::function<void(Result<json>)>& done) {
  key = IdempotencyScope::next_call();
  if (key.key.empty()) return false;
  auto e = ledger.find(key.key);
  if (!e) return false;
  if (e->fingerprint != key.fingerprint) {
    done(Result<json>(make_error(Errc::conflict, "Idempotency-Key '" + key.key.substr(0, 80) +
                                                     "' was used with another request")));
    return true;
  }
  IdempotencyScope::mark_replayed();
  done(Result<json>(std::move(e->result)));
  return true;
}
}  // namespace

void Runtime::call_async(std::string_view method, json params,
                         std::function<void(Result<json>)> done) {
  Impl& m = *impl_;
  InFlight guard(m.inflight);
  const Callable* c = m.registry.find(method);
  if (!c) {
    done(Result<json>(make_error(
        Errc::not_found, "method '" + std::string(method.substr(0, 128)) + "' does not exist")));
    return;
  }
  if (m.stopping.load()) {
    done(Result<json>(make_error(Errc::node_unavailable, "the node is stopping")));
    return;
  }
  if (c->async_fn) {
    c->async_fn(params, std::move(done));
    return;
  }
  CallKey key;
  if (c->route != Route::read && answered_by_ledger(m.db->ledger(), key, done)) return;
  switch (c->route) {
    case Route::read: {
      CallContext ctx(m.db->readable(), m.registry, *m.pool);
      done(invoke(*c, ctx, params));
      return;
    }
    case Route::table: {
      auto t = param_string(params, "table", c->name);
      if (!t) {
        done(Result<json>(t.error()));
        return;
      }
      if (!m.db->current()->table(*t)) {
        done(Result<json>(
            make_error(Errc::not_found, "table '" + t->substr(0, 80) + "' does not exist")));
        return;
      }
      CallRequest req{
          c,       std::move(params), 0, 0.0, std::make_shared<ReplyTo>(std::move(done)),
          nullptr, std::move(key)};
      post(m.dir->get(*t), call_atom::value, std::move(req));
      return;
    }
    case Route::serial: {
      CallRequest req{
          c,       std::move(params), 0, 0.0, std::make_shared<ReplyTo>(std::move(done)),
          nullptr, std::move(key)};
      post(m.executor, call_atom::value, std::move(req));
      return;
    }
  }
}

void Runtime::write_async(RecordWrite w, std::function<void(Result<json>)> done) {
  Impl& m = *impl_;
  InFlight guard(m.inflight);
  static constexpr std::string_view kNames[] = {"db.insert", "db.update", "db.delete"};
  const Callable* c = m.registry.find(kNames[static_cast<int>(w.op)]);
  if (!c) {
    done(Result<json>(make_error(Errc::internal, "the built-in record writes are not registered")));
    return;
  }
  if (m.stopping.load()) {
    done(Result<json>(make_error(Errc::node_unavailable, "the node is stopping")));
    return;
  }
  CallKey key;
  if (answered_by_ledger(m.db->ledger(), key, done)) return;
  if (!m.db->current()->table(w.table)) {
    done(Result<json>(
        make_error(Errc::not_found, "table '" + w.table.substr(0, 80) + "' does not exist")));
    return;
  }
  // The params the call stands for: what the callable runs with and the log records.
  json params = json::object();
  params["table"] = w.table;
  if (w.op != RecordWrite::Op::insert) params["id"] = w.id;
  if (w.op != RecordWrite::Op::erase) params["values"] = std::move(w.values);
  CallRequest req{c,       std::move(params), 0, 0.0, std::make_shared<ReplyTo>(std::move(done)),
                  nullptr, std::move(key)};
  post(m.dir->get(w.table), call_atom::value, std::move(req));
}

void Runtime::run_on_table_async(const std::string& table, std::shared_ptr<const Callable> c,
                                 std::function<void(Result<json>)> done) {
  Impl& m = *impl_;
  InFlight guard(m.inflight);
  if (!c || c->route != Route::table || !c->fn) {
    done(Result<json>(
        make_error(Errc::internal, "run_on_table_async needs a table callable with a function")));
    return;
  }
  if (m.stopping.load()) {
    done(Result<json>(make_error(Errc::node_unavailable, "the node is stopping")));
    return;
  }
  CallKey key;
  if (answered_by_ledger(m.db->ledger(), key, done)) return;
  if (!m.db->current()->table(table)) {
    done(Result<json>(
        make_error(Errc::not_found, "table '" + table.substr(0, 80) + "' does not exist")));
    return;
  }
  CallRequest req{c.get(), json::object(), 0, 0.0, std::make_shared<ReplyTo>(std::move(done)),
                  c,       std::move(key)};
  post(m.dir->get(table), call_atom::value, std::move(req));
}

void Runtime::run_async(std::shared_ptr<const Callable> c, std::function<void(Result<json>)> done) {
  Impl& m = *impl_;
  InFlight guard(m.inflight);
  if (!c || c->route != Route::serial || !c->fn) {
    done(Result<json>(
        make_error(Errc::internal, "run_async needs a serial callable with a function")));
    return;
  }
  if (m.stopping.load()) {
    done(Result<json>(make_error(Errc::node_unavailable, "the node is stopping")));
    return;
  }
  CallKey key;
  if (answered_by_ledger(m.db->ledger(), key, done)) return;
  CallRequest req{c.get(), json::object(), 0, 0.0, std::make_shared<ReplyTo>(std::move(done)),
                  c,       std::move(key)};
  post(m.executor, call_atom::value, std::move(req));
}

Result<json> Runtime::call(std::string_view method, json params) {
  std::promise<Result<json>> p;
  auto f = p.get_future();
  call_async(method, std::move(params), [&p](Result<json> r) { p.set_value(std::move(r)); });
  return f.get();
}

std::shared_ptr<const DbVersion> Runtime::current() const {
  return impl_->db->readable();
}
std::shared_ptr<const DbVersion> Runtime::head() const {
  return impl_->db->current();
}
void Runtime::set_durable_reads(bool on) {
  impl_->db->set_durable_reads(on);
}
bool Runtime::durable_reads() const {
  return impl_->db->durable_reads();
}
std::shared_ptr<const DbVersion> Runtime::roll_back(const std::shared_ptr<const DbVersion>& to) {
  return impl_->db->roll_back(to);
}
void Runtime::made_durable(const std::shared_ptr<const DbVersion>& v) {
  impl_->db->made_durable(v);
}
void Runtime::set_publish_listener(PublishListener* l) {
  impl_->db->set_publish_listener(l);
}

VersionCell<DbVersion>& Runtime::versions() {
  return impl_->db->cell();
}
const Registry& Runtime::registry() const {
  return impl_->registry;
}
ParallelRunner& Runtime::workers() {
  return *impl_->pool;
}
caf::actor_system& Runtime::system() {
  return *impl_->sys;
}

Status Runtime::set_tick_rate(double hz) {
  if (!valid_tick_rate(hz))
    return make_error(Errc::invalid_argument,
                      "tick rate must be 15..120 Hz, it is " + json(hz).dump());
  InFlight guard(impl_->inflight);
  if (impl_->stopping.load()) return make_error(Errc::node_unavailable, "the node is stopping");
  impl_->rate = hz;
  if (impl_->scheduler) post(impl_->scheduler, rate_atom::value, hz);
  return {};
}

double Runtime::tick_rate() const {
  return impl_->rate.load();
}
std::uint64_t Runtime::ticks() const {
  return impl_->ticks.load(std::memory_order_relaxed);
}
TickStats::Snapshot Runtime::tick_stats(std::size_t window) const {
  return impl_->stats.snapshot(window);
}
std::vector<std::int64_t> Runtime::tick_lateness_samples() const {
  return impl_->stats.lateness_samples();
}

Runtime::CommitStats Runtime::commit_stats() const {
  auto c = impl_->db->counters();
  return {c.versions, c.rebases,  c.conflicts,
          c.calls,    c.handoffs, impl_->dir ? impl_->dir->size() : 0};
}

}  // namespace tickdb
