#include "actors/procedures.h"

#include <set>

#include "actors/alloc_budget.h"

#include <cmath>

namespace tickdb {

Status SerialRunner::run(std::size_t n, const std::function<Status(std::size_t)>& task) {
  for (std::size_t i = 0; i < n; ++i) {
    try {
      TICKDB_TRY(task(i));
    } catch (const std::exception& e) {
      return make_error(Errc::internal, std::string("parallel task threw: ") + e.what());
    }
  }
  return {};
}

std::string_view route_name(Route r) {
  switch (r) {
    case Route::read:
      return "read";
    case Route::table:
      return "table";
    case Route::serial:
      return "serial";
  }
  return "serial";
}

// ---------------- CallContext ----------------

CallContext::CallContext(Transaction& txn, const Registry& reg, ParallelRunner& runner)
    : txn_(&txn), reg_(&reg), runner_(&runner) {}

CallContext::CallContext(std::shared_ptr<const DbVersion> view, const Registry& reg,
                         ParallelRunner& runner)
    : view_(std::move(view)), reg_(&reg), runner_(&runner) {}

Result<Transaction*> CallContext::txn() {
  if (!txn_) return make_error(Errc::internal, "a read-only call cannot write");
  return txn_;
}

Result<const TableVersion*> CallContext::find_table(std::string_view name) const {
  if (txn_) return txn_->find_table(name);
  read_touched_.add(name);
  return view_->find_table(name);
}

const TouchSet& CallContext::touched() const {
  return txn_ ? txn_->touched() : read_touched_;
}

std::optional<RecordView> CallContext::get(std::string_view table, std::uint64_t id) const {
  auto t = find_table(table);
  if (!t) return std::nullopt;
  return (*t)->get(id);
}

const TypeRegistry& CallContext::types() const {
  return txn_ ? txn_->types() : view_->types();
}
const RelationMap& CallContext::relations() const {
  return txn_ ? txn_->relations() : view_->relations();
}

std::size_t CallContext::part_count(std::size_t chunks) const {
  // A few parts per worker: workers take parts as they come free, so one that starts late
  // (or loses its core for a while) does not leave the others waiting at the end.
  return std::min(chunks, kPartsPerWorker * std::max<std::size_t>(1, runner_->workers()));
}

Result<json> CallContext::call(std::string_view name, const json& params) {
  const Callable* c = reg_->find(name);
  if (!c)
    return make_error(Errc::not_found,
                      "method '" + std::string(name.substr(0, 128)) + "' does not exist");
  if (!c->in_transaction)
    return make_error(Errc::invalid_argument,
                      "method '" + c->name + "' cannot run inside another call");
  if (c->route != Route::read && !txn_)
    return make_error(Errc::invalid_argument,
                      "method '" + c->name + "' writes: it cannot run in a read-only call");
  if (depth_ >= 8) return make_error(Errc::invalid_argument, "calls nested deeper than 8");
  ++depth_;
  Result<json> r = invoke(*c, *this, params);
  --depth_;
  if (r.is_ok()) return std::move(r.value());
  // A built-in op is one statement: it failed whole. A procedure may have written half of
  // what it meant to: nothing of the enclosing transaction may commit then.
  if (!c->builtin && txn_) (void)txn_->poison(r.error());
  return r.error();
}

Status CallContext::parallel_update_chunks(
    std::string_view table,
    const std::function<Status(const MutableChunkSpan&, UpdateScope&)>& fn) {
  auto tx = txn();
  if (!tx) return tx.error();
  Transaction& t = **tx;
  auto found = t.find_table(table);
  if (!found) return found.error();

  // The relation fields of this table: values written there must name existing records.
  struct Ref {
    std::uint32_t offset;
    std::string to_table;
    std::uint64_t relation;
    std::string field;
  };
  std::vector<Ref> refs;
  for (const auto& [id, r] : t.relations()) {
    if (r.from_table != table) continue;
    auto loc = (*found)->schema()->locate(r.from_field);
    if (!loc) return make_error(Errc::internal, "relation field vanished");
    refs.push_back({loc->offset, r.to_table, id, r.from_field});
  }

  auto work = t.begin_parallel_update(table);
  if (!work) return work.error();
  std::vector<ChunkWork>& w = *work;
  const std::size_t n = w.size();
  const std::size_t parts = part_count(n);
  struct alignas(64) Part {
    UpdateScope scope;
  };
  std::vector<Part> part(parts);
  const auto deadline = t.deadline();  // procedures.timeout_ms, checked before each chunk
  const bool timed = deadline != std::chrono::steady_clock::time_point::max();
  Status s = runner_->run(parts, [&](std::size_t p) -> Status {
    auto [b, e] = part_range(n, parts, p);
    UpdateScope& scope = part[p].scope;
    std::vector<std::uint64_t> before;
    TICKDB_TRY(ChunkWork::allocate(std::span<ChunkWork>(w.data() + b, e - b)));
    for (std::size_t k = b; k < e; ++k) {
      if (timed && std::chrono::steady_clock::now() > deadline) [[unlikely]]
        return t.deadline_error();
      ChunkWork& cw = w[k];
      TICKDB_TRY(cw.fill());
      const MutableChunkSpan span = cw.span();
      const bool in_place = cw.src == cw.dst;
      if (!refs.empty() && in_place) {
        before.clear();
        for (std::uint32_t i = 0; i < span.count; ++i)
          for (const Ref& r : refs)
            before.push_back(
                load<std::uint64_t>(span.records + std::size_t{i} * span.record_size + r.offset));
      }
      TICKDB_TRY(fn(span, scope));
      if (refs.empty()) continue;
      // Values written into relation fields: a tight compare per field, the slow path only
      // for changed values (dead slots may compare too: their changes are harmless to check).
      const std::byte* old_recs = cw.src->records();
      for (std::size_t ri = 0; ri < refs.size(); ++ri) {
        const std::byte* now = span.records + refs[ri].offset;
        const std::byte* was = old_recs + refs[ri].offset;
        for (std::uint32_t i = 0; i < span.count;
             ++i, now += span.record_size, was += span.record_size) {
          auto v = load<std::uint64_t>(now);
          auto old =
              in_place ? before[std::size_t{i} * refs.size() + ri] : load<std::uint64_t>(was);
          if (v != old && v != 0 && span.alive[i]) [[unlikely]]
            scope.refs().emplace_back(ri, v);
        }
      }
    }
    return {};
  });
  if (!s) return t.poison(s);  // chunks the writer owned may be half-changed: nothing commits
  TICKDB_TRY(t.finish_parallel_update(table, w));
  for (auto& p : part)
    for (auto [ri, v] : p.scope.refs()) {
      const TableVersion* to = t.table(refs[ri].to_table);
      if (!to || !to->contains(v))
        return t.poison(make_error(Errc::foreign_key_violation,
                                   "field '" + refs[ri].field + "' = " + std::to_string(v) +
                                       " names no record of table '" + refs[ri].to_table +
                                       "' (relation " + std::to_string(refs[ri].relation) + ")"));
    }
  for (auto& p : part)
    for (std::uint64_t id : p.scope.doomed()) {
      Status e = t.erase(table, id);
      // Deleted already (named twice, or by a cascade of an earlier delete): nothing to do.
      if (!e && e.code() != Errc::not_found) return t.poison(e);
    }
  return {};
}

// ---------------- Registry ----------------

namespace {
bool valid_part(std::string_view p) {
  if (p.empty() || p.size() > 63) return false;
  auto c0 = static_cast<unsigned char>(p[0]);
  if (!(std::isalpha(c0) || c0 == '_')) return false;
  for (char ch : p) {
    auto c = static_cast<unsigned char>(ch);
    if (!(std::isalnum(c) || c == '_')) return false;
  }
  return true;
}
}  // namespace

bool valid_callable_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  std::size_t start = 0;
  while (true) {
    auto dot = name.find('.', start);
    if (!valid_part(name.substr(
            start, dot == std::string_view::npos ? std::string_view::npos : dot - start)))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

Status Registry::add(Callable c) {
  if (!valid_callable_name(c.name))
    return make_error(Errc::invalid_argument, "callable name '" + c.name.substr(0, 128) +
                                                  "' is not valid: parts of [A-Za-z_][A-Za-z0-9_]* "
                                                  "joined by dots, at most 128 characters");
  if (!c.fn) return make_error(Errc::invalid_argument, "callable '" + c.name + "' has no function");
  if (!c.builtin && c.name.rfind("db.", 0) == 0)
    return make_error(Errc::invalid_argument,
                      "callable name '" + c.name + "': the prefix 'db.' is kept for built-ins");
  if (!c.builtin && c.route != Route::serial)
    return make_error(Errc::invalid_argument,
                      "callable '" + c.name +
                          "': a procedure runs on the executor (Route::serial); only built-ins "
                          "run on a table actor or on the caller's thread");
  if (by_name_.count(c.name))
    return make_error(Errc::already_exists, "callable '" + c.name + "' is already registered");
  order_.push_back(std::move(c));
  by_name_.emplace(order_.back().name, &order_.back());
  return {};
}

const Callable* Registry::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

json Registry::list() const {
  json out = json::array();
  for (const auto& c : order_) {
    json e = {{"name", c.name}, {"description", c.description}};
    if (!c.params.is_null()) e["params"] = c.params;
    out.push_back(std::move(e));
  }
  return out;
}

namespace {
// Sets the registry's limits on the transaction for one procedure call (not for built-ins,
// nor inside a call that has them already); clears them when the call is done.
class CallLimits {
 public:
  // `alloc_budget` receives the memory budget when one is counted for this call.
  CallLimits(const Callable& c, CallContext& ctx, std::uint64_t& alloc_budget) {
    const auto& l = ctx.registry().limits();
    if (c.builtin || !ctx.writable() || (!l.timeout_ms && !l.max_write_bytes && !l.max_alloc_bytes))
      return;
    Transaction* t = *ctx.txn();
    if (t->has_limits()) return;
    if (l.max_alloc_bytes && alloc_budget_begin(l.max_alloc_bytes)) {
      alloc_budget = l.max_alloc_bytes;
      counting_ = true;
    }
    Transaction::Limits tl;
    if (l.timeout_ms) {
      tl.timeout = std::chrono::milliseconds(l.timeout_ms);
      tl.deadline = std::chrono::steady_clock::now() + tl.timeout;
    }
    if (l.max_write_bytes) tl.max_write_bytes = l.max_write_bytes;
    tl.who = "the call";  // invoke() names the procedure
    t->set_limits(std::move(tl));
    txn_ = t;
  }
  ~CallLimits() {
    if (counting_) alloc_budget_end();
    if (txn_) txn_->clear_limits();
  }
  CallLimits(const CallLimits&) = delete;
  CallLimits& operator=(const CallLimits&) = delete;
  Transaction* txn() const { return txn_; }

 private:
  Transaction* txn_ = nullptr;
  bool counting_ = false;
};
}  // namespace

// The call itself, without the cluster's check (invoke).
Result<json> invoke_here(const Callable& c, CallContext& ctx, const json& params);

namespace {
// Inside a cluster, after a procedure a client called: the tables it asked for that are not
// here, but on another node. All on one other node (and none here): misdirected, naming it, so
// that the call is run there; spread over nodes: invalid_argument naming them.
std::optional<Error> misplaced(const Callable& c, const CallContext& ctx) {
  const Registry::TableLocator* locate = ctx.registry().table_locator();
  if (!locate || ctx.depth() != 0 || !placed_as_it_runs(c)) return std::nullopt;
  const TouchSet& touched = ctx.touched();
  if (touched.all) return std::nullopt;  // a schema change: here
  std::set<std::string> nodes;
  bool here = false;
  std::string table;
  for (const auto& t : touched.tables) {
    if (ctx.find_table(t)) {
      here = true;
    } else if (auto n = (*locate)(t)) {
      nodes.insert(*n);
      table = t;
    }
  }
  if (nodes.empty()) return std::nullopt;
  if (!here && nodes.size() == 1)
    return make_error(Errc::misdirected, "procedure '" + c.name + "': table '" + table +
                                             "' lives on node '" + *nodes.begin() + "'");
  std::string names;
  if (here) names = "this node";
  for (const auto& n : nodes) names += (names.empty() ? "'" : ", '") + n + "'";
  return make_error(Errc::invalid_argument,
                    "procedure '" + c.name + "' uses tables of the nodes " + names +
                        ": a procedure runs on one node (no cross-node transactions yet)");
}
}  // namespace

Result<json> invoke(const Callable& c, CallContext& ctx, const json& params) {
  Result<json> r = invoke_here(c, ctx, params);
  if (auto e = misplaced(c, ctx)) {
    if (ctx.writable()) (void)(*ctx.txn())->poison(*e);  // nothing of it may commit
    return Result<json>(std::move(*e));
  }
  return r;
}

Result<json> invoke_here(const Callable& c, CallContext& ctx, const json& params) {
  Error err;
  bool threw = true;
  std::uint64_t alloc_budget = 0;  // procedures.max_alloc_bytes, when counted for this call
  try {
    CallLimits limits(c, ctx, alloc_budget);
    auto r = c.fn(ctx, params);
    // Past a limit the transaction is poisoned: the call fails whatever it answered.
    if (limits.txn())
      if (const Error* e = limits.txn()->poison_error(); e && e->code == Errc::resource_exhausted) {
        err = *e;
        threw = false;
        r = Result<json>(*e);
      }
    if (r) return Result<json>(std::move(*r));
    err = r.error();
    threw = false;
  } catch (const std::bad_alloc&) {
    // The budget ended as the call unwound (CallLimits): these allocations are not counted.
    std::string why = "out of memory";
    if (alloc_budget) {
      why += ": the call took more than procedures.max_alloc_bytes (";
      why += std::to_string(alloc_budget);
      why += " bytes): stopped, nothing of it is committed";
    }
    err = make_error(Errc::resource_exhausted, std::move(why));
  } catch (const std::exception& e) {
    err = make_error(Errc::internal, std::string("threw: ") + e.what());
  } catch (...) {
    err = make_error(Errc::internal, "threw a non-standard exception");
  }
  // An exception may leave a write half done (even in a built-in): nothing of this
  // transaction may commit then.
  if (threw && ctx.writable()) (void)(*ctx.txn())->poison(err);
  if (!c.builtin && err.code != Errc::procedure_failed)
    err = make_error(Errc::procedure_failed, "procedure '" + c.name +
                                                 "' failed: " + std::string(errc_name(err.code)) +
                                                 ": " + err.message);
  return Result<json>(std::move(err));
}

// ---------------- params ----------------

namespace {
Error bad_param(std::string_view method, std::string_view key, std::string_view want) {
  return make_error(Errc::invalid_argument, std::string(method) + ": param '" + std::string(key) +
                                                "' must be " + std::string(want));
}
const json* member(const json& params, std::string_view key) {
  if (!params.is_object()) return nullptr;
  auto it = params.find(key);
  return it == params.end() ? nullptr : &*it;
}
}  // namespace

Status check_params(const json& params, std::initializer_list<std::string_view> allowed,
                    std::string_view method) {
  if (params.is_null()) return {};
  if (!params.is_object())
    return make_error(Errc::invalid_argument, std::string(method) + ": params must be an object");
  for (const auto& [k, v] : params.items()) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == k;
    if (!ok)
      return make_error(Errc::invalid_argument,
                        std::string(method) + ": unknown param '" + k.substr(0, 64) + "'");
  }
  return {};
}

Result<std::string> param_string(const json& params, std::string_view key,
                                 std::string_view method) {
  const json* v = member(params, key);
  if (!v || !v->is_string()) return bad_param(method, key, "a string");
  return v->get<std::string>();
}

Result<std::uint64_t> param_u64(const json& params, std::string_view key, std::string_view method) {
  const json* v = member(params, key);
  if (!v) return bad_param(method, key, "given (an unsigned integer)");
  if (v->is_number_unsigned()) return v->get<std::uint64_t>();
  if (v->is_number_integer() && v->get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(v->get<std::int64_t>());
  return bad_param(method, key, "an unsigned integer");
}

Result<double> param_number(const json& params, std::string_view key, std::string_view method) {
  const json* v = member(params, key);
  if (!v || !v->is_number()) return bad_param(method, key, "a number");
  double d = v->get<double>();
  if (!std::isfinite(d)) return bad_param(method, key, "a finite number");
  return d;
}

Result<std::uint64_t> param_u64_or(const json& params, std::string_view key, std::uint64_t fallback,
                                   std::string_view method) {
  if (!member(params, key)) return fallback;
  return param_u64(params, key, method);
}

Result<double> param_number_or(const json& params, std::string_view key, double fallback,
                               std::string_view method) {
  if (!member(params, key)) return fallback;
  return param_number(params, key, method);
}

}  // namespace tickdb
