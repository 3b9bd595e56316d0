// The router in a cluster of three nodes in one process (three runtimes, each with its
// Cluster over CAF's middleman on loopback): a node asked for a table it no longer owns says
// so, and the forwarder refreshes its directory and retries once, for REST and RPC.
//
// The heartbeat is a minute long, and tables are changed through Runtime::call (which, unlike
// the HTTP routes, announces nothing), so a node's directory stays old until it refreshes it:
// the test controls exactly what each node knows.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "actors/cluster.h"
#include "http/router.h"

using namespace tickdb;
using nlohmann::json;

namespace {

// The same procedures on every node (as a module loaded everywhere): they name their tables
// inside, not in their params, so where they run is found as they run.
Status register_procedures(Registry& reg) {
  auto add = [&](std::string name, Route route, CallFn fn) {
    Callable c;
    c.name = std::move(name);
    c.route = route;
    c.fn = std::move(fn);
    return reg.add(std::move(c));
  };
  TICKDB_TRY(add("t.count", Route::serial, [](CallContext& ctx, const json&) -> Result<json> {
    auto p = ctx.find_table("p");
    if (!p) return p.error();
    return json{{"count", (*p)->count()}};
  }));
  TICKDB_TRY(add("t.add", Route::serial, [](CallContext& ctx, const json& params) -> Result<json> {
    return ctx.call("db.insert", {{"table", "p"}, {"values", {{"v", params.value("v", 0)}}}});
  }));
  // Writes r (wherever it is called), then reads p.
  return add("t.both", Route::serial, [](CallContext& ctx, const json&) -> Result<json> {
    TICKDB_TRY(ctx.call("db.insert", {{"table", "r"}, {"values", {{"v", 1}}}}));
    auto p = ctx.find_table("p");
    if (!p) return p.error();
    return json{{"count", (*p)->count()}};
  });
}

struct TestNode {
  std::unique_ptr<Runtime> rt;
  Config cfg;
  std::unique_ptr<Router> router;
  std::unique_ptr<Cluster> cluster;

  TestNode(const std::string& name, std::vector<std::string> peers) {
    RuntimeConfig rc;
    rc.start_ticks = false;
    rc.workers = 1;
    rc.cluster = RuntimeConfig::ClusterTransport{"routing-test", std::chrono::seconds(60),
                                                 std::chrono::seconds(120)};
    rc.register_procedures = register_procedures;
    auto started = Runtime::start(rc);
    if (!started) FAIL(started.message());
    rt = std::move(started.value());
    cfg.node_name = name;
    router = std::make_unique<Router>(*rt, cfg);
    ClusterOptions o;
    o.name = "routing-test";
    o.node = name;
    o.peers = std::move(peers);
    o.heartbeat = std::chrono::seconds(60);
    o.failure_timeout = std::chrono::seconds(5);
    o.request_timeout = std::chrono::seconds(5);
    Router* r = router.get();
    auto c = Cluster::start(std::move(o), *rt, [r](ForwardRequest req, auto reply) {
      r->serve_forwarded(std::move(req), std::move(reply));
    });
    REQUIRE(c.is_ok());
    cluster = std::move(*c);
    router->set_cluster(cluster.get());
  }
  ~TestNode() {
    cluster->stop();
    router->set_cluster(nullptr);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(cluster->port()); }

  HttpResponse send(std::string method, std::string target, std::string body = "") {
    std::promise<HttpResponse> p;
    router->handle(HttpRequest{std::move(method), std::move(target), std::move(body), "", {}},
                   [&p](HttpResponse res) { p.set_value(std::move(res)); });
    auto f = p.get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    HttpResponse res = f.get();
    if (res.value) res.body = json_text(*res.value);
    return res;
  }
  std::string header(const HttpResponse& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  }
  std::uint64_t retries() {
    auto m = send("GET", "/metrics").body;
    const std::string key = "\ntickdb_cluster_directory_retries_total ";
    auto at = m.find(key);
    REQUIRE(at != std::string::npos);
    return std::stoull(m.substr(at + key.size()));
  }
};

template <class F>
void wait_for(F cond, const char* what) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!cond()) {
    INFO(what);
    REQUIRE(std::chrono::steady_clock::now() < end);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

const json kFields = json::array({{{"name", "v"}, {"type", "i32"}}});

}  // namespace

TEST_CASE(
    "a node that no longer owns a table says so, and the forwarder refreshes and retries once",
    "[http][cluster]") {
  TestNode a("a", {});
  TestNode b("b", {a.address()});
  TestNode c("c", {a.address()});
  // Joining: with no heartbeat to come, the nodes exchange hellos (announce pings every peer)
  // until each knows the other two.
  wait_for(
      [&] {
        int up = 0;
        for (auto* n : {&a, &b, &c}) {
          n->cluster->announce();
          for (const char* p : {"a", "b", "c"})
            up += p != n->cfg.node_name && n->cluster->peer_up(p).value_or(false);
        }
        return up == 6;
      },
      "every node sees the other two");

  // t and u on b, created through b's routes (announced): a learns them.
  for (const char* t : {"t", "u"})
    REQUIRE(b.send("POST", "/table", json{{"name", t}, {"fields", kFields}}.dump()).status == 201);
  wait_for([&] { return a.cluster->owner("t") && a.cluster->owner("u"); }, "a knows t and u");
  wait_for([&] { return c.cluster->owner("t") && c.cluster->owner("u"); }, "c knows t and u");
  REQUIRE(a.cluster->owner("t")->node == "b");
  REQUIRE(a.send("POST", "/table/t/record", R"({"v": 1})").status == 201);  // through a, on b

  // Both move to c behind a's back (nothing is announced): a's directory is old.
  for (const char* t : {"t", "u"}) {
    REQUIRE(b.rt->call("db.drop_table", {{"table", t}}).is_ok());
    REQUIRE(c.rt->call("db.create_table", {{"name", t}, {"fields", kFields}}).is_ok());
    REQUIRE(c.rt->call("db.insert", {{"table", t}, {"values", {{"v", 7}}}}).is_ok());
  }
  REQUIRE(a.cluster->owner("t")->node == "b");
  CHECK(a.retries() == 0);

  SECTION("REST: b says it is not the owner, a refreshes and asks c") {
    auto r = a.send("GET", "/table/t/record/1");
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(json::parse(r.body)["v"] == 7);
    CHECK(a.header(r, "X-Tickdb-Node") == "c");
    CHECK(a.header(r, "X-Tickdb-Owner") == "c");
    CHECK(a.header(r, "X-Tickdb-Not-Owner").empty());  // between nodes only
    CHECK(a.cluster->owner("t")->node == "c");
    CHECK(a.retries() == 1);
    // The directory is fresh now: the next call goes straight to c.
    CHECK(a.send("POST", "/table/t/record", R"({"v": 8})").status == 201);
    CHECK(a.retries() == 1);

    // Dropped everywhere: c says so, a refreshes, and no node has it: a's own 404.
    REQUIRE(c.rt->call("db.drop_table", {{"table", "t"}}).is_ok());
    auto gone = a.send("GET", "/table/t/record/1");
    CHECK(gone.status == 404);
    CHECK(json::parse(gone.body)["error"]["message"] == "table 't' does not exist");
    CHECK(a.header(gone, "X-Tickdb-Owner").empty());
    CHECK(a.retries() == 2);
    CHECK_FALSE(a.cluster->owner("t").has_value());
  }

  SECTION("RPC: a call of a batch is retried alone") {
    auto r = a.send(
        "POST", "/rpc",
        R"([{"jsonrpc": "2.0", "id": 1, "method": "db.get", "params": {"table": "u", "id": 1}},
                        {"jsonrpc": "2.0", "id": 2, "method": "db.procedures", "params": {}}])");
    REQUIRE(r.status == 200);
    auto out = json::parse(r.body);
    INFO(r.body);
    REQUIRE(out.size() == 2);
    CHECK(out[0]["id"] == 1);
    CHECK(out[0]["result"]["v"] == 7);
    CHECK(out[1]["id"] == 2);
    CHECK(a.retries() == 1);
    CHECK(a.cluster->owner("u")->node == "c");
  }
}

TEST_CASE(
    "a procedure whose tables all live on another node runs there, one over two nodes is "
    "refused",
    "[http][cluster]") {
  TestNode a("a", {});
  TestNode b("b", {a.address()});
  wait_for(
      [&] {
        a.cluster->announce();
        b.cluster->announce();
        return a.cluster->peer_up("b").value_or(false) && b.cluster->peer_up("a").value_or(false);
      },
      "a and b see each other");
  REQUIRE(b.send("POST", "/table", json{{"name", "p"}, {"fields", kFields}}.dump()).status == 201);
  REQUIRE(a.send("POST", "/table", json{{"name", "r"}, {"fields", kFields}}.dump()).status == 201);
  wait_for([&] { return a.cluster->owner("p") && b.cluster->owner("r"); },
           "each knows the other's");
  auto rpc = [](TestNode& n, const std::string& method, json params) {
    auto r =
        n.send("POST", "/rpc",
               json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}}.dump());
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  };

  // t.add asked of a: it finds p on b as it runs, is rolled back here and runs on b.
  for (int v : {5, 6}) {
    auto out = rpc(a, "t.add", {{"v", v}});
    INFO(out.dump());
    CHECK(out["result"]["v"] == v);
  }
  CHECK(b.rt->current()->table("p")->count() == 2);
  CHECK(rpc(a, "t.count", json::object())["result"]["count"] == 2);  // a read, on b
  CHECK(rpc(b, "t.count", json::object())["result"]["count"] == 2);  // at home

  // t.both writes r (on a) and reads p (on b): refused wherever it is asked, nothing written.
  for (auto* n : {&a, &b}) {
    auto out = rpc(*n, "t.both", json::object());
    INFO(out.dump());
    CHECK(out["error"]["code"] == -32602);
    CHECK(out["error"]["data"]["code"] == "invalid_argument");
    CHECK(out["error"]["message"].get<std::string>().find("a procedure runs on one node") !=
          std::string::npos);
  }
  CHECK(a.rt->current()->table("r")->count() == 0);
  CHECK(b.rt->current()->table("p")->count() == 2);

  // Without the table anywhere, the procedure's own error.
  REQUIRE(b.rt->call("db.drop_table", {{"table", "p"}}).is_ok());
  b.cluster->announce();
  wait_for([&] { return !a.cluster->owner("p"); }, "a learns p is gone");
  auto gone = rpc(a, "t.count", json::object());
  CHECK(gone["error"]["data"]["code"] == "procedure_failed");
}
