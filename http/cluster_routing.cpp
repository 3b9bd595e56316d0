// The router's side of the cluster: which requests go to another node, forwarding them, and
// answering the ones peers forward here.
#include "http/cluster_routing.h"

#include <set>

#include "http/io_round.h"
#include "http/route_table.h"
#include "http/router.h"

namespace tickdb {

using nlohmann::json;

namespace {
// remote_owner's answer for a request whose tables live on two nodes (refused, never sent).
constexpr const char* kSpansNodes = "\x01spans";
}  // namespace

Result<std::string> owner_of_tables(const Cluster& c, const Runtime& rt,
                                    const std::vector<std::string>& tables,
                                    const std::string& what) {
  const std::string& self = c.options().node;
  auto v = rt.current();
  std::set<std::string> nodes;
  for (const auto& t : tables) {
    if (v->table(t)) {
      nodes.insert(self);
    } else if (auto o = c.owner(t)) {
      nodes.insert(o->node);
    } else {
      nodes.insert(self);  // unknown here and elsewhere: this node's not_found
    }
  }
  if (nodes.size() > 1) {
    std::string names;
    for (const auto& n : nodes) names += (names.empty() ? "'" : ", '") + n + "'";
    return make_error(Errc::invalid_argument,
                      what + " touches tables of the nodes " + names +
                          ": it must stay on one node (no cross-node transactions yet)");
  }
  if (nodes.empty() || *nodes.begin() == self) return std::string();
  return *nodes.begin();
}

std::vector<std::string> call_tables(const std::string& method, const json& params) {
  std::vector<std::string> tables;
  auto add = [&](const json& p, const char* key) {
    if (!p.is_object()) return;
    auto t = p.find(key);
    if (t != p.end() && t->is_string()) tables.push_back(t->get<std::string>());
  };
  if (method == "db.create_table") return tables;
  if (method == "db.transaction") {
    auto ops = params.find("ops");
    if (ops != params.end() && ops->is_array())
      for (const auto& op : *ops)
        if (op.is_object() && op.contains("params")) add(op["params"], "table");
  } else if (method == "db.create_relation") {
    add(params, "from_table");
    add(params, "to_table");
  } else {
    add(params, "table");
  }
  return tables;
}

std::vector<std::string> tables_named(const HttpRequest& req) {
  std::vector<std::string> out;
  auto target = parse_target(req.target);
  if (!target) return out;
  const auto& seg = target->segments;
  if (seg.size() >= 2 && seg[0] == "table") return {seg[1]};
  if (seg.size() != 1 || seg[0] != "rpc") return out;
  auto body = parse_json(req.body);
  if (!body) return out;
  auto one = [&](const json& c) {
    if (!c.is_object() || !c.contains("method") || !c["method"].is_string()) return;
    static const json kNone = json::object();
    const json& p = c.contains("params") ? c["params"] : kNone;
    for (auto& t : call_tables(c["method"].get<std::string>(), p)) out.push_back(std::move(t));
  };
  if (body->is_array()) {
    for (const auto& c : *body) one(c);
  } else {
    one(*body);
  }
  return out;
}

bool not_owner_reply(const ForwardReply& r) {
  for (std::size_t i = 0; i + 1 < r.headers.size(); i += 2)
    if (r.headers[i] == kNotOwnerHeader) return true;
  return false;
}

void Router::set_cluster(Cluster* c) {
  cluster_.store(c, std::memory_order_release);
  rpc_.set_cluster(c);
  // Procedures learn where the tables they miss are (Registry::set_table_locator).
  rt_->registry().set_table_locator(c ? &locator_ : nullptr);
}

std::string Router::remote_owner(const HttpRoute& route, const Params& p,
                                 const HttpRequest& req) const {
  Cluster* c = cluster_.load(std::memory_order_acquire);
  if (!c) return {};
  // POST /table {"node": ...}: where the table is to live.
  if (route.pattern_text == "/table" && route.method == "POST") {
    auto b = parse_json(req.body);
    if (!b || !b->is_object() || !b->contains("node") || !(*b)["node"].is_string()) return {};
    const std::string node = (*b)["node"].get<std::string>();
    return node == cfg_.node_name ? std::string() : node;
  }
  // POST /relation: both tables on one node, there.
  if (route.pattern_text == "/relation" && route.method == "POST") {
    auto b = parse_json(req.body);
    if (!b || !b->is_object()) return {};
    std::vector<std::string> tables;
    for (const char* k : {"from_table", "to_table"})
      if (b->contains(k) && (*b)[k].is_string()) tables.push_back((*b)[k].get<std::string>());
    auto o = owner_of_tables(*c, *rt_, tables, "a relation");
    return o ? *o : std::string(kSpansNodes);
  }
  // /table/{name}...: the table's owner, when it is not here.
  if (route.pattern.size() < 2 || route.pattern[0] != "table" || p.empty()) return {};
  if (rt_->current()->table(p[0])) return {};
  auto o = c->owner(p[0]);
  return o ? o->node : std::string();
}

void Router::forward_to(const std::string& node, const HttpRequest& req, Done done,
                        bool changes_tables) {
  Cluster* c = cluster_.load(std::memory_order_acquire);
  if (node == kSpansNodes) {
    auto b = parse_json(req.body);
    std::vector<std::string> tables;
    for (const char* k : {"from_table", "to_table"})
      if (b && b->contains(k) && (*b)[k].is_string()) tables.push_back((*b)[k].get<std::string>());
    done(error_response(owner_of_tables(*c, *rt_, tables, "a relation").error()));
    return;
  }
  if (!c->peer_up(node).has_value()) {
    done(error_response(make_error(Errc::invalid_argument,
                                   "node '" + node.substr(0, 64) + "' is not in this cluster")));
    return;
  }
  ForwardRequest f = forward_request_of(req);
  // Kept for a retry: the node may say it no longer owns the table (our directory was old).
  std::shared_ptr<HttpRequest> again;
  if (req.header("x-tickdb-refreshed").empty()) again = std::make_shared<HttpRequest>(req);
  // A table made or dropped there through this node: the answer waits for this node's
  // directory to say so, so that the client's next call through it goes to the table's node
  // (without the wait, a write right after the create could run here and answer 421).
  c->forward(
      node, std::move(f),
      [this, c, again, done = std::move(done), node, changes_tables](ForwardReply r) {
        if (again && not_owner_reply(r)) {
          // Refresh the directory, then route the request again (here, to its new owner, or this
          // node's 404 when no node has the table), once.
          forward_retries_.fetch_add(1, std::memory_order_relaxed);
          c->refresh([this, again, done = std::move(done)]() mutable {
            again->headers.emplace_back("x-tickdb-refreshed", "1");
            handle(std::move(*again), std::move(done));
          });
          return;
        }
        HttpResponse res;
        res.status = r.status;
        res.body = std::move(r.body);
        // The owner's answer, exactly: only the content types the node sends come back.
        res.content_type = r.content_type == "text/plain; version=0.0.4"
                               ? std::string_view("text/plain; version=0.0.4")
                           : r.content_type == "text/event-stream"
                               ? std::string_view("text/event-stream")
                               : std::string_view("application/json");
        for (std::size_t i = 0; i + 1 < r.headers.size(); i += 2)
          if (r.headers[i] != kNotOwnerHeader)
            res.headers.emplace_back(std::move(r.headers[i]), std::move(r.headers[i + 1]));
        bool named = false;
        for (const auto& [k, v] : res.headers) named = named || k == "X-Tickdb-Node";
        if (!named) res.headers.emplace_back("X-Tickdb-Node", node);
        res.headers.emplace_back("X-Tickdb-Owner", node);
        if (changes_tables && res.status >= 200 && res.status < 300)
          return c->refresh([done, res = std::move(res)]() mutable { done(std::move(res)); });
        done(std::move(res));
      },
      after_this_round());
}

const Cluster::Defer& after_this_round() {
  static const Cluster::Defer defer = [](std::function<void()> flush) {
    if (!post_after_this_round(flush)) flush();
  };
  return defer;
}

ForwardRequest forward_request_of(const HttpRequest& req) {
  ForwardRequest f;
  f.method = req.method;
  f.target = req.target;
  f.body = req.body;
  f.authorization = req.authorization;
  for (const auto& [k, v] : req.headers) {
    if (k == kStreamHeader) continue;  // only Cluster::open_stream sets it
    f.headers.push_back(k);
    f.headers.push_back(v);
  }
  return f;
}

HttpRequest request_of(ForwardRequest f) {
  HttpRequest req;
  req.method = std::move(f.method);
  req.target = std::move(f.target);
  req.body = std::move(f.body);
  req.authorization = std::move(f.authorization);
  for (std::size_t i = 0; i + 1 < f.headers.size(); i += 2)
    req.headers.emplace_back(std::move(f.headers[i]), std::move(f.headers[i + 1]));
  req.headers.emplace_back("x-tickdb-forwarded", f.from);
  return req;
}

void Router::serve_forwarded(ForwardRequest f, std::function<void(ForwardReply)> reply) {
  HttpRequest req = request_of(std::move(f));
  // A table the peer thinks is here and is not (its directory is old): said beside the answer.
  std::string missing;
  {
    auto v = rt_->current();
    for (auto& t : tables_named(req))
      if (!v->table(t)) missing = std::move(t);
  }
  const std::string node = cfg_.node_name;
  handle(std::move(req), [reply = std::move(reply), node, missing](HttpResponse r) {
    ForwardReply out;
    out.status = r.status;
    out.body = r.value ? json_text(*r.value) : std::move(r.body);
    out.content_type = std::string(r.content_type);
    for (auto& [k, v] : r.headers) {
      out.headers.push_back(std::move(k));
      out.headers.push_back(std::move(v));
    }
    if (!r.allow.empty()) {
      out.headers.push_back("Allow");
      out.headers.push_back(std::move(r.allow));
    }
    out.headers.push_back("X-Tickdb-Node");
    out.headers.push_back(node);
    if (!missing.empty()) {
      out.headers.push_back(kNotOwnerHeader);
      out.headers.push_back(missing.substr(0, 128));
    }
    reply(std::move(out));
  });
}

}  // namespace tickdb
