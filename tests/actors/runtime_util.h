// Helpers shared by the actor tests: start a Runtime, check answers, register procedures.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "actors/runtime.h"

namespace tickdb::test {

inline std::string describe(const Result<json>& r) {
  if (r.is_ok()) return "ok: " + r.value().dump();
  return std::string(errc_name(r.error().code)) + ": " + r.error().message;
}

// A runtime without the tick loop unless asked (most tests drive calls themselves).
inline std::unique_ptr<Runtime> start_runtime(RuntimeConfig cfg = {}) {
  auto r = Runtime::start(std::move(cfg));
  INFO((r ? std::string() : r.message()));
  REQUIRE(r.is_ok());
  return std::move(r).value();
}
inline RuntimeConfig no_ticks(std::size_t workers = 2) {
  RuntimeConfig c;
  c.start_ticks = false;
  c.workers = workers;
  return c;
}

inline json ok(Result<json> r) {
  INFO(describe(r));
  REQUIRE(r.is_ok());
  return std::move(r.value());
}
inline Errc code_of(const Result<json>& r) {
  return r.is_ok() ? Errc::ok : r.error().code;
}

inline Callable procedure(std::string name, CallFn fn, Route route = Route::serial) {
  Callable c;
  c.name = std::move(name);
  c.description = "test procedure";
  c.route = route;
  c.fn = std::move(fn);
  return c;
}

// Waits for `cond` up to `limit`; true when it held.
template <class F>
bool wait_until(F cond, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

// players(name str16, score u64) and items(owner u64 -> players, qty i32) with a relation.
inline void make_players_items(Runtime& rt, const char* on_delete = "cascade") {
  ok(rt.call("db.create_table", {{"name", "players"},
                                 {"fields",
                                  {{{"name", "name"}, {"type", "str"}, {"size", 16}},
                                   {{"name", "score"}, {"type", "u64"}}}}}));
  ok(rt.call(
      "db.create_table",
      {{"name", "items"},
       {"fields", {{{"name", "owner"}, {"type", "u64"}}, {{"name", "qty"}, {"type", "i32"}}}}}));
  ok(rt.call("db.create_relation", {{"from_table", "items"},
                                    {"from_field", "owner"},
                                    {"to_table", "players"},
                                    {"on_delete", on_delete}}));
}

inline void make_table(Runtime& rt, const std::string& name,
                       json fields = json::array({{{"name", "v"}, {"type", "i64"}}})) {
  ok(rt.call("db.create_table", {{"name", name}, {"fields", std::move(fields)}}));
}

}  // namespace tickdb::test
