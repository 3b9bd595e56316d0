// The router without sockets: the OpenAPI document matches the route table, unknown routes
// are 404, wrong methods 405 with Allow, auth guards every route but /health.
#include <catch2/catch.hpp>
#include <future>

#include "http/router.h"

using namespace tickdb;
using nlohmann::json;

namespace {
HttpResponse send(Router& r, std::string method, std::string target, std::string body = "", std::string auth = "") {
  std::promise<HttpResponse> p;
  r.handle(HttpRequest{std::move(method), std::move(target), std::move(body), std::move(auth)},
           [&p](HttpResponse res) { p.set_value(std::move(res)); });
  return p.get_future().get();
}
std::unique_ptr<Runtime> runtime() {
  RuntimeConfig rc;
  rc.start_ticks = false;
  rc.workers = 1;
  return std::move(Runtime::start(rc).value());
}
}  // namespace

TEST_CASE("the OpenAPI document lists exactly the router's routes", "[http]") {
  auto rt = runtime();
  Router r(*rt, Config{});
  json doc = r.openapi();
  std::size_t ops = 0;
  for (const auto& [path, methods] : doc["paths"].items()) ops += methods.size();
  CHECK(ops == r.routes().size());
  for (const auto& route : r.routes()) {
    std::string m = route.method;
    std::transform(m.begin(), m.end(), m.begin(), ::tolower);
    INFO(route.method << " " << route.pattern);
    REQUIRE(doc["paths"].contains(route.pattern));
    REQUIRE(doc["paths"][route.pattern].contains(m));
    CHECK(doc["paths"][route.pattern][m]["responses"].contains(std::to_string(route.ok_status)));
  }
}

TEST_CASE("unknown routes, wrong methods, bad targets and auth", "[http]") {
  auto rt = runtime();
  Config cfg;
  Router open(*rt, cfg);
  CHECK(send(open, "GET", "/nope").status == 404);
  auto r405 = send(open, "PUT", "/tables");
  CHECK(r405.status == 405);
  CHECK(r405.allow == "GET");
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
