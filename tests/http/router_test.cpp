// The router without sockets (the OpenAPI document: openapi_test.cpp): unknown routes
// are 404, wrong methods 405 with Allow, auth guards every route but /health.
#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <set>
#include <thread>

#include "http/fast_txn.h"
#include "http/router.h"

using namespace tickdb;
using nlohmann::json;

namespace {
HttpResponse send(Router& r, std::string method, std::string target, std::string body = "",
                  std::string auth = "") {
  std::promise<HttpResponse> p;
  r.handle(HttpRequest{std::move(method), std::move(target), std::move(body), std::move(auth), {}},
           [&p](HttpResponse res) { p.set_value(std::move(res)); });
  HttpResponse res = p.get_future().get();
  if (res.value) res.body = json_text(*res.value);  // as the session encodes it
  return res;
}
std::unique_ptr<Runtime> runtime() {
  RuntimeConfig rc;
  rc.start_ticks = false;
  rc.workers = 1;
  return std::move(Runtime::start(rc).value());
}
}  // namespace

TEST_CASE("unknown routes, wrong methods, bad targets and auth", "[http]") {
  auto rt = runtime();
  Config cfg;
  Router open(*rt, cfg);
  CHECK(send(open, "GET", "/nope").status == 404);
  auto r405 = send(open, "PUT", "/tables");
  CHECK(r405.status == 405);
  CHECK(r405.allow == "GET, HEAD");
  CHECK(json::parse(r405.body)["error"]["code"] == "method_not_allowed");
  CHECK(send(open, "GET", "/table/%zz").status == 400);
  CHECK(send(open, "GET", "/table/a%2Fb").status == 404);  // an encoded '/' stays in its segment
  CHECK(send(open, "GET", "/tables?x=%").status == 400);
  cfg.http_auth_token = "tok";
  Router guarded(*rt, cfg);
  CHECK(send(guarded, "GET", "/health").status == 200);
  CHECK(send(guarded, "GET", "/tables").status == 401);
  CHECK(send(guarded, "GET", "/tables", "", "Bearer to").status == 401);
  CHECK(send(guarded, "GET", "/tables", "", "Bearer tok").status == 200);
  CHECK(equal_constant_time("abc", "abc"));
  CHECK_FALSE(equal_constant_time("abc", "abd"));
  CHECK_FALSE(equal_constant_time("abc", "abcd"));
}

namespace {
json rpc(Router& r, const std::string& body) {
  auto res = send(r, "POST", "/rpc", body);
  REQUIRE(res.status == 200);
  return json::parse(res.body);
}
std::uint64_t fast_answered(Router& r) {
  return r.stats_json()["rpc_fast_transactions"]["answered"].get<std::uint64_t>();
}
std::uint64_t fast_fell_back(Router& r) {
  return r.stats_json()["rpc_fast_transactions"]["fell_back"].get<std::uint64_t>();
}
std::uint64_t records(Runtime& rt, const std::string& table) {
  return rt.current()->table(table)->count();
}
void make_tables(Runtime& rt) {
  for (const char* name : {"fast", "slow"}) {
    auto r = rt.call("db.create_table", {{"name", name},
                                         {"fields",
                                          {{{"name", "hp"}, {"type", "i32"}},
                                           {{"name", "name"}, {"type", "str"}, {"size", 8}},
                                           {{"name", "speed"}, {"type", "f32"}}}}});
    REQUIRE(r.is_ok());
  }
}
}  // namespace

TEST_CASE("db.transaction of inserts: the fast path answers what the general path answers",
          "[http][fast-txn]") {
  auto rt = runtime();
  make_tables(*rt);
  Router r(*rt, Config{});
  // The same ops twice: plain (the fast path) and with an escape in a string (the general path).
  auto body = [](const std::string& table, const std::string& name) {
    return R"({"jsonrpc":"2.0","id":"t1","method":"db.transaction","params":{"ops":[)"
           R"({"method":"db.insert","params":{"table":")" +
           table + R"(","values":{"hp":5,"name":")" + name +
           R"("}}},)"
           R"({"method":"db.insert","params":{"table":")" +
           table +
           R"(","values":{"speed":0.1,"id":10}}},)"
           R"({"method":"db.insert","params":{"table":")" +
           table + R"(","values":{}}}]}})";
  };
  json a = rpc(r, body("fast", "ab"));
  CHECK(fast_answered(r) == 1);
  json b = rpc(r, body("slow", "\\u0061b"));
  CHECK(fast_answered(r) == 1);
  CHECK(fast_fell_back(r) == 0);
  CHECK(a == b);
  CHECK(a["id"] == "t1");
  REQUIRE(a["result"].size() == 3);
  CHECK(a["result"][0] == json{{"id", 1}, {"hp", 5}, {"name", "ab"}, {"speed", 0.0}});
  CHECK(a["result"][1]["id"] == 10);
  CHECK(a["result"][1]["speed"].get<double>() == Approx(0.1));
  CHECK(a["result"][2]["id"] == 11);
  CHECK(records(*rt, "fast") == 3);

  // Keys in any order are still read straight: params before method, values before table.
  json c = rpc(
      r,
      R"({"params":{"ops":[{"params":{"values":{"hp":7},"table":"fast"},"method":"db.insert"}]},)"
      R"("id":2,"method":"db.transaction","jsonrpc":"2.0"})");
  CHECK(fast_answered(r) == 2);
  CHECK(c["result"][0]["hp"] == 7);
  CHECK(c["id"] == 2);
  CHECK(records(*rt, "fast") == 4);
}

TEST_CASE("db.transaction of inserts: failures fall back to the general path and change nothing",
          "[http][fast-txn]") {
  auto rt = runtime();
  make_tables(*rt);
  Router r(*rt, Config{});
  auto ops = [](const std::string& values2) {
    return R"({"jsonrpc":"2.0","id":1,"method":"db.transaction","params":{"ops":[)"
           R"({"method":"db.insert","params":{"table":"fast","values":{"hp":1}}},)"
           R"({"method":"db.insert","params":{"table":"fast","values":)" +
           values2 + "}}]}}";
  };
  REQUIRE(rpc(r, ops(R"({"id":5})"))["result"].size() == 2);
  CHECK(records(*rt, "fast") == 2);

  // A used id: the run gives up, the general path answers already_exists, nothing is kept.
  json dup = rpc(r, ops(R"({"id":5})"));
  CHECK(dup["error"]["code"] == -32000);
  CHECK(dup["error"]["data"]["code"] == "already_exists");
  CHECK(fast_fell_back(r) == 1);
  CHECK(records(*rt, "fast") == 2);

  // Values the reader refuses never reach a run: the general path's errors.
  json range = rpc(r, ops(R"({"hp":2147483648})"));
  CHECK(range["error"]["code"] == -32602);
  CHECK(records(*rt, "fast") == 2);
  json unknown = rpc(r, ops(R"({"nope":1})"));
  CHECK(unknown["error"]["code"] == -32602);
  json missing = rpc(r, R"({"jsonrpc":"2.0","id":1,"method":"db.transaction","params":{"ops":[)"
                        R"({"method":"db.insert","params":{"table":"none","values":{}}}]}})");
  CHECK(missing["error"]["data"]["code"] == "not_found");
  CHECK(fast_fell_back(r) == 1);
  CHECK(fast_answered(r) == 1);
  CHECK(records(*rt, "fast") == 2);

  // A notification (no id) is the general path's: no answer, but the inserts are done.
  auto note = send(r, "POST", "/rpc",
                   R"({"jsonrpc":"2.0","method":"db.transaction","params":{"ops":[)"
                   R"({"method":"db.insert","params":{"table":"fast","values":{}}}]}})");
  CHECK(note.status == 204);
  CHECK(records(*rt, "fast") == 3);
}

TEST_CASE("db.transaction of inserts: a schema changed after the read makes the run give up",
          "[http][fast-txn]") {
  auto rt = runtime();
  make_tables(*rt);
  auto prepared = prepare_insert_transaction(
      R"({"jsonrpc":"2.0","id":1,"method":"db.transaction","params":{"ops":[{"method":"db.insert","params":{"table":"fast","values":{"hp":3}}}]}})",
      *rt->current());
  REQUIRE(prepared.has_value());
  REQUIRE(
      rt->call("db.add_field", {{"table", "fast"}, {"field", {{"name", "extra"}, {"type", "u64"}}}})
          .is_ok());
  auto outcome = std::make_shared<FastTxnOutcome>();
  std::promise<Result<json>> p;
  rt->run_async(
      fast_txn_callable(std::make_shared<const PreparedTxn>(std::move(*prepared)), outcome),
      [&p](Result<json> res) { p.set_value(std::move(res)); });
  Result<json> res = p.get_future().get();
  CHECK_FALSE(res.is_ok());
  CHECK(outcome->fallback);
  CHECK(outcome->out.empty());
  CHECK(records(*rt, "fast") == 0);
}

TEST_CASE("GET /cluster lists this node with its tables and the configured peers", "[http]") {
  auto rt = runtime();
  make_tables(*rt);
  Config cfg;
  cfg.node_name = "alpha";
  cfg.cluster_port = 7001;
  cfg.cluster_peers = {"127.0.0.1:7002"};
  Router r(*rt, cfg);
  auto res = send(r, "GET", "/cluster");
  REQUIRE(res.status == 200);
  json c = json::parse(res.body);
  CHECK(c["node"] == "alpha");
  REQUIRE(c["nodes"].size() == 2);
  CHECK(c["nodes"][0] == json{{"name", "alpha"},
                              {"address", "127.0.0.1:7001"},
                              {"up", true},
                              {"tables", {"fast", "slow"}}});
  CHECK(c["nodes"][1]["up"] == false);
  CHECK(c["nodes"][1]["address"] == "127.0.0.1:7002");
}

// The routes that walk the catalog hold the version they walk: a publish from another
// thread frees the one it replaced (under ASan, a walk of a temporary was a use-after-free).
TEST_CASE("GET /cluster, /tables and /types while other threads publish versions", "[http]") {
  auto rt = runtime();
  make_tables(*rt);
  Config cfg;
  Router r(*rt, cfg);
  std::atomic<bool> done{false};
  int failed = 0;
  std::thread writer([&] {
    for (int i = 0; i < 300 && !done.load(); ++i) {
      std::string name = "t";  // (not "t" + ...: gcc 12 -O2 warns -Wrestrict, a false alarm)
      name += std::to_string(i);
      // Catch's assertions are not thread-safe: count here, check after the join.
      failed += !rt->call("db.create_table",
                          {{"name", name}, {"fields", {{{"name", "v"}, {"type", "i32"}}}}})
                     .is_ok();
      failed += !rt->call("db.drop_table", {{"table", name}}).is_ok();
    }
    done = true;
  });
  int answered = 0;
  for (int i = 0; i < 3000 && !done.load(); ++i)
    for (const char* target : {"/cluster", "/tables", "/types"})
      answered += send(r, "GET", target).status == 200;
  done = true;
  writer.join();
  CHECK(failed == 0);
  CHECK(answered > 0);
  CHECK(send(r, "GET", "/cluster").status == 200);
}

TEST_CASE("writes to a stopped node answer 503 node_unavailable, reads still answer", "[http]") {
  auto rt = runtime();
  make_tables(*rt);
  Router r(*rt, Config{});
  rt->stop();
  auto w = send(r, "POST", "/table/fast/record", R"({"hp":1})");
  CHECK(w.status == 503);
  CHECK(json::parse(w.body)["error"]["code"] == "node_unavailable");
  json fast = rpc(r, R"({"jsonrpc":"2.0","id":1,"method":"db.transaction","params":{"ops":[)"
                     R"({"method":"db.insert","params":{"table":"fast","values":{}}}]}})");
  CHECK(fast["error"]["data"]["code"] == "node_unavailable");
  CHECK(send(r, "GET", "/table/fast/records").status == 200);
}

TEST_CASE("HEAD is routed as GET wherever GET is, and only there", "[http]") {
  auto rt = runtime();
  make_tables(*rt);
  Router r(*rt, Config{});
  auto get = send(r, "GET", "/tables");
  auto head = send(r, "HEAD", "/tables");
  CHECK(head.status == 200);
  CHECK(head.body == get.body);  // the session drops it, after taking its length
  CHECK(send(r, "HEAD", "/health").status == 200);
  CHECK(send(r, "HEAD", "/table/fast/record/1").status == 404);
  auto h405 = send(r, "HEAD", "/rpc");
  CHECK(h405.status == 405);
  CHECK(h405.allow == "POST");
}

TEST_CASE("a JSON-RPC batch with a value nlohmann cannot read answers that call alone", "[http]") {
  auto rt = runtime();
  make_tables(*rt);
  Router r(*rt, Config{});
  REQUIRE(rt->call("db.insert", {{"table", "fast"}, {"values", {{"hp", 9}}}}).is_ok());
  json out = rpc(
      r,
      R"([{"jsonrpc":"2.0","id":1,"method":"db.insert","params":{"table":"fast","values":{"hp":1}}},)"
      R"( {"jsonrpc":"2.0","id":"bad","method":"db.insert","params":{"table":"fast","values":{"speed":1e400}}},)"
      R"( {"jsonrpc":"2.0","id":3,"method":"db.get","params":{"table":"fast","id":1}}])");
  REQUIRE(out.is_array());
  REQUIRE(out.size() == 3);
  CHECK(out[0]["result"]["hp"] == 1);
  CHECK(out[1]["id"] == "bad");
  CHECK(out[1]["error"]["code"] == -32602);
  CHECK(out[1]["error"]["data"]["code"] == "invalid_argument");
  CHECK(out[2]["id"] == 3);
  CHECK(out[2]["result"]["hp"] == 9);
  CHECK(records(*rt, "fast") == 2);
  // A body that is no JSON at all is still one parse error.
  json broken = rpc(r, R"([{"jsonrpc":"2.0","id":1,"method":)");
  CHECK(broken["error"]["code"] == -32700);
  // A single call with such a value: its own error, with its id.
  json single =
      rpc(r, R"({"jsonrpc":"2.0","id":7,"method":"db.get","params":{"table":"fast","id":1e400}})");
  CHECK(single["error"]["code"] == -32602);
  CHECK(single["id"] == 7);
}

TEST_CASE("request figures: per thread, merged per route and status, latency as a histogram",
          "[http][metrics]") {
  auto rt = runtime();
  Config cfg;
  cfg.http_threads = 2;
  Router r(*rt, cfg);
  RouteId health = 0;
  for (const auto& route : r.table().routes())
    if (route.pattern_text == "/health") health = route.id;
  REQUIRE(health >= kFirstRoute);
  r.figures().record(0, health, 200, 40'000);      // 40 us
  r.figures().record(1, health, 200, 3'000'000);   // 3 ms
  r.figures().record(1, health, 503, 20'000'000);  // 20 ms
  r.figures().record(0, kRouteNotFound, 404, 1'000);
  auto merged = r.figures().merged();
  CHECK(merged[health].latency.count == 3);
  CHECK(merged[health].by_status == std::vector<std::pair<int, std::uint64_t>>{{200, 2}, {503, 1}});
  CHECK(merged[health].latency.cumulative(0) == 1);  // <= 50 us
  CHECK(merged[health].latency.sum_s == Approx(0.02304));
  std::string text = r.metrics_text();
  CHECK(text.find("# TYPE tickdb_http_request_duration_seconds histogram") != std::string::npos);
  CHECK(text.find(
            "tickdb_http_request_duration_seconds_bucket{route=\"GET /health\",le=\"5e-05\"} 1") !=
        std::string::npos);
  CHECK(text.find(
            "tickdb_http_request_duration_seconds_bucket{route=\"GET /health\",le=\"+Inf\"} 3") !=
        std::string::npos);
  CHECK(text.find("tickdb_http_request_duration_seconds_count{route=\"GET /health\"} 3") !=
        std::string::npos);
  CHECK(text.find("tickdb_http_requests_total{route=\"GET /health\",status=\"503\"} 1") !=
        std::string::npos);
  CHECK(text.find("tickdb_http_requests_total{route=\"not_found\",status=\"404\"} 1") !=
        std::string::npos);
  CHECK(text.find("# TYPE tickdb_tick_duration_seconds histogram") != std::string::npos);
  CHECK(text.find("# TYPE tickdb_tick_lateness_seconds histogram") != std::string::npos);
  // /stats renders the same figures.
  json st = r.stats_json();
  std::uint64_t n = 0;
  for (const auto& q : st["requests"])
    if (q["route"] == "GET /health") n += q["count"].get<std::uint64_t>();
  CHECK(n == 3);
}

TEST_CASE("REST insert: the record reader answers what the general path answers, and falls back",
          "[http][fast-txn]") {
  auto rt = runtime();
  make_tables(*rt);
  Router r(*rt, Config{});
  // Read straight into the record, and (an escape in a string) through the JSON document.
  auto a = send(r, "POST", "/table/fast/record", R"({"hp":5,"name":"ab","speed":0.5})");
  auto b = send(r, "POST", "/table/slow/record", R"({"hp":5,"name":"\u0061b","speed":0.5})");
  REQUIRE(a.status == 201);
  REQUIRE(b.status == 201);
  CHECK(json::parse(a.body) == json::parse(b.body));
  CHECK(json::parse(a.body) == json{{"id", 1}, {"hp", 5}, {"name", "ab"}, {"speed", 0.5}});
  // An id given and then used again: the run gives up, the general path answers 409.
  CHECK(send(r, "POST", "/table/fast/record", R"({"id":9,"hp":1})").status == 201);
  auto dup = send(r, "POST", "/table/fast/record", R"({"id":9,"hp":2})");
  CHECK(dup.status == 409);
  CHECK(json::parse(dup.body)["error"]["code"] == "already_exists");
  CHECK(rt->current()->table("fast")->get(9)->get<std::int32_t>("hp").value() == 1);
  // What the reader refuses is the general path's error.
  auto range = send(r, "POST", "/table/fast/record", R"({"hp":2147483648})");
  CHECK(range.status == 400);
  CHECK(json::parse(range.body)["error"]["code"] == "invalid_argument");
  CHECK(send(r, "POST", "/table/fast/record", R"({"nope":1})").status == 400);
  CHECK(send(r, "POST", "/table/fast/record", R"({"hp":1)").status == 400);
  CHECK(send(r, "POST", "/table/none/record", R"({"hp":1})").status == 404);
  CHECK(records(*rt, "fast") == 2);
}

TEST_CASE("db.get read without a JSON document answers what the general path answers",
          "[http][fast-txn]") {
  auto rt = runtime();
  make_tables(*rt);
  Router r(*rt, Config{});
  REQUIRE(
      rt->call("db.insert", {{"table", "fast"}, {"values", {{"hp", 3}, {"name", "x"}}}}).is_ok());
  json fast =
      rpc(r, R"({"jsonrpc":"2.0","id":"a","method":"db.get","params":{"table":"fast","id":1}})");
  json keys =
      rpc(r, R"({"params":{"id":1,"table":"fast"},"method":"db.get","id":"a","jsonrpc":"2.0"})");
  // An escape in the table name: the reader leaves it to the general path.
  json general = rpc(
      r, R"({"jsonrpc":"2.0","id":"a","method":"db.get","params":{"table":"f\u0061st","id":1}})");
  CHECK(fast == general);
  CHECK(keys == general);
  CHECK(fast == json{{"jsonrpc", "2.0"},
                     {"id", "a"},
                     {"result", {{"id", 1}, {"hp", 3}, {"name", "x"}, {"speed", 0.0}}}});
  json missing =
      rpc(r, R"({"jsonrpc":"2.0","id":2,"method":"db.get","params":{"table":"fast","id":7}})");
  CHECK(missing["error"]["data"]["code"] == "not_found");
  json no_table =
      rpc(r, R"({"jsonrpc":"2.0","id":2,"method":"db.get","params":{"table":"none","id":1}})");
  CHECK(no_table["error"]["data"]["code"] == "not_found");
  json extra = rpc(
      r, R"({"jsonrpc":"2.0","id":2,"method":"db.get","params":{"table":"fast","id":1,"x":1}})");
  CHECK(extra["error"]["code"] == -32602);
  json neg =
      rpc(r, R"({"jsonrpc":"2.0","id":2,"method":"db.get","params":{"table":"fast","id":-1}})");
  CHECK(neg.contains("error"));
}

namespace {
HttpResponse send_with(Router& r, std::string method, std::string target, std::string body,
                       std::vector<std::pair<std::string, std::string>> headers) {
  std::promise<HttpResponse> p;
  r.handle(
      HttpRequest{std::move(method), std::move(target), std::move(body), "", std::move(headers)},
      [&p](HttpResponse res) { p.set_value(std::move(res)); });
  HttpResponse res = p.get_future().get();
  if (res.value) res.body = json_text(*res.value);
  return res;
}
bool replayed(const HttpResponse& r) {
  for (const auto& [k, v] : r.headers)
    if (k == "Idempotent-Replayed" && v == "true") return true;
  return false;
}
}  // namespace

TEST_CASE("a write with an Idempotency-Key is applied once, repeats get the first answer",
          "[http][idempotency]") {
  auto rt = runtime();
  make_tables(*rt);
  Router r(*rt, Config{});
  const std::vector<std::pair<std::string, std::string>> key{{"idempotency-key", "k-1"}};
  auto first = send_with(r, "POST", "/table/fast/record", R"({"hp":1})", key);
  auto again = send_with(r, "POST", "/table/fast/record", R"({"hp":1})", key);
  REQUIRE(first.status == 201);
  CHECK(again.status == 201);
  CHECK(again.body == first.body);
  CHECK_FALSE(replayed(first));
  CHECK(replayed(again));
  CHECK(records(*rt, "fast") == 1);
  // The same key with another request is refused, and applies nothing.
  auto other = send_with(r, "POST", "/table/fast/record", R"({"hp":2})", key);
  CHECK(other.status == 409);
  CHECK(json::parse(other.body)["error"]["code"] == "conflict");
  CHECK(records(*rt, "fast") == 1);
  // Bad keys are refused; other keys, and writes without a key, run.
  CHECK(
      send_with(r, "POST", "/table/fast/record", "{}", {{"idempotency-key", std::string(65, 'a')}})
          .status == 400);
  CHECK(send_with(r, "POST", "/table/fast/record", "{}", {{"idempotency-key", "a b"}}).status ==
        400);
  CHECK(send_with(r, "POST", "/table/fast/record", "{}", {{"idempotency-key", "k-2"}}).status ==
        201);
  CHECK(send(r, "POST", "/table/fast/record", "{}").status == 201);
  CHECK(send(r, "POST", "/table/fast/record", "{}").status == 201);
  CHECK(records(*rt, "fast") == 4);
  // JSON-RPC writes and deletes too; a failed first answer is kept as well.
  const std::string call =
      R"({"jsonrpc":"2.0","id":1,"method":"db.delete","params":{"table":"fast","id":1}})";
  auto d1 = send_with(r, "POST", "/rpc", call, {{"idempotency-key", "d"}});
  auto d2 = send_with(r, "POST", "/rpc", call, {{"idempotency-key", "d"}});
  CHECK(json::parse(d1.body)["result"] == true);
  CHECK(d2.body == d1.body);  // not "record 1 does not exist"
  // Repeats sent before the first is answered wait for it.
  std::vector<std::future<HttpResponse>> answers;
  std::vector<std::shared_ptr<std::promise<HttpResponse>>> ps;
  for (int i = 0; i < 8; ++i) {
    auto p = std::make_shared<std::promise<HttpResponse>>();
    answers.push_back(p->get_future());
    r.handle(
        HttpRequest{
            "POST", "/table/slow/record", R"({"hp":7})", "", {{"idempotency-key", "burst"}}},
        [p](HttpResponse res) {
          if (res.value) res.body = json_text(*res.value);
          p->set_value(std::move(res));
        });
    ps.push_back(p);
  }
  std::string body0;
  for (auto& f : answers) {
    auto res = f.get();
    CHECK(res.status == 201);
    if (body0.empty()) body0 = res.body;
    CHECK(res.body == body0);
  }
  CHECK(records(*rt, "slow") == 1);
  auto st = r.stats_json()["idempotency"];
  CHECK(st["replayed"].get<int>() >= 9);
  CHECK(st["conflicts"] == 1);
}

TEST_CASE("idempotency keys expire after their ttl and beyond max_keys, a 503 is not kept",
          "[http][idempotency]") {
  IdempotencyCache c(0.05, 2);
  int calls = 0;
  Done count = [&](HttpResponse) { ++calls; };
  HttpResponse ok = json_response(201, "{}");
  Done d = count;
  REQUIRE_FALSE(c.begin("a", 1, d));
  c.finish("a", ok);
  d = count;
  CHECK(c.begin("a", 1, d));  // kept
  CHECK(calls == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));  // past the ttl (a bound, not a race)
  d = count;
  CHECK_FALSE(c.begin("a", 1, d));  // forgotten: runs again
  c.finish("a", ok);
  IdempotencyCache small(60, 2);
  for (const char* k : {"x", "y", "z"}) {
    d = count;
    REQUIRE_FALSE(small.begin(k, 1, d));
    small.finish(k, ok);
  }
  d = count;
  CHECK_FALSE(small.begin("x", 1, d));  // the oldest went first
  small.finish("x", ok);
  d = count;
  CHECK(small.begin("z", 1, d));
  HttpResponse unavailable = json_response(503, "{}");
  d = count;
  REQUIRE_FALSE(small.begin("u", 1, d));
  small.finish("u", unavailable);
  d = count;
  CHECK_FALSE(small.begin("u", 1, d));  // a 503 did nothing: the retry runs
}
