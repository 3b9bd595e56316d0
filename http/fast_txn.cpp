#include "http/fast_txn.h"

#include <cstring>

#include "core/json_text.h"

namespace tickdb {

namespace {

// Reads one op's params ({"table", "values"}) into a record appended to txn.bytes.
bool read_insert_params(JsonCursor& in, const DbVersion& db, PreparedTxn& txn) {
  std::optional<std::uint32_t> table;
  std::string_view values_span;  // "values" seen before "table"
  bool have_values = false;
  std::optional<std::uint64_t> id;
  std::size_t offset = 0;

  auto find_table = [&](std::string_view name) -> bool {
    for (std::uint32_t i = 0; i < txn.tables.size(); ++i)
      if (txn.tables[i].name == name) {
        table = i;
        return true;
      }
    const TableVersion* t = db.table(name);
    if (!t) return false;  // the general path answers not_found
    txn.tables.push_back({std::string(name), t->schema()});
    table = static_cast<std::uint32_t>(txn.tables.size() - 1);
    return true;
  };
  auto read_values = [&](JsonCursor& vin) -> bool {
    const TableSchema& schema = *txn.tables[*table].schema;
    offset = txn.bytes.size();
    auto defaults = schema.default_record();
    txn.bytes.resize(offset + defaults.size());
    if (!defaults.empty()) std::memcpy(txn.bytes.data() + offset, defaults.data(), defaults.size());
    return record_from_text(schema, vin, txn.bytes.data() + offset, &id);
  };

  bool ok = in.object([&](std::string_view key) {
    if (key == "table") {
      std::string_view name;
      if (table || !in.string(name) || !find_table(name)) return false;
      if (!values_span.empty()) {
        JsonCursor vin(values_span);
        return read_values(vin) && vin.at_end();
      }
      return true;
    }
    if (key == "values") {
      if (have_values) return false;
      have_values = true;
      if (table) return read_values(in);
      return in.peek() == '{' && in.skip(&values_span);
    }
    return false;
  });
  if (!ok || !table || !have_values) return false;
  txn.inserts.push_back({*table, id, offset});
  return true;
}

// Reads one op: {"method": "db.insert", "params": {...}}.
bool read_op(JsonCursor& in, const DbVersion& db, PreparedTxn& txn) {
  bool method = false;
  std::string_view params_span;
  bool params = false;
  bool ok = in.object([&](std::string_view key) {
    if (key == "method") {
      std::string_view m;
      if (method || !in.string(m) || m != "db.insert") return false;
      method = true;
      if (!params_span.empty()) {
        JsonCursor pin(params_span);
        return read_insert_params(pin, db, txn) && pin.at_end();
      }
      return true;
    }
    if (key == "params") {
      if (params) return false;
      params = true;
      if (method) return read_insert_params(in, db, txn);
      return in.peek() == '{' && in.skip(&params_span);
    }
    return false;
  });
  return ok && method && params;
}

// Reads the call's params: {"ops": [op, ...]}.
bool read_params(JsonCursor& in, const DbVersion& db, PreparedTxn& txn) {
  bool ops = false;
  bool ok = in.object([&](std::string_view key) {
    if (key != "ops" || ops) return false;
    ops = true;
    return in.array([&] { return read_op(in, db, txn); });
  });
  return ok && ops && !txn.inserts.empty();
}

}  // namespace

int read_envelope_member(JsonCursor& in, std::string_view key, std::string_view method,
                         RpcEnvelope& e) {
  if (key == "jsonrpc") {
    std::string_view v;
    if (e.version || !in.string(v) || v != "2.0") return -1;
    e.version = true;
    return 1;
  }
  if (key == "id") {
    if (e.has_id || !in.scalar(e.id)) return -1;
    e.has_id = true;
    return e.id.is_string() || e.id.is_number() ? 1 : -1;  // null and others: the general path
  }
  if (key == "method") {
    std::string_view m;
    if (e.method || !in.string(m) || m != method) return -1;
    e.method = true;
    return 1;
  }
  return 0;
}

std::optional<PreparedTxn> prepare_insert_transaction(std::string_view body, const DbVersion& db) {
  JsonCursor in(body);
  if (in.peek() != '{') return std::nullopt;  // a batch or not a call
  PreparedTxn txn;
  RpcEnvelope env;
  bool params = false;
  std::string_view params_span;
  bool ok = in.object([&](std::string_view key) {
    if (int r = read_envelope_member(in, key, "db.transaction", env); r != 0) {
      if (r < 0) return false;
      if (key != "method" || params_span.empty()) return true;
      // The params came before the method: read them now.
      JsonCursor pin(params_span);
      txn.params_text = std::string(params_span);
      return read_params(pin, db, txn) && pin.at_end();
    }
    if (key == "params") {
      if (params) return false;
      params = true;
      if (env.method) {
        const char* start = in.position();
        if (!read_params(in, db, txn)) return false;
        txn.params_text.assign(start, static_cast<std::size_t>(in.position() - start));
        return true;
      }
      return in.peek() == '{' && in.skip(&params_span);
    }
    return false;
  });
  if (!ok || !in.at_end() || !env.complete() || !params) return std::nullopt;
  txn.id = std::move(env.id);
  return txn;
}

namespace {

// A callable that inserts the prepared records in its transaction and writes the answer into
// `outcome`: `prefix`, the records' JSON separated by commas, `suffix`. It may run more than
// once (optimistic retries); each run starts the answer afresh.
std::shared_ptr<const Callable> inserting_callable(std::string name, Route route,
                                                   std::shared_ptr<const PreparedTxn> txn,
                                                   std::shared_ptr<FastTxnOutcome> outcome,
                                                   std::string prefix, std::string suffix) {
  auto c = std::make_shared<Callable>();
  c->name = std::move(name);
  c->description = "records read straight from the request text";
  c->route = route;
  c->builtin = true;
  c->in_transaction = false;
  c->logged_params = txn->params_text;
  c->fn = [txn = std::move(txn), outcome = std::move(outcome), prefix = std::move(prefix),
           suffix = std::move(suffix)](CallContext& ctx, const json&) -> Result<json> {
    std::string& out = outcome->out;
    outcome->fallback = false;
    out.clear();
    auto give_up = [&] {
      outcome->fallback = true;
      out.clear();
      return make_error(Errc::conflict, "the fast path gave up; the general path answers");
    };
    auto tx = ctx.txn();
    if (!tx) return tx.error();
    // The tables must still have the schemas the records were read with.
    for (const auto& t : txn->tables) {
      auto cur = ctx.find_table(t.name);
      if (!cur || (*cur)->schema() != t.schema) return give_up();
    }
    out.reserve(txn->bytes.size() * 2 + prefix.size() + 64);
    out += prefix;
    bool first = true;
    for (const auto& op : txn->inserts) {
      const auto& t = txn->tables[op.table];
      std::span<const std::byte> rec(txn->bytes.data() + op.offset, t.schema->record_size());
      auto id = (*tx)->insert(t.name, rec, op.id);
      if (!id) return give_up();
      auto r = ctx.get(t.name, *id);
      if (!r) return give_up();
      if (!first) out += ',';
      first = false;
      append_record_json(out, *r);
    }
    out += suffix;
    return json(nullptr);
  };
  return c;
}

}  // namespace

std::shared_ptr<const Callable> fast_txn_callable(std::shared_ptr<const PreparedTxn> txn,
                                                  std::shared_ptr<FastTxnOutcome> outcome) {
  std::string prefix = "{\"id\":" + txn->id.dump() + ",\"jsonrpc\":\"2.0\",\"result\":[";
  return inserting_callable("db.transaction", Route::serial, std::move(txn), std::move(outcome),
                            std::move(prefix), "]}");
}

std::optional<PreparedTxn> prepare_record_insert(std::string_view table, std::string_view body,
                                                 const DbVersion& db) {
  const TableVersion* t = db.table(table);
  if (!t) return std::nullopt;  // the general path answers not_found
  PreparedTxn txn;
  txn.tables.push_back({std::string(table), t->schema()});
  const TableSchema& schema = *t->schema();
  auto defaults = schema.default_record();
  txn.bytes.resize(defaults.size());
  if (!defaults.empty()) std::memcpy(txn.bytes.data(), defaults.data(), defaults.size());
  std::optional<std::uint64_t> id;
  JsonCursor in(body);
  if (in.peek() != '{' || !record_from_text(schema, in, txn.bytes.data(), &id) || !in.at_end())
    return std::nullopt;
  txn.inserts.push_back({0, id, 0});
  txn.params_text.reserve(body.size() + table.size() + 24);
  txn.params_text += "{\"table\":";
  txn.params_text += json(std::string(table)).dump();
  txn.params_text += ",\"values\":";
  txn.params_text += body;
  txn.params_text += '}';
  return txn;
}

std::shared_ptr<const Callable> fast_insert_callable(std::shared_ptr<const PreparedTxn> txn,
                                                     std::shared_ptr<FastTxnOutcome> outcome) {
  return inserting_callable("db.insert", Route::table, std::move(txn), std::move(outcome), "", "");
}

}  // namespace tickdb
