// The registry: one place for every callable, built-in or procedure; dispatch by name.
#include "actors/builtins.h"
#include "runtime_util.h"

using namespace tickdb;
using namespace tickdb::test;

TEST_CASE("built-ins and procedures are registered the same way and listed by db.procedures",
          "[registry]") {
  RuntimeConfig cfg = no_ticks();
  cfg.register_procedures = [](Registry& reg) {
    Callable c = procedure("demo.answer",
                           [](CallContext&, const json&) -> Result<json> { return json(42); });
    c.description = "answers";
    c.params = {{"x", "u64"}};
    return reg.add(std::move(c));
  };
  auto rt = start_runtime(cfg);
  json list = ok(rt->call("db.procedures", json::object()));
  REQUIRE(list.is_array());
  std::vector<std::string> names;
  for (auto& e : list) names.push_back(e["name"]);
  for (const char* n :
       {"db.create_table", "db.drop_table", "db.add_field", "db.remove_field", "db.create_type",
        "db.drop_type", "db.create_relation", "db.delete_relation", "db.insert", "db.get",
        "db.update", "db.delete", "db.list", "db.transaction", "db.procedures", "demo.answer"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  auto demo = std::find_if(list.begin(), list.end(),
                           [](const json& e) { return e["name"] == "demo.answer"; });
  CHECK((*demo)["description"] == "answers");
  CHECK((*demo)["params"] == json{{"x", "u64"}});
  CHECK(list == rt->registry().list());
  CHECK(ok(rt->call("demo.answer", json::object())) == 42);
}

TEST_CASE("unknown methods are not_found and bad registrations are refused", "[registry]") {
  auto rt = start_runtime(no_ticks());
  auto r = rt->call("no.such", json::object());
  CHECK(code_of(r) == Errc::not_found);
  CHECK(r.error().message.find("no.such") != std::string::npos);

  Registry reg;
  REQUIRE(register_builtins(reg).is_ok());
  auto fn = [](CallContext&, const json&) -> Result<json> { return json(nullptr); };
  CHECK(reg.add(procedure("db.mine", fn)).code() ==
        Errc::invalid_argument);  // db. is for built-ins
  CHECK(reg.add(procedure("db.insert", fn)).code() == Errc::invalid_argument);
  CHECK(reg.add(procedure("bad name", fn)).code() == Errc::invalid_argument);
  CHECK(reg.add(procedure("a..b", fn)).code() == Errc::invalid_argument);
  CHECK(reg.add(procedure("9lives", fn)).code() == Errc::invalid_argument);
  CHECK(reg.add(procedure(std::string(200, 'a'), fn)).code() == Errc::invalid_argument);
  CHECK(reg.add(procedure("nofn", nullptr)).code() == Errc::invalid_argument);
  CHECK(reg.add(procedure("w", fn, Route::table)).code() ==
        Errc::invalid_argument);  // only built-ins batch
  CHECK(reg.add(procedure("r", fn, Route::read)).code() ==
        Errc::invalid_argument);  // or run on the caller
  CHECK(reg.add(procedure("game.ok_name", fn)).is_ok());
  CHECK(reg.add(procedure("game.ok_name", fn)).code() == Errc::already_exists);
  CHECK(reg.find("game.ok_name") != nullptr);
}

TEST_CASE("a registration failure stops start-up with its message", "[registry]") {
  RuntimeConfig cfg = no_ticks();
  cfg.register_procedures = [](Registry& reg) { return reg.add(procedure("db.nope", nullptr)); };
  auto r = Runtime::start(cfg);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.message().find("db.nope") != std::string::npos);
}

TEST_CASE("built-in params are validated at the edge", "[registry]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t");
  CHECK(code_of(rt->call("db.insert", {{"table", "t"}})) == Errc::invalid_argument);  // no values
  CHECK(code_of(rt->call("db.insert", {{"table", 5}, {"values", json::object()}})) ==
        Errc::invalid_argument);
  CHECK(code_of(rt->call("db.insert", {{"table", "t"}, {"values", json::object()}, {"x", 1}})) ==
        Errc::invalid_argument);
  CHECK(code_of(rt->call("db.insert", {{"table", "nope"}, {"values", json::object()}})) ==
        Errc::not_found);
  CHECK(code_of(rt->call("db.insert", {{"table", "t"}, {"values", {{"v", "str"}}}})) ==
        Errc::invalid_argument);
  CHECK(code_of(rt->call("db.insert", json::array())) == Errc::invalid_argument);
  CHECK(code_of(rt->call("db.get", {{"table", "t"}, {"id", -1}})) == Errc::invalid_argument);
  CHECK(code_of(rt->call("db.get", {{"table", "t"}, {"id", 1}})) == Errc::not_found);
  CHECK(code_of(rt->call("db.list", {{"table", "t"}, {"limit", 0}})) == Errc::invalid_argument);
  CHECK(code_of(rt->call("db.list", {{"table", "t"}, {"limit", 10001}})) == Errc::invalid_argument);
  CHECK(code_of(rt->call("db.transaction", {{"ops", 3}})) == Errc::invalid_argument);
  CHECK(
      code_of(rt->call("db.transaction",
                       {{"ops", {{{"method", "db.transaction"}, {"params", json::object()}}}}})) ==
      Errc::invalid_argument);
  CHECK(code_of(rt->call("db.procedures", {{"x", 1}})) == Errc::invalid_argument);
}

TEST_CASE("db.list pages by id cursor and by offset", "[registry]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t");
  for (int i = 1; i <= 25; ++i) ok(rt->call("db.insert", {{"table", "t"}, {"values", {{"v", i}}}}));
  ok(rt->call("db.delete", {{"table", "t"}, {"id", 3}}));
  json p1 = ok(rt->call("db.list", {{"table", "t"}, {"limit", 10}}));
  CHECK(p1["count"] == 10);
  CHECK(p1["total"] == 24);
  CHECK(p1["records"][2]["id"] == 4);
  CHECK(p1["next_after"] == 11);
  json p2 = ok(rt->call("db.list", {{"table", "t"}, {"limit", 10}, {"after", 11}}));
  CHECK(p2["records"][0]["id"] == 12);
  json p3 = ok(rt->call("db.list", {{"table", "t"}, {"limit", 10}, {"after", 21}}));
  CHECK(p3["count"] == 4);
  CHECK(p3["next_after"].is_null());
  json o = ok(rt->call("db.list", {{"table", "t"}, {"limit", 2}, {"offset", 2}}));
  CHECK(o["records"][0]["id"] == 4);
  CHECK(code_of(rt->call("db.list", {{"table", "t"}, {"after", 1}, {"offset", 1}})) ==
        Errc::invalid_argument);
}
