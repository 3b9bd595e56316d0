// The REST handlers of API.md: operations (/health, /cluster, /snapshot, /metrics, /stats,
// /procedures, /openapi.json, /rpc), the schema (types, tables, fields, relations) and records.
// Reads answer from the current version on the calling thread; writes call the runtime.
#include <charconv>

#include "actors/builtins.h"
#include "actors/idempotency_ledger.h"
#include "actors/persistence.h"
#include "core/query.h"
#include "http/fast_txn.h"
#include "http/node_figures.h"
#include "http/router.h"
#include "http/sse_session.h"

namespace tickdb {

using nlohmann::json;

namespace {

Result<std::uint64_t> parse_u64(const std::string& s, const std::string& what) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return make_error(Errc::invalid_argument,
                      what + " must be an unsigned integer, it is '" + s.substr(0, 40) + "'");
  return v;
}

Result<json> body_json(const HttpRequest& req) {
  if (req.body.empty()) return make_error(Errc::bad_json, "the body is empty: expected JSON");
  return parse_json(req.body);
}

// Parses the body and hands it to `fn`, or answers the parse error.
template <class Fn>
void with_body(const HttpRequest& req, Done& done, Fn fn) {
  auto b = body_json(req);
  if (!b) return done(error_response(b.error()));
  fn(std::move(*b));
}

}  // namespace

void Router::answer_query(const std::string& table, const json& params, bool in_url, Done& done) {
  auto spec = query_spec_from_json(params, {}, in_url);
  if (!spec) return done(error_response(spec.error()));
  auto v = rt_->current();
  auto t = v->find_table(table);
  if (!t) return done(error_response(t.error()));
  auto page = run_query(**t, *spec);
  if (!page) return done(error_response(page.error()));
  std::string body;
  append_query_page_json(body, *page, *spec, *(*t)->schema());
  HttpResponse r = json_response(200, std::move(body));
  r.headers.emplace_back("X-Tickdb-Version", std::to_string(v->version()));
  done(std::move(r));
}

void Router::add_operation_routes() {
  // ---- operations ----
  table_.add(
      "GET", "/health", "Liveness: status, node, ticks run, uptime", 200,
      [this](auto&, auto&, auto&, Done& done) {
        double up =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        done(json_response(200, json_text(json{{"status", "ok"},
                                               {"node", cfg_.node_name},
                                               {"epoch", hub_->epoch()},
                                               {"tick", rt_->ticks()},
                                               {"uptime_s", up}})));
      });
  table_.add(
      "GET", "/ws", "Live subscriptions over WebSocket (subprotocol tickdb.v1; see API.md)", 101,
      [](auto&, auto&, auto&, Done& done) {
        // The session upgrades requests that ask for it before they are routed.
        HttpResponse r = error_response(make_error(
            Errc::invalid_argument, "GET /ws is a WebSocket endpoint: send Upgrade: websocket"));
        r.status = 426;
        r.headers.emplace_back("Upgrade", "websocket");
        done(std::move(r));
      });
  table_.add("GET", "/table/{name}/events",
             "Live subscription as Server-Sent Events (filter, select, rate_hz, since; see API.md)",
             200, [this](const HttpRequest& req, const Params& p, auto&, Done& done) {
               // A valid GET never gets here (the session streams it, here or relayed from the
               // table's node): this answers why a request is not valid, and a HEAD (routed as GET)
               // of a valid one with the stream's head.
               auto op = sse_subscription(*rt_, p[0], req);
               if (!op) return done(error_response(op.error()));
               HttpResponse r;
               r.status = 200;
               r.content_type = "text/event-stream";
               r.headers.emplace_back("Cache-Control", "no-cache");
               done(std::move(r));
             });
  table_.add("GET", "/cluster",
             "Cluster membership: this node and its configured peers, with their tables", 200,
             [this](auto&, auto&, auto&, Done& done) {
               if (Cluster* c = cluster_.load(std::memory_order_acquire))
                 return done(value_response(200, c->view()));
               json tables = json::array();
               const auto db = rt_->current();  // held: a publish may free it mid-loop
               for (const auto& [name, t] : db->tables()) tables.push_back(name);
               const auto port = cfg_.cluster_port ? cfg_.cluster_port : cfg_.http_port;
               json nodes = json::array();
               nodes.push_back({{"name", cfg_.node_name},
                                {"address", cfg_.http_address + ":" + std::to_string(port)},
                                {"up", true},
                                {"tables", std::move(tables)}});
               // Peers are listed as configured; joining them comes with the cluster work, so they
               // are never reported up (and own no tables) yet.
               for (const auto& peer : cfg_.cluster_peers)
                 nodes.push_back(
                     {{"name", peer}, {"address", peer}, {"up", false}, {"tables", json::array()}});
               done(json_response(
                   200, json_text(json{{"node", cfg_.node_name}, {"nodes", std::move(nodes)}})));
             });
  table_.add("POST", "/snapshot",
             "Writes a snapshot of the whole database; answers once it is on disk", 200,
             [this](const HttpRequest& req, auto&, auto&, Done& done) {
               if (req.body.empty())
                 return call("db.snapshot", json::object(), 200, std::move(done));
               with_body(req, done,
                         [&](json b) { call("db.snapshot", std::move(b), 200, std::move(done)); });
             });
  table_.add("GET", "/metrics", "Prometheus text: requests, latency, ticks, tables", 200,
             [this](auto&, auto&, auto&, Done& done) {
               HttpResponse r = json_response(200, metrics_text());
               r.content_type = "text/plain; version=0.0.4";
               done(std::move(r));
             });
  table_.add(
      "GET", "/stats",
      "The figures of /metrics as JSON (tick_window: tick percentiles over that many ticks)", 200,
      [this](auto&, auto&, const Query& q, Done& done) {
        std::size_t window = 0;
        for (const auto& [k, val] : q) {
          if (k != "tick_window")
            return done(error_response(make_error(
                Errc::invalid_argument, "stats: unknown parameter '" + k.substr(0, 64) + "'")));
          auto n = parse_u64(val, k);
          if (!n) return done(error_response(n.error()));
          if (*n < 1 || *n > TickStats::kWindow)
            return done(error_response(
                make_error(Errc::invalid_argument,
                           "tick_window: expected 1.." + std::to_string(TickStats::kWindow))));
          window = static_cast<std::size_t>(*n);
        }
        done(json_response(200, json_text(stats_json(window))));
      });
  table_.add("GET", "/procedures", "Every callable (as db.procedures)", 200,
             [this](auto&, auto&, auto&, Done& done) {
               done(json_response(200, json_text(rt_->registry().list())));
             });
  table_.add("GET", "/openapi.json", "This API as an OpenAPI 3 document", 200,
             [this](const HttpRequest& req, auto&, auto&, Done& done) {
               done(json_response(200, json_text(openapi(req.header("host")))));
             });
  table_.add("POST", "/rpc", "JSON-RPC 2.0: single calls, batches, notifications", 200,
             [this](const HttpRequest& req, auto&, auto&, Done& done) {
               rpc_.handle(req, std::move(done));
             });
}

void Router::add_schema_routes() {
  // ---- types ----
  table_.add("POST", "/type", "Create a composite type", 201,
             [this](const HttpRequest& req, auto&, auto&, Done& done) {
               with_body(req, done, [&](json b) {
                 call("db.create_type", std::move(b), 201, std::move(done));
               });
             });
  table_.add("GET", "/types", "List composite types", 200, [this](auto&, auto&, auto&, Done& done) {
    json out = json::array();
    const auto db = rt_->current();  // held: a publish may free it mid-loop
    for (const auto& c : db->types().all()) out.push_back(type_to_json(*c));
    done(json_response(200, json_text(json{{"types", out}})));
  });
  table_.add("GET", "/type/{name}", "Describe a composite type", 200,
             [this](auto&, const Params& p, auto&, Done& done) {
               auto v = rt_->current();
               const CompositeType* c = v->types().find(p[0]);
               if (!c)
                 return done(error_response(make_error(
                     Errc::not_found, "type '" + p[0].substr(0, 80) + "' does not exist")));
               done(json_response(200, json_text(type_to_json(*c))));
             });
  table_.add("DELETE", "/type/{name}", "Drop a composite type", 204,
             [this](auto&, const Params& p, auto&, Done& done) {
               call("db.drop_type", {{"name", p[0]}}, 204, std::move(done));
             });

  // ---- tables and fields ----
  table_.add(
      "POST", "/table", "Create a table", 201,
      [this](const HttpRequest& req, auto&, auto&, Done& done) {
        with_body(req, done, [&](json b) {
          // "node": where the table lives; a request for another node was forwarded
          // before it got here (cluster_routing.cpp).
          if (b.is_object() && b.contains("node")) {
            if (!b["node"].is_string() || b["node"].get<std::string>() != cfg_.node_name)
              return done(error_response(make_error(
                  Errc::invalid_argument,
                  "\"node\" must name a node of this cluster (this is '" + cfg_.node_name + "')")));
            b.erase("node");
          }
          call("db.create_table", std::move(b), 201, std::move(done));
        });
      });
  table_.add("GET", "/tables", "List tables", 200, [this](auto&, auto&, auto&, Done& done) {
    auto v = rt_->current();
    json out = json::array();
    for (const auto& [name, t] : v->tables()) out.push_back(table_to_json(*t));
    done(json_response(200, json_text(json{{"tables", out}})));
  });
  table_.add("GET", "/table/{name}", "Describe a table", 200,
             [this](auto&, const Params& p, auto&, Done& done) {
               auto v = rt_->current();
               auto t = v->find_table(p[0]);
               if (!t) return done(error_response(t.error()));
               done(json_response(200, json_text(table_to_json(**t))));
             });
  table_.add("DELETE", "/table/{name}", "Drop a table", 204,
             [this](auto&, const Params& p, auto&, Done& done) {
               call("db.drop_table", {{"table", p[0]}}, 204, std::move(done));
             });
  table_.add(
      "POST", "/table/{name}/field", "Add a field", 201,
      [this](const HttpRequest& req, const Params& p, auto&, Done& done) {
        with_body(req, done, [&](json b) {
          call("db.add_field", {{"table", p[0]}, {"field", std::move(b)}}, 201, std::move(done));
        });
      });
  table_.add("DELETE", "/table/{name}/field/{field}", "Remove a field", 200,
             [this](auto&, const Params& p, auto&, Done& done) {
               call("db.remove_field", {{"table", p[0]}, {"field", p[1]}}, 200, std::move(done));
             });

  // ---- relations ----
  table_.add("POST", "/relation", "Create a relation", 201,
             [this](const HttpRequest& req, auto&, auto&, Done& done) {
               with_body(req, done, [&](json b) {
                 call("db.create_relation", std::move(b), 201, std::move(done));
               });
             });
  table_.add("GET", "/relations", "List relations", 200, [this](auto&, auto&, auto&, Done& done) {
    auto v = rt_->current();
    json out = json::array();
    for (const auto& [id, r] : v->relations()) out.push_back(relation_to_json(r));
    done(json_response(200, json_text(json{{"relations", out}})));
  });
  table_.add("DELETE", "/relation/{id}", "Delete a relation", 204,
             [this](auto&, const Params& p, auto&, Done& done) {
               auto id = parse_u64(p[0], "relation id");
               if (!id) return done(error_response(id.error()));
               call("db.delete_relation", {{"id", *id}}, 204, std::move(done));
             });
}

void Router::add_record_routes() {
  // ---- records ----
  table_.add(
      "POST", "/table/{name}/record", "Insert a record", 201,
      [this](const HttpRequest& req, const Params& p, auto&, Done& done) {
        // Read straight into the record when the reader takes the body whole (http/fast_txn.h);
        // else, and when the run gives up, the general path answers (its errors are canonical).
        // A keyed insert goes the general way: the ledger keeps the general result, which is
        // also what a replay of its log entry gives.
        if (auto fast = IdempotencyScope::active()
                            ? std::nullopt
                            : prepare_record_insert(p[0], req.body, *rt_->head())) {
          auto prepared = std::make_shared<const PreparedTxn>(std::move(*fast));
          auto outcome = std::make_shared<FastTxnOutcome>();
          rt_->run_on_table_async(
              p[0], fast_insert_callable(prepared, outcome),
              [this, prepared, outcome, table = p[0], body = req.body,
               done = std::move(done)](Result<json> r) mutable {
                if (r.is_ok()) return done(json_response(201, std::move(outcome->out)));
                if (!outcome->fallback) return done(error_response(r.error()));
                auto b = parse_json(body);
                if (!b) return done(error_response(b.error()));
                write({Runtime::RecordWrite::Op::insert, std::move(table), 0, std::move(*b)}, 201,
                      std::move(done));
              });
          return;
        }
        with_body(req, done, [&](json b) {
          write({Runtime::RecordWrite::Op::insert, p[0], 0, std::move(b)}, 201, std::move(done));
        });
      });
  table_.add("GET", "/table/{name}/record/{id}", "Read a record", 200,
             [this](auto&, const Params& p, auto&, Done& done) {
               auto id = parse_u64(p[1], "record id");
               if (!id) return done(error_response(id.error()));
               auto v = rt_->current();
               auto t = v->find_table(p[0]);
               if (!t) return done(error_response(t.error()));
               auto r = (*t)->get(*id);
               if (!r)
                 return done(error_response(make_error(
                     Errc::not_found,
                     "record " + std::to_string(*id) + " of table '" + p[0] + "' does not exist")));
               std::string body;
               append_record_json(body, *r);  // straight from the packed bytes
               done(json_response(200, std::move(body)));
             });
  auto update = [this](const HttpRequest& req, const Params& p, auto&, Done& done) {
    auto id = parse_u64(p[1], "record id");
    if (!id) return done(error_response(id.error()));
    auto b = body_json(req);
    if (!b) return done(error_response(b.error()));
    write({Runtime::RecordWrite::Op::update, p[0], *id, std::move(*b)}, 200, std::move(done));
  };
  table_.add("PUT", "/table/{name}/record/{id}", "Change fields of a record", 200, update);
  table_.add("PATCH", "/table/{name}/record/{id}", "Change fields of a record (as PUT)", 200,
             update);
  table_.add("DELETE", "/table/{name}/record/{id}", "Delete a record", 204,
             [this](auto&, const Params& p, auto&, Done& done) {
               auto id = parse_u64(p[1], "record id");
               if (!id) return done(error_response(id.error()));
               write({Runtime::RecordWrite::Op::erase, p[0], *id, nullptr}, 204, std::move(done));
             });
  // ---- indexes ----
  table_.add("POST", "/table/{name}/index", "Create an index (ordered or hash, unique or not)", 201,
             [this](const HttpRequest& req, const Params& p, auto&, Done& done) {
               with_body(req, done, [&](json b) {
                 if (!b.is_object())
                   return done(error_response(
                       make_error(Errc::invalid_argument, "expected an index definition object")));
                 b["table"] = p[0];
                 call("db.create_index", std::move(b), 201, std::move(done));
               });
             });
  table_.add("GET", "/table/{name}/indexes", "The table's indexes", 200,
             [this](auto&, const Params& p, auto&, Done& done) {
               auto v = rt_->current();
               auto t = v->find_table(p[0]);
               if (!t) return done(error_response(t.error()));
               json out = json::array();
               for (const auto& ix : (*t)->indexes())
                 out.push_back(index_description_to_json(ix.describe(p[0])));
               done(json_response(200, json_text(json{{"indexes", std::move(out)}})));
             });
  table_.add("DELETE", "/table/{name}/index/{index}", "Drop an index", 204,
             [this](auto&, const Params& p, auto&, Done& done) {
               call("db.drop_index", {{"table", p[0]}, {"name", p[1]}}, 204, std::move(done));
             });
  table_.add("GET", "/table/{name}/records",
             "A page of records: filter, order, select, keyset cursor (see Queries)", 200,
             [this](auto&, const Params& p, const Query& q, Done& done) {
               // The query string as the JSON object db.query takes: numbers for the numeric
               // parameters, a filter starting with '[' in its JSON form.
               json params = json::object();
               for (const auto& [k, val] : q) {
                 if (k == "limit" || k == "after" || k == "offset") {
                   auto n = parse_u64(val, k);
                   if (!n) return done(error_response(n.error()));
                   params[k] = *n;
                 } else if (k == "explain") {
                   if (val != "true" && val != "false")
                     return done(error_response(
                         make_error(Errc::invalid_argument, "explain: expected true or false")));
                   params[k] = val == "true";
                 } else if (k == "filter" &&
                            val.find_first_not_of(" \t\r\n") != std::string::npos &&
                            val[val.find_first_not_of(" \t\r\n")] == '[') {
                   if (val.size() > kFilterMaxUrlBytes)
                     return done(error_response(make_error(
                         Errc::invalid_argument,
                         "filter: longer than " + std::to_string(kFilterMaxUrlBytes) + " bytes")));
                   auto f = parse_json(val);
                   if (!f)
                     return done(error_response(
                         make_error(Errc::invalid_argument, "filter: " + f.error().message)));
                   params[k] = std::move(*f);
                 } else {
                   params[k] = val;
                 }
               }
               answer_query(p[0], params, true, done);
             });
  table_.add("POST", "/table/{name}/query",
             "A page of records, the query in the body (for long filters)", 200,
             [this](const HttpRequest& req, const Params& p, auto&, Done& done) {
               with_body(req, done, [&](json b) {
                 if (!b.is_object())
                   return done(error_response(make_error(
                       Errc::invalid_argument, "expected a JSON object of query parameters")));
                 answer_query(p[0], b, false, done);
               });
             });
  table_.add("POST", "/table/{name}/records", "Insert records, atomically", 201,
             [this](const HttpRequest& req, const Params& p, auto&, Done& done) {
               auto b = body_json(req);
               if (!b) return done(error_response(b.error()));
               if (!b->is_object() || !b->contains("records") || !(*b)["records"].is_array() ||
                   b->size() != 1)
                 return done(error_response(
                     make_error(Errc::invalid_argument, "expected {\"records\": [...]}")));
               json ops = json::array();
               for (auto& r : (*b)["records"])
                 ops.push_back({{"method", "db.insert"},
                                {"params", {{"table", p[0]}, {"values", std::move(r)}}}});
               rt_->call_async("db.transaction", {{"ops", std::move(ops)}},
                               [done = std::move(done)](Result<json> r) {
                                 if (!r.is_ok()) return done(error_response(r.error()));
                                 json ids = json::array();
                                 for (const auto& rec : r.value()) ids.push_back(rec["id"]);
                                 done(value_response(201, json{{"ids", std::move(ids)}}));
                               });
             });
}

}  // namespace tickdb
