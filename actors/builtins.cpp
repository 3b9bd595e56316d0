#include "actors/builtins.h"

#include "core/query.h"

namespace tickdb {

namespace {

Result<json> record_json(CallContext& ctx, std::string_view table, std::uint64_t id) {
  auto r = ctx.get(table, id);
  if (!r) return make_error(Errc::internal, "record " + std::to_string(id) + " vanished");
  return record_to_json(*r);
}

Result<json> table_json(CallContext& ctx, std::string_view table) {
  auto t = ctx.find_table(table);
  if (!t) return t.error();
  return table_to_json(**t);
}

Status add(Registry& reg, std::string name, std::string description, json params, Route route,
           CallFn fn, bool in_transaction = true) {
  Callable c;
  c.name = std::move(name);
  c.description = std::move(description);
  c.params = std::move(params);
  c.route = route;
  c.fn = std::move(fn);
  c.builtin = true;
  c.in_transaction = in_transaction;
  return reg.add(std::move(c));
}

// ---- schema ----

Result<json> create_table(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.create_table";
  TICKDB_TRY(check_params(p, {"name", "fields", "record_size", "count", "indexes"}, m));
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  // "indexes": created with the table, in the same write (a bad one creates nothing).
  std::vector<IndexDef> indexes;
  if (auto it = p.find("indexes"); it != p.end()) {
    if (!it->is_array())
      return make_error(Errc::invalid_argument, "db.create_table: 'indexes' must be an array");
    for (const auto& ij : *it) {
      auto def = index_def_from_json(ij);
      if (!def) return def.error();
      indexes.push_back(std::move(*def));
    }
  }
  json table_only = p;
  table_only.erase("indexes");
  auto spec = table_spec_from_json(table_only, ctx.types());
  if (!spec) return spec.error();
  TICKDB_TRY((*tx)->create_table(spec->name, spec->fields));
  for (auto& def : indexes) {
    auto d = (*tx)->create_index(spec->name, std::move(def));
    if (!d) return d.error();
  }
  return table_json(ctx, spec->name);
}

Result<json> create_index(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.create_index";
  TICKDB_TRY(check_params(p, {"table", "name", "fields", "type", "unique"}, m));
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  auto def = index_def_from_json(p);
  if (!def) return def.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  auto d = (*tx)->create_index(*table, std::move(*def));
  if (!d) return d.error();
  return index_description_to_json(*d);
}

Result<json> drop_index(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.drop_index";
  TICKDB_TRY(check_params(p, {"table", "name"}, m));
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  auto name = param_string(p, "name", m);
  if (!name) return name.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  TICKDB_TRY((*tx)->drop_index(*table, *name));
  return json(true);
}

Result<json> drop_table(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.drop_table";
  TICKDB_TRY(check_params(p, {"table"}, m));
  auto name = param_string(p, "table", m);
  if (!name) return name.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  TICKDB_TRY((*tx)->drop_table(*name));
  return json(true);
}

Result<json> add_field(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.add_field";
  TICKDB_TRY(check_params(p, {"table", "field"}, m));
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  if (!p.contains("field"))
    return make_error(Errc::invalid_argument, "db.add_field: param 'field' must be a field spec");
  auto spec = field_spec_from_json(p["field"], ctx.types());
  if (!spec) return spec.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  TICKDB_TRY((*tx)->add_field(*table, *spec));
  return table_json(ctx, *table);
}

Result<json> remove_field(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.remove_field";
  TICKDB_TRY(check_params(p, {"table", "field"}, m));
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  auto field = param_string(p, "field", m);
  if (!field) return field.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  TICKDB_TRY((*tx)->remove_field(*table, *field));
  return table_json(ctx, *table);
}

Result<json> create_type(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.create_type";
  TICKDB_TRY(check_params(p, {"name", "fields", "size"}, m));
  auto spec = table_spec_from_json(p, ctx.types());
  if (!spec) return spec.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  auto c = (*tx)->create_type(spec->name, spec->fields);
  if (!c) return c.error();
  return type_to_json(**c);
}

Result<json> drop_type(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.drop_type";
  TICKDB_TRY(check_params(p, {"name"}, m));
  auto name = param_string(p, "name", m);
  if (!name) return name.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  TICKDB_TRY((*tx)->drop_type(*name));
  return json(true);
}

Result<json> create_relation(CallContext& ctx, const json& p) {
  auto spec = relation_spec_from_json(p);
  if (!spec) return spec.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  auto r =
      (*tx)->create_relation(spec->from_table, spec->from_field, spec->to_table, spec->on_delete);
  if (!r) return r.error();
  return relation_to_json(*r);
}

Result<json> delete_relation(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.delete_relation";
  TICKDB_TRY(check_params(p, {"id"}, m));
  auto id = param_u64(p, "id", m);
  if (!id) return id.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  TICKDB_TRY((*tx)->delete_relation(*id));
  return json(true);
}

// ---- records ----

// The "values" object of params (a pointer into them: no copy).
Result<const json*> values_param(const json& p, std::string_view m) {
  auto it = p.find("values");
  if (it == p.end() || !it->is_object())
    return make_error(Errc::invalid_argument,
                      std::string(m) + ": param 'values' must be an object");
  return &*it;
}

Result<json> insert(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.insert";
  TICKDB_TRY(check_params(p, {"table", "values"}, m));
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  auto values = values_param(p, m);
  if (!values) return values.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  auto id = insert_json(**tx, *table, **values);
  if (!id) return id.error();
  return record_json(ctx, *table, *id);
}

Result<json> get(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.get";
  TICKDB_TRY(check_params(p, {"table", "id"}, m));
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  auto id = param_u64(p, "id", m);
  if (!id) return id.error();
  auto t = ctx.find_table(*table);
  if (!t) return t.error();
  auto r = (*t)->get(*id);
  if (!r)
    return make_error(Errc::not_found, "record " + std::to_string(*id) + " of table '" + *table +
                                           "' does not exist");
  return record_to_json(*r);
}

Result<json> update(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.update";
  TICKDB_TRY(check_params(p, {"table", "id", "values"}, m));
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  auto id = param_u64(p, "id", m);
  if (!id) return id.error();
  auto values = values_param(p, m);
  if (!values) return values.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  TICKDB_TRY(update_json(**tx, *table, *id, **values));
  return record_json(ctx, *table, *id);
}

Result<json> erase(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.delete";
  TICKDB_TRY(check_params(p, {"table", "id"}, m));
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  auto id = param_u64(p, "id", m);
  if (!id) return id.error();
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  TICKDB_TRY((*tx)->erase(*table, *id));
  return json(true);
}

// db.list and db.query: the same parameters (API.md, Queries).
Result<json> query(CallContext& ctx, const json& p, std::string_view m) {
  auto table = param_string(p, "table", m);
  if (!table) return table.error();
  auto spec = query_spec_from_json(p, {"table"}, false);
  if (!spec) return Error{spec.error().code, std::string(m) + ": " + spec.error().message};
  auto t = ctx.find_table(*table);
  if (!t) return t.error();
  auto page = run_query(**t, *spec);
  if (!page) return Error{page.error().code, std::string(m) + ": " + page.error().message};
  return query_page_to_json(*page, *spec, *(*t)->schema());
}
Result<json> list(CallContext& ctx, const json& p) {
  return query(ctx, p, "db.list");
}
Result<json> query_records(CallContext& ctx, const json& p) {
  return query(ctx, p, "db.query");
}

Result<json> transaction(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "db.transaction";
  TICKDB_TRY(check_params(p, {"ops"}, m));
  auto it = p.find("ops");
  if (it == p.end() || !it->is_array())
    return make_error(Errc::invalid_argument, "db.transaction: param 'ops' must be an array");
  json results = json::array();
  std::size_t i = 0;
  for (const json& op : *it) {
    if (!op.is_object() || !op.contains("method") || !op["method"].is_string())
      return make_error(Errc::invalid_argument, "db.transaction: op " + std::to_string(i) +
                                                    " must be an object with a string 'method'");
    for (const auto& [k, v] : op.items())
      if (k != "method" && k != "params")
        return make_error(Errc::invalid_argument, "db.transaction: op " + std::to_string(i) +
                                                      " has an unknown key '" + k.substr(0, 64) +
                                                      "'");
    const std::string method = op["method"].get<std::string>();
    static const json empty = json::object();
    auto r = ctx.call(method, op.contains("params") ? op["params"] : empty);
    if (!r) {
      Error e = r.error();
      e.message = "op " + std::to_string(i) + " (" + method.substr(0, 128) + "): " + e.message;
      return e;
    }
    results.push_back(std::move(*r));
    ++i;
  }
  return results;
}

Result<json> procedures(CallContext& ctx, const json& p) {
  TICKDB_TRY(check_params(p, {}, "db.procedures"));
  return ctx.registry().list();
}

}  // namespace

Status register_builtins(Registry& reg) {
  const json table_p = {{"table", "string"}};
  const json rec_p = {{"table", "string"}, {"id", "u64"}};
  TICKDB_TRY(add(reg, "db.create_table", "Creates a table; returns its description.",
                 {{"name", "string"}, {"fields", "[field spec]"}}, Route::serial, create_table));
  TICKDB_TRY(add(reg, "db.drop_table", "Drops a table (refused while a relation names it).",
                 table_p, Route::serial, drop_table));
  TICKDB_TRY(add(reg, "db.add_field", "Adds a field (last; existing records get its default).",
                 {{"table", "string"}, {"field", "field spec"}}, Route::serial, add_field));
  TICKDB_TRY(add(reg, "db.remove_field", "Removes a field (refused while a relation uses it).",
                 {{"table", "string"}, {"field", "string"}}, Route::serial, remove_field));
  TICKDB_TRY(add(reg, "db.create_type", "Creates a composite type; returns its description.",
                 {{"name", "string"}, {"fields", "[field spec]"}}, Route::serial, create_type));
  TICKDB_TRY(add(reg, "db.drop_type", "Drops a composite type (refused while used).",
                 {{"name", "string"}}, Route::serial, drop_type));
  TICKDB_TRY(add(reg, "db.create_relation", "Creates a relation from a u64 field to a table.",
                 {{"from_table", "string"},
                  {"from_field", "string"},
                  {"to_table", "string"},
                  {"on_delete", "restrict | cascade | set_zero"}},
                 Route::serial, create_relation));
  TICKDB_TRY(add(reg, "db.delete_relation", "Deletes a relation.", {{"id", "u64"}}, Route::serial,
                 delete_relation));
  TICKDB_TRY(add(reg, "db.create_index",
                 "Creates an index (ordered or hash, unique or not) and builds it.",
                 {{"table", "string"},
                  {"name", "string"},
                  {"fields", "[1..4 field paths]"},
                  {"type", "ordered | hash (ordered)"},
                  {"unique", "bool (false)"}},
                 Route::serial, create_index));
  TICKDB_TRY(add(reg, "db.drop_index", "Drops an index (not a relation's own).",
                 {{"table", "string"}, {"name", "string"}}, Route::serial, drop_index));
  TICKDB_TRY(add(reg, "db.insert", "Inserts a record; returns it with its id.",
                 {{"table", "string"}, {"values", "object"}}, Route::table, insert));
  TICKDB_TRY(add(reg, "db.get", "Reads a record by id.", rec_p, Route::read, get));
  TICKDB_TRY(add(reg, "db.update",
                 "Changes the given fields of a record; returns the whole record.",
                 {{"table", "string"}, {"id", "u64"}, {"values", "object"}}, Route::table, update));
  TICKDB_TRY(add(reg, "db.delete", "Deletes a record (relation rules apply).", rec_p, Route::table,
                 erase));
  const json query_p = {{"table", "string"},
                        {"filter", "text or JSON array form"},
                        {"order", "-score,name or [\"-score\",\"name\"]"},
                        {"select", "hp,pos.x or [\"hp\",\"pos.x\"]"},
                        {"limit", "1..10000 (100)"},
                        {"after", "id cursor (id order)"},
                        {"offset", "0..100000"},
                        {"cursor", "next_cursor of the previous page"},
                        {"count", "exact | none"},
                        {"explain", "bool"}};
  TICKDB_TRY(add(reg, "db.list", "A page of records: filter, order, select, keyset cursor.",
                 query_p, Route::read, list));
  TICKDB_TRY(add(reg, "db.query", "As db.list (for long filters: the same parameters).", query_p,
                 Route::read, query_records));
  TICKDB_TRY(add(reg, "db.transaction", "Runs ops together: all commit or none does.",
                 {{"ops", "[{method, params}]"}}, Route::serial, transaction, false));
  TICKDB_TRY(add(reg, "db.procedures", "Lists every callable.", json::object(), Route::read,
                 procedures, false));
  return {};
}

}  // namespace tickdb
