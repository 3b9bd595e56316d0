#include "http/rpc_endpoint.h"

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "actors/idempotency_ledger.h"
#include "core/json_text.h"
#include "http/cluster_routing.h"
#include "http/fast_txn.h"
#include "http/idempotency.h"

namespace tickdb {

using nlohmann::json;

namespace {

json rpc_error(const json& id, int code, const std::string& message, const json& data = nullptr) {
  json e = {{"code", code}, {"message", message}};
  if (!data.is_null()) e["data"] = data;
  return {{"jsonrpc", "2.0"}, {"error", e}, {"id", id}};
}

json rpc_error_of(const json& id, const Error& e) {
  if (e.code == Errc::internal) return rpc_error(id, -32603, e.message, {{"code", "internal"}});
  if (e.code == Errc::invalid_argument)
    return rpc_error(id, -32602, e.message, {{"code", "invalid_argument"}});
  return rpc_error(id, -32000, e.message, {{"code", std::string(errc_name(e.code))}});
}

}  // namespace

// Collects the answers of one batch in order; the last one to finish answers the request.
struct RpcBatch {
  std::vector<json> answers;  // null for notifications
  std::atomic<std::size_t> left{0};
  bool batch = false;
  std::string idempotency_key;  // the request's, for its calls forwarded one by one
  Done done;
  void finish_one() {
    if (left.fetch_sub(1) != 1) return;
    json out = json::array();
    bool retry_runs = false;  // a call failed because its node was down or slow
    for (auto& a : answers) {
      if (a.is_null()) continue;
      if (const auto e = a.find("error"); e != a.end() && e->is_object())
        if (const auto d = e->find("data"); d != e->end() && d->is_object()) {
          const auto c = d->find("code");
          retry_runs =
              retry_runs || (c != d->end() && (*c == "node_timeout" || *c == "node_unavailable"));
        }
      out.push_back(std::move(a));
    }
    if (out.empty()) {
      HttpResponse r;
      r.status = 204;
      return done(std::move(r));
    }
    HttpResponse r = value_response(200, batch ? std::move(out) : std::move(out[0]));
    r.retry_runs = retry_runs;
    done(std::move(r));
  }
};

namespace {

// The texts of the elements of a top-level JSON array, found by its brackets and strings
// alone (values are not checked): nullopt when the text is no array of that shape.
std::optional<std::vector<std::string_view>> split_array(std::string_view t) {
  std::size_t i = 0;
  auto ws = [&] {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t')) ++i;
  };
  ws();
  if (i >= t.size() || t[i] != '[') return std::nullopt;
  ++i;
  std::vector<std::string_view> out;
  std::size_t depth = 0, start = i;
  bool in_str = false, esc = false, any = false;
  for (; i < t.size(); ++i) {
    const char c = t[i];
    if (in_json_string(c, in_str, esc)) continue;
    if (c == '"') {
      in_str = true;
      any = true;
    } else if (c == '[' || c == '{') {
      ++depth;
      any = true;
    } else if (c == ']' || c == '}') {
      if (depth == 0) {
        if (c != ']') return std::nullopt;
        if (any)
          out.push_back(t.substr(start, i - start));
        else if (!out.empty())
          return std::nullopt;  // "[1,]"
        ++i;
        ws();
        if (i != t.size()) return std::nullopt;
        return out;
      }
      --depth;
    } else if (c == ',' && depth == 0) {
      if (!any) return std::nullopt;
      out.push_back(t.substr(start, i - start));
      start = i + 1;
      any = false;
    } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
      any = true;
    }
  }
  return std::nullopt;
}

// The "id" member of a call whose text could not be read as a whole, if it can be read.
json id_of_unreadable_call(std::string_view call) {
  std::size_t depth = 0;
  bool in_str = false, esc = false;
  for (std::size_t i = 0; i < call.size(); ++i) {
    const char c = call[i];
    if (in_json_string(c, in_str, esc)) continue;
    if (c == '{' || c == '[')
      ++depth;
    else if (c == '}' || c == ']')
      --depth;
    else if (c == '"') {
      if (depth == 1 && call.substr(i, 4) == "\"id\"") {
        auto colon = call.find_first_not_of(" \n\r\t", i + 4);
        if (colon == std::string_view::npos || call[colon] != ':') return nullptr;
        auto end = call.find_first_of(",}", colon + 1);
        if (end == std::string_view::npos) return nullptr;
        auto v = parse_json(call.substr(colon + 1, end - colon - 1));
        if (v && (v->is_number() || v->is_string())) return *v;
        return nullptr;
      }
      in_str = true;
    }
  }
  return nullptr;
}

// A single db.get call read without a JSON document: {"jsonrpc":"2.0","id":X,"method":"db.get",
// "params":{"table":T,"id":N}} with keys in any order and nothing else (the general path
// takes everything else, and every error).
struct FastGet {
  json id;
  std::string_view table;
  std::uint64_t record = 0;
};
std::optional<FastGet> read_get(std::string_view body) {
  JsonCursor in(body);
  if (in.peek() != '{') return std::nullopt;
  FastGet g;
  RpcEnvelope env;
  bool params = false;
  bool ok = in.object([&](std::string_view key) {
    if (int r = read_envelope_member(in, key, "db.get", env); r != 0) return r > 0;
    if (key != "params" || params) return false;
    params = true;
    bool table = false, rid = false;
    return in.object([&](std::string_view k) {
      if (k == "table" && !table) return table = in.string(g.table);
      if (k != "id" || rid) return false;
      json n;
      if (!in.number(n) || !n.is_number_unsigned()) return false;
      g.record = n.get<std::uint64_t>();
      return rid = true;
    }) && table &&
           rid;
  });
  if (!ok || !in.at_end() || !env.complete() || !params) return std::nullopt;
  g.id = std::move(env.id);
  return g;
}

}  // namespace

Result<std::string> RpcEndpoint::remote_owner(const std::string& method, const json& params) const {
  Cluster* c = cluster_.load(std::memory_order_acquire);
  if (!c) return std::string();
  if (method == "db.create_table") {
    auto it = params.find("node");
    if (it == params.end() || !it->is_string() || *it == c->options().node) return std::string();
    return it->get<std::string>();
  }
  const auto tables = call_tables(method, params);
  if (tables.empty()) return std::string();
  auto o = owner_of_tables(*c, *rt_, tables, method);
  if (!o) return o.error();
  return *o;
}

void RpcEndpoint::handle(const HttpRequest& req, Done done) {
  // Sent here by a peer: a call that turns out to belong elsewhere is not sent on again.
  const bool forwarded = !req.header("x-tickdb-forwarded").empty();
  // db.get, the commonest read, answered straight from the packed record (as GET
  // /table/{name}/record/{id}); a missing table or record is the general path's answer.
  if (auto g = read_get(req.body)) {
    auto v = rt_->current();
    if (const TableVersion* t = v->table(g->table)) {
      if (auto r = t->get(g->record)) {
        std::string out = "{\"id\":";
        out += g->id.dump();
        out += ",\"jsonrpc\":\"2.0\",\"result\":";
        append_record_json(out, *r);
        out += '}';
        return done(json_response(200, std::move(out)));
      }
    }
  }
  // A db.transaction of inserts is read straight into records (http/fast_txn.h); anything it
  // does not take, and any run that gives up, goes the general way below. So does a request
  // with an Idempotency-Key: the ledger keeps the general result (what a replay gives too).
  if (auto fast = IdempotencyScope::active() ? std::nullopt
                                             : prepare_insert_transaction(req.body, *rt_->head())) {
    auto prepared = std::make_shared<const PreparedTxn>(std::move(*fast));
    auto outcome = std::make_shared<FastTxnOutcome>();
    auto body = std::make_shared<std::string>(req.body);
    rt_->run_async(
        fast_txn_callable(prepared, outcome),
        [this, prepared, outcome, body, forwarded, done = std::move(done)](Result<json> r) mutable {
          if (r.is_ok()) {
            fast_txns_.fetch_add(1, std::memory_order_relaxed);
            done(json_response(200, std::move(outcome->out)));
          } else if (outcome->fallback) {
            fast_fallbacks_.fetch_add(1, std::memory_order_relaxed);
            general(*body, forwarded, std::move(done));
          } else {
            done(value_response(200, rpc_error_of(prepared->id, r.error())));
          }
        });
    return;
  }
  general(req.body, forwarded, std::move(done));
}

void RpcEndpoint::general(const std::string& text, bool forwarded, Done done) {
  auto respond = [&](json body) { done(value_response(200, std::move(body))); };
  std::vector<json> calls;
  // Calls whose text could not be read on its own, by index: the answer they get.
  std::vector<std::pair<std::size_t, json>> unreadable;
  bool batch = false;
  auto parsed = parse_json(text);
  if (parsed) {
    json& body = *parsed;
    if (body.is_array() && body.empty())
      return respond(rpc_error(nullptr, -32600, "invalid request: an empty batch"));
    if (body.is_array()) {
      batch = true;
      calls.reserve(body.size());
      for (auto& c : body) calls.push_back(std::move(c));
    } else {
      calls.push_back(std::move(body));
    }
  } else {
    // Text that is JSON but holds what nlohmann refuses (a number beyond a double): read the
    // calls one by one, so that only the call holding it fails, with its own id.
    if (parsed.code() == Errc::bad_json)
      return respond(rpc_error(nullptr, -32700, "parse error: " + parsed.message()));
    std::optional<std::vector<std::string_view>> parts;
    const auto first = text.find_first_not_of(" \n\r\t");
    if (first != std::string::npos && text[first] == '{') {
      parts.emplace(1, std::string_view(text));
    } else {
      parts = split_array(text);
      batch = true;
    }
    if (!parts || parts->empty())
      return respond(rpc_error(nullptr, -32600, "invalid request: " + parsed.message()));
    for (std::size_t i = 0; i < parts->size(); ++i) {
      auto one = parse_json((*parts)[i]);
      if (one) {
        calls.push_back(std::move(*one));
        continue;
      }
      calls.emplace_back();  // answered below
      json id = id_of_unreadable_call((*parts)[i]);
      unreadable.emplace_back(i, one.code() == Errc::bad_json
                                     ? rpc_error(id, -32700, "parse error: " + one.message())
                                     : rpc_error(id, -32602, "invalid params: " + one.message(),
                                                 {{"code", "invalid_argument"}}));
    }
  }
  auto b = std::make_shared<RpcBatch>();
  b->done = std::move(done);  // from here on, only the batch answers
  b->batch = batch;
  b->idempotency_key = IdempotencyScope::key();
  b->answers.resize(calls.size());
  b->left = calls.size();
  std::size_t next_unreadable = 0;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    json& c = calls[i];
    auto answer_now = [&](json a) {
      b->answers[i] = std::move(a);
      b->finish_one();
    };
    if (next_unreadable < unreadable.size() && unreadable[next_unreadable].first == i) {
      answer_now(std::move(unreadable[next_unreadable++].second));
      continue;
    }
    if (!c.is_object()) {
      answer_now(rpc_error(nullptr, -32600, "invalid request: a call must be an object"));
      continue;
    }
    json id = c.contains("id") ? c["id"] : json();
    const bool notification = !c.contains("id");
    if (!id.is_null() && !id.is_string() && !id.is_number()) {
      answer_now(
          rpc_error(nullptr, -32600, "invalid request: 'id' must be a string, a number or null"));
      continue;
    }
    bool bad_key = false;
    for (const auto& [k, v] : c.items())
      if (k != "jsonrpc" && k != "method" && k != "params" && k != "id") bad_key = true;
    if (bad_key || !c.contains("jsonrpc") || c["jsonrpc"] != "2.0" || !c.contains("method") ||
        !c["method"].is_string()) {
      answer_now(rpc_error(id, -32600,
                           "invalid request: needs \"jsonrpc\": \"2.0\" and a string \"method\""));
      continue;
    }
    json params = c.contains("params") ? std::move(c["params"]) : json::object();  // no deep copy
    if (!params.is_object()) {
      answer_now(notification
                     ? json()
                     : rpc_error(id, -32602, "invalid params: 'params' must be an object"));
      continue;
    }
    const std::string& method = c["method"].get_ref<const std::string&>();
    if (!rt_->registry().find(method)) {
      answer_now(notification
                     ? json()
                     : rpc_error(id, -32601, "method not found: '" + method.substr(0, 128) + "'"));
      continue;
    }
    if (method == "db.create_table" && params.contains("node")) {
      // "node": where the table lives; this node's name means here.
      Cluster* c = cluster_.load(std::memory_order_acquire);
      const json& n = params["node"];
      if (!n.is_string() || !c || (n != c->options().node && !c->peer_up(n.get<std::string>()))) {
        if (!n.is_string() || !c || n != c->options().node) {
          answer_now(notification ? json()
                                  : rpc_error(id, -32602,
                                              "invalid params: \"node\" must name a node of "
                                              "this cluster",
                                              {{"code", "invalid_argument"}}));
          continue;
        }
      }
      if (c && n == c->options().node) params.erase("node");
    }
    dispatch(b, i, std::move(id), notification, method, std::move(params), false, forwarded);
  }
}

void RpcEndpoint::dispatch(const std::shared_ptr<RpcBatch>& b, std::size_t i, json id,
                           bool notification, const std::string& method, json params,
                           bool refreshed, bool forwarded) {
  auto answer_now = [&](json a) {
    b->answers[i] = std::move(a);
    b->finish_one();
  };
  auto owner = remote_owner(method, params);
  if (!owner) {
    answer_now(notification ? json() : rpc_error_of(id, owner.error()));
    return;
  }
  if (!owner->empty()) {
    forward_call(b, i, std::move(id), notification, method, std::move(params), *owner, refreshed);
    return;
  }
  // A procedure may find its tables on another node only as it runs (Errc::misdirected, from
  // invoke): it is then run there, once, with these params.
  Cluster* cluster = cluster_.load(std::memory_order_acquire);
  std::shared_ptr<json> moved;
  if (cluster && !forwarded)
    if (const Callable* c = rt_->registry().find(method); c && placed_as_it_runs(*c))
      moved = std::make_shared<json>(params);
  // A table created or dropped here (perhaps in a transaction): the peers learn it at once.
  Cluster* announce =
      method == "db.create_table" || method == "db.drop_table" || method == "db.transaction"
          ? cluster
          : nullptr;
  rt_->call_async(method, std::move(params),
                  [this, b, i, id, notification, announce, moved, method](Result<json> r) mutable {
                    if (!r.is_ok() && r.error().code == Errc::misdirected) {
                      const std::string& m = r.error().message;
                      const auto at = m.rfind("node '");
                      if (moved && at != std::string::npos && m.size() > at + 7) {
                        forward_call(b, i, id, notification, method, std::move(*moved),
                                     m.substr(at + 6, m.size() - at - 7), false);
                        return;
                      }
                      r = make_error(
                          Errc::invalid_argument,
                          m + ": the call was forwarded here already (a call moves once)");
                    }
                    if (announce && r.is_ok()) announce->announce();
                    if (!notification) {
                      if (r.is_ok()) {
                        // Built member by member: an initializer list would copy the whole result.
                        json a = json::object();
                        a["jsonrpc"] = "2.0";
                        a["result"] = std::move(r).value();
                        a["id"] = id;
                        b->answers[i] = std::move(a);
                      } else {
                        b->answers[i] = rpc_error_of(id, r.error());
                      }
                    }
                    b->finish_one();
                  });
}

void RpcEndpoint::forward_call(const std::shared_ptr<RpcBatch>& b, std::size_t i, json id,
                               bool notification, const std::string& method, json params,
                               const std::string& node, bool refreshed) {
  // The owner answers the call (one call of the batch at a time).
  Cluster* c = cluster_.load(std::memory_order_acquire);
  ForwardRequest f;
  f.method = "POST";
  f.target = "/rpc";
  json one = {{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}};
  if (!notification) one["id"] = id;
  f.body = json_text(one);
  // A keyed batch: the owner applies this call once however often the batch is retried.
  if (!b->idempotency_key.empty()) {
    f.headers.push_back("idempotency-key");
    f.headers.push_back(forwarded_call_key(b->idempotency_key, i));
  }
  // Kept for a retry: the node may say it no longer owns a table (the directory was old).
  auto again = refreshed ? nullptr : std::make_shared<json>(std::move(one["params"]));
  c->forward(
      node, std::move(f),
      [this, c, b, i, id, notification, method, again](ForwardReply r) {
        if (again && not_owner_reply(r)) {
          retried_.fetch_add(1, std::memory_order_relaxed);
          c->refresh([this, b, i, id, notification, method, again] {
            dispatch(b, i, id, notification, method, std::move(*again), true, false);
          });
          return;
        }
        if (!notification) {
          auto a = r.status == 200 ? parse_json(r.body) : Result<json>(json());
          if (a && a->is_object()) {
            b->answers[i] = std::move(*a);
          } else {
            // 503/504 of the cluster: the call's own error.
            auto e = parse_json(r.body);
            Errc code = r.status == 504 ? Errc::node_timeout : Errc::node_unavailable;
            std::string msg = e && e->contains("error") ? (*e)["error"].value("message", "")
                                                        : std::string("no answer");
            b->answers[i] = rpc_error_of(id, make_error(code, msg));
          }
        }
        // A table made or dropped there through this node: the batch is answered once this
        // node's directory says so (the client's next call through it then finds the table).
        const bool ok = r.status == 200 && !b->answers[i].contains("error");
        if ((method == "db.create_table" || method == "db.drop_table") && (ok || notification))
          return c->refresh([b] { b->finish_one(); });
        b->finish_one();
      },
      after_this_round());
}

}  // namespace tickdb
