// The router's side of the cluster: which requests go to another node, forwarding them, and
// answering the ones peers forward here.
#include "http/cluster_routing.h"

#include <set>

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

void Router::set_cluster(Cluster* c) {
  cluster_.store(c, std::memory_order_release);
  rpc_.set_cluster(c);
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

void Router::forward_to(const std::string& node, const HttpRequest& req, Done done) {
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
  ForwardRequest f;
  f.method = req.method;
  f.target = req.target;
  f.body = req.body;
  f.authorization = req.authorization;
  for (const auto& [k, v] : req.headers) {
    f.headers.push_back(k);
    f.headers.push_back(v);
  }
  c->forward(node, std::move(f), [done = std::move(done), node](ForwardReply r) {
    HttpResponse res;
    res.status = r.status;
    res.body = std::move(r.body);
    // The owner's answer, exactly: only the content types the node sends come back.
    res.content_type = r.content_type == "text/plain; version=0.0.4"
                           ? std::string_view("text/plain; version=0.0.4")
                           : std::string_view("application/json");
    for (std::size_t i = 0; i + 1 < r.headers.size(); i += 2)
      res.headers.emplace_back(std::move(r.headers[i]), std::move(r.headers[i + 1]));
    bool named = false;
    for (const auto& [k, v] : res.headers) named = named || k == "X-Tickdb-Node";
    if (!named) res.headers.emplace_back("X-Tickdb-Node", node);
    res.headers.emplace_back("X-Tickdb-Owner", node);
    done(std::move(res));
  });
}

void Router::serve_forwarded(ForwardRequest f, std::function<void(ForwardReply)> reply) {
  HttpRequest req;
  req.method = std::move(f.method);
  req.target = std::move(f.target);
  req.body = std::move(f.body);
  req.authorization = std::move(f.authorization);
  for (std::size_t i = 0; i + 1 < f.headers.size(); i += 2)
    req.headers.emplace_back(std::move(f.headers[i]), std::move(f.headers[i + 1]));
  req.headers.emplace_back("x-tickdb-forwarded", f.from);
  const std::string node = cfg_.node_name;
  handle(std::move(req), [reply = std::move(reply), node](HttpResponse r) {
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
    reply(std::move(out));
  });
}

}  // namespace tickdb
