#include "http/router.h"

#include "actors/persistence.h"
#include "http/fast_txn.h"

#include <atomic>
#include <charconv>
#include <sstream>

#include "actors/builtins.h"

namespace tickdb {

using nlohmann::json;

namespace {
// Every JSON the node writes: a bad byte that slipped into a message is replaced, never an
// exception on an I/O thread.
std::string text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
}  // namespace

HttpResponse error_response(const Error& e) {
  HttpResponse r;
  r.status = errc_http_status(e.code);
  r.body = text(json{{"error", {{"code", errc_name(e.code)}, {"message", e.message}}}});
  return r;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; nullopt on a malformed escape.
std::optional<std::string> decode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return std::nullopt;
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Result<std::uint64_t> parse_u64(const std::string& s, const std::string& what) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return make_error(Errc::invalid_argument, what + " must be an unsigned integer, it is '" + s.substr(0, 40) + "'");
  return v;
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Result<json> body_json(const HttpRequest& req) {
  if (req.body.empty()) return make_error(Errc::bad_json, "the body is empty: expected JSON");
  return parse_json(req.body);
}

// Parses the body and hands it to `fn`, or answers the parse error.
template <class Fn>
void with_body(const HttpRequest& req, Router::Done& done, Fn fn) {
  auto b = body_json(req);
  if (!b) return done(error_response(b.error()));
  fn(std::move(*b));
}

}  // namespace

Router::Router(Runtime& rt, const Config& cfg) : rt_(&rt), cfg_(cfg), started_(std::chrono::steady_clock::now()) {
  using Q = std::map<std::string, std::string>;

  // ---- operations ----
  add("GET", "/health", "Liveness: status, node, ticks run, uptime", 200, [this](auto&, auto&, auto&, Done done) {
    double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    done(json_response(200, text(json{{"status", "ok"}, {"node", cfg_.node_name}, {"tick", rt_->ticks()}, {"uptime_s", up}})));
  });
  add("GET", "/cluster", "Cluster membership: this node and its configured peers, with their tables", 200,
      [this](auto&, auto&, auto&, Done done) {
        json tables = json::array();
        for (const auto& [name, t] : rt_->current()->tables()) tables.push_back(name);
        const auto port = cfg_.cluster_port ? cfg_.cluster_port : cfg_.http_port;
        json nodes = json::array();
        nodes.push_back({{"name", cfg_.node_name},
                         {"address", cfg_.http_address + ":" + std::to_string(port)},
                         {"up", true},
                         {"tables", std::move(tables)}});
        // Peers are listed as configured; joining them comes with the cluster work, so they
        // are never reported up (and own no tables) yet.
        for (const auto& peer : cfg_.cluster_peers)
          nodes.push_back({{"name", peer}, {"address", peer}, {"up", false}, {"tables", json::array()}});
        done(json_response(200, text(json{{"node", cfg_.node_name}, {"nodes", std::move(nodes)}})));
      });
  add("POST", "/snapshot", "Writes a snapshot of the whole database; answers once it is on disk", 200,
      [this](const HttpRequest& req, auto&, auto&, Done done) {
        if (req.body.empty()) return call("db.snapshot", json::object(), 200, std::move(done));
        with_body(req, done, [&](json b) { call("db.snapshot", std::move(b), 200, std::move(done)); });
      });
  add("GET", "/metrics", "Prometheus text: requests, latency, ticks, tables", 200, [this](auto&, auto&, auto&, Done done) {
    HttpResponse r = json_response(200, metrics_text());
    r.content_type = "text/plain; version=0.0.4";
    done(std::move(r));
  });
  add("GET", "/stats", "The figures of /metrics as JSON", 200,
      [this](auto&, auto&, auto&, Done done) { done(json_response(200, text(stats_json()))); });
  add("GET", "/procedures", "Every callable (as db.procedures)", 200,
      [this](auto&, auto&, auto&, Done done) { done(json_response(200, text(rt_->registry().list()))); });
  add("GET", "/openapi.json", "This API as an OpenAPI 3 document", 200,
      [this](auto&, auto&, auto&, Done done) { done(json_response(200, text(openapi()))); });
  add("POST", "/rpc", "JSON-RPC 2.0: single calls, batches, notifications", 200,
      [this](const HttpRequest& req, auto&, auto&, Done done) { rpc(req, std::move(done)); });

  // ---- types ----
  add("POST", "/type", "Create a composite type", 201, [this](const HttpRequest& req, auto&, auto&, Done done) {
    with_body(req, done, [&](json b) { call("db.create_type", std::move(b), 201, std::move(done)); });
  });
  add("GET", "/types", "List composite types", 200, [this](auto&, auto&, auto&, Done done) {
    json out = json::array();
    for (const auto& c : rt_->current()->types().all()) out.push_back(type_to_json(*c));
    done(json_response(200, text(json{{"types", out}})));
  });
  add("GET", "/type/{name}", "Describe a composite type", 200, [this](auto&, const Params& p, auto&, Done done) {
    auto v = rt_->current();
    const CompositeType* c = v->types().find(p[0]);
    if (!c) return done(error_response(make_error(Errc::not_found, "type '" + p[0].substr(0, 80) + "' does not exist")));
    done(json_response(200, text(type_to_json(*c))));
  });
  add("DELETE", "/type/{name}", "Drop a composite type", 204, [this](auto&, const Params& p, auto&, Done done) {
    call("db.drop_type", {{"name", p[0]}}, 204, std::move(done));
  });

  // ---- tables and fields ----
  add("POST", "/table", "Create a table", 201, [this](const HttpRequest& req, auto&, auto&, Done done) {
    with_body(req, done, [&](json b) { call("db.create_table", std::move(b), 201, std::move(done)); });
  });
  add("GET", "/tables", "List tables", 200, [this](auto&, auto&, auto&, Done done) {
    auto v = rt_->current();
    json out = json::array();
    for (const auto& [name, t] : v->tables()) out.push_back(table_to_json(*t));
    done(json_response(200, text(json{{"tables", out}})));
  });
  add("GET", "/table/{name}", "Describe a table", 200, [this](auto&, const Params& p, auto&, Done done) {
    auto v = rt_->current();
    auto t = v->find_table(p[0]);
    if (!t) return done(error_response(t.error()));
    done(json_response(200, text(table_to_json(**t))));
  });
  add("DELETE", "/table/{name}", "Drop a table", 204, [this](auto&, const Params& p, auto&, Done done) {
    call("db.drop_table", {{"table", p[0]}}, 204, std::move(done));
  });
  add("POST", "/table/{name}/field", "Add a field", 201, [this](const HttpRequest& req, const Params& p, auto&, Done done) {
    with_body(req, done, [&](json b) { call("db.add_field", {{"table", p[0]}, {"field", std::move(b)}}, 201, std::move(done)); });
  });
  add("DELETE", "/table/{name}/field/{field}", "Remove a field", 200, [this](auto&, const Params& p, auto&, Done done) {
    call("db.remove_field", {{"table", p[0]}, {"field", p[1]}}, 200, std::move(done));
  });

  // ---- relations ----
  add("POST", "/relation", "Create a relation", 201, [this](const HttpRequest& req, auto&, auto&, Done done) {
    with_body(req, done, [&](json b) { call("db.create_relation", std::move(b), 201, std::move(done)); });
  });
  add("GET", "/relations", "List relations", 200, [this](auto&, auto&, auto&, Done done) {
    auto v = rt_->current();
    json out = json::array();
    for (const auto& [id, r] : v->relations()) out.push_back(relation_to_json(r));
    done(json_response(200, text(json{{"relations", out}})));
  });
  add("DELETE", "/relation/{id}", "Delete a relation", 204, [this](auto&, const Params& p, auto&, Done done) {
    auto id = parse_u64(p[0], "relation id");
    if (!id) return done(error_response(id.error()));
    call("db.delete_relation", {{"id", *id}}, 204, std::move(done));
  });

  // ---- records ----
  add("POST", "/table/{name}/record", "Insert a record", 201, [this](const HttpRequest& req, const Params& p, auto&, Done done) {
    with_body(req, done, [&](json b) { call("db.insert", {{"table", p[0]}, {"values", std::move(b)}}, 201, std::move(done)); });
  });
  add("GET", "/table/{name}/record/{id}", "Read a record", 200, [this](auto&, const Params& p, auto&, Done done) {
    auto id = parse_u64(p[1], "record id");
    if (!id) return done(error_response(id.error()));
    auto v = rt_->current();
    auto t = v->find_table(p[0]);
    if (!t) return done(error_response(t.error()));
    auto r = (*t)->get(*id);
    if (!r)
      return done(error_response(make_error(Errc::not_found, "record " + std::to_string(*id) + " of table '" + p[0] + "' does not exist")));
    std::string body;
    append_record_json(body, *r);  // straight from the packed bytes
    done(json_response(200, std::move(body)));
  });
  auto update = [this](const HttpRequest& req, const Params& p, auto&, Done done) {
    auto id = parse_u64(p[1], "record id");
    if (!id) return done(error_response(id.error()));
    auto b = body_json(req);
    if (!b) return done(error_response(b.error()));
    call("db.update", {{"table", p[0]}, {"id", *id}, {"values", std::move(*b)}}, 200, std::move(done));
  };
  add("PUT", "/table/{name}/record/{id}", "Change fields of a record", 200, update);
  add("PATCH", "/table/{name}/record/{id}", "Change fields of a record (as PUT)", 200, update);
  add("DELETE", "/table/{name}/record/{id}", "Delete a record", 204, [this](auto&, const Params& p, auto&, Done done) {
    auto id = parse_u64(p[1], "record id");
    if (!id) return done(error_response(id.error()));
    call("db.delete", {{"table", p[0]}, {"id", *id}}, 204, std::move(done));
  });
  add("GET", "/table/{name}/records", "A page of records in id order", 200, [this](auto&, const Params& p, const Q& q, Done done) {
    std::uint64_t limit = 100;
    std::optional<std::uint64_t> after, offset;
    for (const auto& [k, val] : q) {
      if (k != "limit" && k != "after" && k != "offset")
        return done(error_response(make_error(Errc::invalid_argument, "unknown query parameter '" + k.substr(0, 40) + "'")));
      auto n = parse_u64(val, k);
      if (!n) return done(error_response(n.error()));
      if (k == "limit") limit = *n;
      else if (k == "after") after = *n;
      else offset = *n;
    }
    auto v = rt_->current();
    auto t = v->find_table(p[0]);
    if (!t) return done(error_response(t.error()));
    auto page = list_records(**t, limit, after, offset);
    if (!page) return done(error_response(page.error()));
    done(json_response(200, text(*page)));
  });
  add("POST", "/table/{name}/records", "Insert records, atomically", 201, [this](const HttpRequest& req, const Params& p, auto&, Done done) {
    auto b = body_json(req);
    if (!b) return done(error_response(b.error()));
    if (!b->is_object() || !b->contains("records") || !(*b)["records"].is_array() || b->size() != 1)
      return done(error_response(make_error(Errc::invalid_argument, "expected {\"records\": [...]}")));
    json ops = json::array();
    for (auto& r : (*b)["records"]) ops.push_back({{"method", "db.insert"}, {"params", {{"table", p[0]}, {"values", std::move(r)}}}});
    rt_->call_async("db.transaction", {{"ops", std::move(ops)}}, [done](Result<json> r) {
      if (!r.is_ok()) return done(error_response(r.error()));
      json ids = json::array();
      for (const auto& rec : r.value()) ids.push_back(rec["id"]);
      done(json_response(201, text(json{{"ids", ids}})));
    });
  });
}

void Router::add(std::string method, std::string pattern, std::string summary, int ok_status, Handler h) {
  routes_.push_back(Route{std::move(method), split_path(pattern), pattern, std::move(summary), ok_status, std::move(h)});
}

std::vector<Router::RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  for (const auto& r : routes_) out.push_back({r.method, r.pattern_text, r.summary, r.ok_status});
  return out;
}

void Router::call(const std::string& method, json params, int ok_status, Done done) {
  rt_->call_async(method, std::move(params), [done = std::move(done), ok_status](Result<json> r) {
    if (!r.is_ok()) return done(error_response(r.error()));
    done(json_response(ok_status, ok_status == 204 ? std::string() : text(r.value())));
  });
}

void Router::handle(const HttpRequest& req, Done done) {
  if (baseline_.load(std::memory_order_relaxed)) {
    HttpResponse r = json_response(200, "{}");
    r.route = "baseline";
    return done(std::move(r));
  }
  std::string_view target = req.target;
  auto qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  auto fail = [&](int status, Error e, std::string route) {
    HttpResponse r = error_response(e);
    r.status = status;
    r.route = std::move(route);
    done(std::move(r));
  };
  if (target.empty() || target[0] != '/')
    return fail(400, make_error(Errc::invalid_argument, "malformed request target"), "invalid");
  auto segs = split_path(path);
  // Percent-decode each segment on its own, so an encoded '/' stays inside its segment.
  for (auto& s : segs) {
    auto d = decode(s, false);
    if (!d) return fail(400, make_error(Errc::invalid_argument, "malformed percent-encoding in the path"), "invalid");
    s = *d;
  }
  std::map<std::string, std::string> query;
  if (qpos != std::string_view::npos) {
    std::string_view qs = target.substr(qpos + 1);
    std::size_t i = 0;
    while (i <= qs.size() && !qs.empty()) {
      auto j = qs.find('&', i);
      if (j == std::string_view::npos) j = qs.size();
      std::string_view kv = qs.substr(i, j - i);
      if (!kv.empty()) {
        auto eq = kv.find('=');
        auto k = decode(kv.substr(0, eq), true);
        auto v = decode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1), true);
        if (!k || !v) return fail(400, make_error(Errc::invalid_argument, "malformed query string"), "invalid");
        if (query.count(*k)) return fail(400, make_error(Errc::invalid_argument, "query parameter '" + k->substr(0, 40) + "' given twice"), "invalid");
        query[*k] = *v;
      }
      i = j + 1;
    }
  }

  const Route* match = nullptr;
  std::string allow;
  Params params;
  for (const auto& r : routes_) {
    if (r.pattern.size() != segs.size()) continue;
    bool ok = true;
    Params p;
    for (std::size_t i = 0; i < segs.size() && ok; ++i) {
      if (r.pattern[i].front() == '{') p.push_back(segs[i]);
      else ok = r.pattern[i] == segs[i];
    }
    if (!ok) continue;
    if (r.method == req.method) {
      match = &r;
      params = std::move(p);
      break;
    }
    allow += (allow.empty() ? "" : ", ") + r.method;
  }
  if (!match) {
    if (!allow.empty()) {
      HttpResponse r = error_response(make_error(Errc::method_not_allowed, "method " + req.method.substr(0, 16) + " is not allowed here; allowed: " + allow));
      r.allow = allow;
      r.route = "method_not_allowed";
      return done(std::move(r));
    }
    return fail(404, make_error(Errc::not_found, "no route " + req.method.substr(0, 16) + " " + std::string(path.substr(0, 200))), "not_found");
  }
  if (!cfg_.http_auth_token.empty() && match->pattern_text != "/health" &&
      !equal_constant_time(req.authorization, "Bearer " + cfg_.http_auth_token))
    return fail(401, make_error(Errc::unauthorized, "this node needs 'Authorization: Bearer <token>'"), match->pattern_text);
  std::string route = match->method + " " + match->pattern_text;
  auto finish = [done, route](HttpResponse r) mutable {
    r.route = route;
    done(std::move(r));
  };
  try {
    match->handler(req, params, query, finish);
  } catch (const std::exception& e) {
    // A bug: answer 500 and keep the node running.
    HttpResponse r = error_response(make_error(Errc::internal, std::string("internal error: ") + e.what()));
    r.route = route;
    done(std::move(r));
  }
}

// ---------------- JSON-RPC 2.0 ----------------

namespace {

json rpc_error(const json& id, int code, const std::string& message, const json& data = nullptr) {
  json e = {{"code", code}, {"message", message}};
  if (!data.is_null()) e["data"] = data;
  return {{"jsonrpc", "2.0"}, {"error", e}, {"id", id}};
}

json rpc_error_of(const json& id, const Error& e) {
  if (e.code == Errc::internal) return rpc_error(id, -32603, e.message, {{"code", "internal"}});
  if (e.code == Errc::invalid_argument) return rpc_error(id, -32602, e.message, {{"code", "invalid_argument"}});
  return rpc_error(id, -32000, e.message, {{"code", std::string(errc_name(e.code))}});
}

// Collects the answers of one batch in order; the last one to finish answers the request.
struct RpcBatch {
  std::vector<json> answers;  // null for notifications
  std::atomic<std::size_t> left{0};
  bool batch = false;
  Router::Done done;
  void finish_one() {
    if (left.fetch_sub(1) != 1) return;
    json out = json::array();
    for (auto& a : answers)
      if (!a.is_null()) out.push_back(std::move(a));
    HttpResponse r;
    if (out.empty()) {
      r.status = 204;
    } else {
      r.status = 200;
      r.body = batch ? text(out) : text(out[0]);
    }
    done(std::move(r));
  }
};

}  // namespace

void Router::rpc(const HttpRequest& req, Done done) {
  // A db.transaction of inserts is read straight into records (http/fast_txn.h); anything it
  // does not take, and any run that gives up, goes the general way below.
  if (auto fast = prepare_insert_transaction(req.body, *rt_->current())) {
    auto prepared = std::make_shared<const PreparedTxn>(std::move(*fast));
    auto outcome = std::make_shared<FastTxnOutcome>();
    auto again = std::make_shared<HttpRequest>(req);
    rt_->run_async(fast_txn_callable(prepared, outcome),
                   [this, prepared, outcome, again, done = std::move(done)](Result<json> r) mutable {
                     if (r.is_ok()) {
                       fast_txns_.fetch_add(1, std::memory_order_relaxed);
                       HttpResponse res;
                       res.body = std::move(outcome->out);
                       done(std::move(res));
                     } else if (outcome->fallback) {
                       fast_fallbacks_.fetch_add(1, std::memory_order_relaxed);
                       rpc_general(*again, std::move(done));
                     } else {
                       HttpResponse res;
                       res.body = text(rpc_error_of(prepared->id, r.error()));
                       done(std::move(res));
                     }
                   });
    return;
  }
  rpc_general(req, std::move(done));
}

void Router::rpc_general(const HttpRequest& req, Done done) {
  auto respond = [&](json body) {
    HttpResponse r;
    r.body = text(body);
    done(std::move(r));
  };
  auto parsed = parse_json(req.body);
  if (!parsed) {
    if (parsed.code() == Errc::bad_json) return respond(rpc_error(nullptr, -32700, "parse error: " + parsed.message()));
    return respond(rpc_error(nullptr, -32600, "invalid request: " + parsed.message()));
  }
  json& body = *parsed;
  if (body.is_array() && body.empty()) return respond(rpc_error(nullptr, -32600, "invalid request: an empty batch"));
  auto b = std::make_shared<RpcBatch>();
  b->done = std::move(done);  // from here on, only the batch answers
  std::vector<json> calls;
  if (body.is_array()) {
    b->batch = true;
    for (auto& c : body) calls.push_back(std::move(c));
  } else {
    calls.push_back(std::move(body));
  }
  b->answers.resize(calls.size());
  b->left = calls.size();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    json& c = calls[i];
    auto answer_now = [&](json a) {
      b->answers[i] = std::move(a);
      b->finish_one();
    };
    if (!c.is_object()) {
      answer_now(rpc_error(nullptr, -32600, "invalid request: a call must be an object"));
      continue;
    }
    json id = c.contains("id") ? c["id"] : json();
    const bool notification = !c.contains("id");
    if (!id.is_null() && !id.is_string() && !id.is_number()) {
      answer_now(rpc_error(nullptr, -32600, "invalid request: 'id' must be a string, a number or null"));
      continue;
    }
    bool bad_key = false;
    for (const auto& [k, v] : c.items())
      if (k != "jsonrpc" && k != "method" && k != "params" && k != "id") bad_key = true;
    if (bad_key || !c.contains("jsonrpc") || c["jsonrpc"] != "2.0" || !c.contains("method") || !c["method"].is_string()) {
      answer_now(rpc_error(id, -32600, "invalid request: needs \"jsonrpc\": \"2.0\" and a string \"method\""));
      continue;
    }
    json params = c.contains("params") ? std::move(c["params"]) : json::object();  // no deep copy
    if (!params.is_object()) {
      answer_now(notification ? json() : rpc_error(id, -32602, "invalid params: 'params' must be an object"));
      continue;
    }
    std::string method = c["method"].get<std::string>();
    if (!rt_->registry().find(method)) {
      answer_now(notification ? json() : rpc_error(id, -32601, "method not found: '" + method.substr(0, 128) + "'"));
      continue;
    }
    rt_->call_async(method, std::move(params), [b, i, id, notification](Result<json> r) {
      if (!notification) {
        if (r.is_ok()) {
          // Built member by member: an initializer list would copy the whole result.
          json a = json::object();
          a["jsonrpc"] = "2.0";
          a["result"] = std::move(r.value());
          a["id"] = id;
          b->answers[i] = std::move(a);
        } else {
          b->answers[i] = rpc_error_of(id, r.error());
        }
      }
      b->finish_one();
    });
  }
}

// ---------------- figures ----------------

void Router::record(const std::string& route, int status, double seconds) {
  std::lock_guard lock(mu_);
  auto& c = requests_[{route, status}];
  ++c.count;
  c.seconds += seconds;
}

json Router::stats_json() const {
  json reqs = json::array();
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, c] : requests_)
      reqs.push_back({{"route", k.first}, {"status", k.second}, {"count", c.count}, {"seconds", c.seconds}});
  }
  auto v = rt_->current();
  json tables = json::array();
  for (const auto& [name, t] : v->tables())
    tables.push_back({{"name", name}, {"records", t->count()}, {"bytes", t->data_bytes()}});
  auto cs = rt_->commit_stats();
  double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return {{"node", cfg_.node_name},
          {"uptime_s", up},
          {"version", v->version()},
          {"tick", rt_->tick_stats().to_json()},
          {"commits", {{"versions", cs.versions}, {"rebases", cs.rebases}, {"conflicts", cs.conflicts},
                       {"calls", cs.calls}, {"handoffs", cs.handoffs}}},
          {"tables", tables},
          {"rpc_fast_transactions", {{"answered", fast_txns_.load()}, {"fell_back", fast_fallbacks_.load()}}},
          {"storage", persistence_ ? persistence_->stats() : json(nullptr)},
          {"requests", reqs}};
}

namespace {
std::string label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}
}  // namespace

std::string Router::metrics_text() const {
  std::ostringstream o;
  o << "# HELP tickdb_http_requests_total HTTP requests answered, by route and status.\n"
       "# TYPE tickdb_http_requests_total counter\n";
  std::map<std::string, Counter> by_route;
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, c] : requests_) {
      o << "tickdb_http_requests_total{route=\"" << label(k.first) << "\",status=\"" << k.second << "\"} " << c.count << "\n";
      by_route[k.first].count += c.count;
      by_route[k.first].seconds += c.seconds;
    }
  }
  o << "# HELP tickdb_http_request_duration_seconds Time from a request read to its answer written.\n"
       "# TYPE tickdb_http_request_duration_seconds summary\n";
  for (const auto& [route, c] : by_route) {
    o << "tickdb_http_request_duration_seconds_sum{route=\"" << label(route) << "\"} " << c.seconds << "\n";
    o << "tickdb_http_request_duration_seconds_count{route=\"" << label(route) << "\"} " << c.count << "\n";
  }
  auto t = rt_->tick_stats();
  o << "# HELP tickdb_ticks_total Ticks run.\n# TYPE tickdb_ticks_total counter\ntickdb_ticks_total " << t.ticks << "\n";
  o << "# HELP tickdb_tick_overruns_total Ticks that ran past the next deadline.\n# TYPE tickdb_tick_overruns_total counter\n"
       "tickdb_tick_overruns_total " << t.overruns << "\n";
  o << "# HELP tickdb_tick_skipped_total Deadlines skipped after overruns.\n# TYPE tickdb_tick_skipped_total counter\n"
       "tickdb_tick_skipped_total " << t.skipped << "\n";
  o << "# HELP tickdb_tick_errors_total Tick procedure runs that failed.\n# TYPE tickdb_tick_errors_total counter\n"
       "tickdb_tick_errors_total " << t.errors << "\n";
  o << "# HELP tickdb_tick_duration_seconds Tick duration (last " << TickStats::kWindow << " ticks).\n"
       "# TYPE tickdb_tick_duration_seconds summary\n";
  o << "tickdb_tick_duration_seconds{quantile=\"0.5\"} " << t.duration.p50_us / 1e6 << "\n";
  o << "tickdb_tick_duration_seconds{quantile=\"0.99\"} " << t.duration.p99_us / 1e6 << "\n";
  o << "tickdb_tick_duration_seconds{quantile=\"1\"} " << t.duration.max_us / 1e6 << "\n";
  o << "# HELP tickdb_tick_lateness_seconds Tick start against its deadline (last " << TickStats::kWindow << " ticks).\n"
       "# TYPE tickdb_tick_lateness_seconds summary\n";
  o << "tickdb_tick_lateness_seconds{quantile=\"0.5\"} " << t.lateness.p50_us / 1e6 << "\n";
  o << "tickdb_tick_lateness_seconds{quantile=\"0.99\"} " << t.lateness.p99_us / 1e6 << "\n";
  o << "tickdb_tick_lateness_seconds{quantile=\"1\"} " << t.lateness.max_us / 1e6 << "\n";
  o << "# HELP tickdb_tick_rate_hz The tick rate.\n# TYPE tickdb_tick_rate_hz gauge\ntickdb_tick_rate_hz " << t.rate_hz << "\n";
  auto v = rt_->current();
  o << "# HELP tickdb_table_records Live records per table.\n# TYPE tickdb_table_records gauge\n";
  for (const auto& [name, tv] : v->tables()) o << "tickdb_table_records{table=\"" << label(name) << "\"} " << tv->count() << "\n";
  o << "# HELP tickdb_table_bytes Bytes of live records per table.\n# TYPE tickdb_table_bytes gauge\n";
  for (const auto& [name, tv] : v->tables()) o << "tickdb_table_bytes{table=\"" << label(name) << "\"} " << tv->data_bytes() << "\n";
  o << "# HELP tickdb_rpc_fast_transactions_total db.transaction calls of inserts read straight into records.\n"
       "# TYPE tickdb_rpc_fast_transactions_total counter\ntickdb_rpc_fast_transactions_total "
    << fast_txns_.load() << "\n";
  o << "# HELP tickdb_rpc_fast_fallbacks_total Fast db.transaction runs that left the answer to the general path.\n"
       "# TYPE tickdb_rpc_fast_fallbacks_total counter\ntickdb_rpc_fast_fallbacks_total "
    << fast_fallbacks_.load() << "\n";
  auto cs = rt_->commit_stats();
  o << "# HELP tickdb_versions_published_total Database versions published.\n# TYPE tickdb_versions_published_total counter\n"
       "tickdb_versions_published_total " << cs.versions << "\n";
  o << "# HELP tickdb_commit_conflicts_total Commits that ran again after a conflict.\n# TYPE tickdb_commit_conflicts_total counter\n"
       "tickdb_commit_conflicts_total " << cs.conflicts << "\n";
  if (persistence_) {
    json st = persistence_->stats();
    const json& snap = st["snapshot"];
    const json& log = st["log"];
    auto metric = [&](const char* name, const char* type, const char* help, const json& v) {
      o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << v.dump() << "\n";
    };
    metric("tickdb_snapshots_total", "counter", "Snapshots written.", snap["count"]);
    metric("tickdb_snapshot_failures_total", "counter", "Snapshots that failed.", snap["failures"]);
    if (!snap["last"].is_null()) {
      metric("tickdb_snapshot_last_age_seconds", "gauge", "Age of the last snapshot written.", snap["last"]["age_s"]);
      metric("tickdb_snapshot_last_duration_seconds", "gauge", "Time the last snapshot took.", snap["last"]["seconds"]);
      metric("tickdb_snapshot_last_bytes", "gauge", "Size of the last snapshot file.", snap["last"]["bytes"]);
    }
    metric("tickdb_log_bytes_total", "counter", "Commit log bytes written.", log["bytes"]);
    metric("tickdb_log_fsyncs_total", "counter", "Commit log fsyncs.", log["fsyncs"]);
    metric("tickdb_log_fsync_seconds_total", "counter", "Time spent in commit log fsyncs.", log["fsync_seconds"]);
    metric("tickdb_log_entries_total", "counter", "Commit log entries (published versions) written.", log["entries"]);
    metric("tickdb_log_group_max", "gauge", "Most entries made durable by one fsync.", log["group_max"]);
    metric("tickdb_log_pending_entries", "gauge", "Entries appended but not yet on disk.", log["pending_entries"]);
  }
  return o.str();
}

json Router::openapi() const {
  json paths = json::object();
  for (const auto& r : routes_) {
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
    json params = json::array();
    for (const auto& seg : r.pattern)
      if (seg.front() == '{')
        params.push_back({{"name", seg.substr(1, seg.size() - 2)}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
    if (r.pattern_text == "/table/{name}/records" && r.method == "GET")
      for (const char* q : {"limit", "after", "offset"})
        params.push_back({{"name", q}, {"in", "query"}, {"required", false}, {"schema", {{"type", "integer"}, {"minimum", 0}}}});
    json op;
    op["summary"] = r.summary;
    op["responses"][std::to_string(r.ok_status)]["description"] = "success";
    op["responses"]["default"]["description"] = "error (see API.md)";
    op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"] = "#/components/schemas/Error";
    if (!params.empty()) op["parameters"] = params;
    if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH")
      op["requestBody"] = {{"required", true}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
    paths[r.pattern_text][method] = op;
  }
  json error_schema = {{"type", "object"},
                       {"properties",
                        {{"error",
                          {{"type", "object"},
                           {"properties", {{"code", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}}};
  json doc;
  doc["openapi"] = "3.0.3";
  doc["info"] = {{"title", "tickdb"}, {"version", "0.1.0"}, {"description", "tickdb HTTP API (API.md)"}};
  doc["paths"] = paths;
  doc["components"]["schemas"]["Error"] = error_schema;
  doc["components"]["securitySchemes"]["bearer"] = {{"type", "http"}, {"scheme", "bearer"}};
  return doc;
}

}  // namespace tickdb
