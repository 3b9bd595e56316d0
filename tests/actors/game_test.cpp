// examples/game: the sample module as a user would run it.
#include <cmath>

#include "runtime_util.h"

using namespace tickdb;
using namespace tickdb::test;
using namespace std::chrono_literals;

namespace {
std::unique_ptr<Runtime> game(RuntimeConfig cfg = no_ticks()) {
  cfg.modules = {TICKDB_GAME_MODULE};
  auto rt = start_runtime(std::move(cfg));
  CHECK(ok(rt->call("setup", json::object()))["created"] == true);
  CHECK(ok(rt->call("setup", json::object()))["created"] == false);
  return rt;
}
json entity(float x, float vx, int hp = 100, std::uint64_t owner = 1) {
  return {{"owner", owner},
          {"pos", {{"x", x}, {"y", 0}, {"z", 0}}},
          {"vel", {{"x", vx}, {"y", 0}, {"z", 0}}},
          {"hp", hp}};
}
std::uint64_t add(Runtime& rt, const std::string& table, json values) {
  return ok(rt.call("db.insert", {{"table", table}, {"values", std::move(values)}}))["id"];
}
float pos_x(Runtime& rt, std::uint64_t id) {
  return rt.current()->table("entities")->get(id)->get<float>("pos.x").value();
}
}  // namespace

TEST_CASE("game: setup makes the tables and the cascade relation", "[game]") {
  auto rt = game();
  auto v = rt->current();
  REQUIRE(v->table("players"));
  REQUIRE(v->table("entities"));
  CHECK(v->table("players")->record_size() == 24);
  CHECK(v->table("entities")->record_size() == 36);
  REQUIRE(v->relations().size() == 1);
  CHECK(v->relations().begin()->second.on_delete == OnDelete::cascade);
}

TEST_CASE("game: spawn, step with bounces, damage_area and cascade", "[game]") {
  auto rt = game();
  std::uint64_t ana = add(*rt, "players", {{"name", "ana"}, {"score", 10}});
  std::uint64_t bo = add(*rt, "players", {{"name", "bo"}, {"score", 20}});
  json s = ok(rt->call("spawn", {{"owner", ana}, {"n", 5000}}));
  CHECK(s["spawned"] == 5000);
  CHECK(code_of(rt->call("spawn", {{"owner", 999}, {"n", 1}})) == Errc::procedure_failed);
  CHECK(code_of(rt->call("spawn", {{"owner", ana}, {"n", 20000000}})) == Errc::procedure_failed);
  std::uint64_t near_wall = add(*rt, "entities", entity(995, 10, 100, bo));
  std::uint64_t mover = add(*rt, "entities", entity(0, 5, 100, bo));

  ok(rt->call("step", {{"dt", 1.0}}));
  CHECK(pos_x(*rt, mover) == 5.0f);
  CHECK(pos_x(*rt, near_wall) == 995.0f);  // 995 + 10 = 1005 -> reflected to 995
  CHECK(rt->current()->table("entities")->get(near_wall)->get<float>("vel.x").value() == -10.0f);
  ok(rt->call("step", {{"dt", 0.5}}));
  CHECK(pos_x(*rt, near_wall) == 990.0f);
  // Every entity stays inside the world.
  const auto db_entities = rt->current();
  for (RecordView r : *db_entities->table("entities"))
    for (const char* f : {"pos.x", "pos.y", "pos.z"}) {
      float p = r.get<float>(f).value();
      CHECK(std::abs(p) <= 1000.0f);
    }
  CHECK(code_of(rt->call("step", json::object())) ==
        Errc::procedure_failed);  // dt needed outside the tick loop
  CHECK(code_of(rt->call("step", {{"dt", -1}})) == Errc::procedure_failed);

  // damage_area: the two of bo's near x=990 and x=7.5 are in different places.
  json d =
      ok(rt->call("damage_area",
                  {{"center", {{"x", 990}, {"y", 0}, {"z", 0}}}, {"radius", 1}, {"amount", 60}}));
  CHECK(d["hit"] == 1);
  CHECK(d["killed"] == 0);
  CHECK(rt->current()->table("entities")->get(near_wall)->get<std::int32_t>("hp").value() == 40);
  d = ok(rt->call("damage_area",
                  {{"center", {{"x", 990}, {"y", 0}, {"z", 0}}}, {"radius", 1}, {"amount", 60}}));
  CHECK(d["killed"] == 1);
  CHECK_FALSE(rt->current()->table("entities")->contains(near_wall));
  CHECK(code_of(rt->call("damage_area", {{"center", {{"x", 0}}}, {"radius", 1}, {"amount", 1}})) ==
        Errc::procedure_failed);
  CHECK(code_of(rt->call("damage_area", {{"center", {{"x", 0}, {"y", 0}, {"z", 0}}},
                                         {"radius", -1},
                                         {"amount", 1}})) == Errc::procedure_failed);

  // A huge blast kills everything within: all of ana's entities are deleted.
  std::uint64_t total = rt->current()->table("entities")->count();
  d = ok(rt->call("damage_area",
                  {{"center", {{"x", 0}, {"y", 0}, {"z", 0}}}, {"radius", 1e9}, {"amount", 1000}}));
  CHECK(d["hit"] == total);
  CHECK(d["killed"] == total);
  CHECK(rt->current()->table("entities")->count() == 0);

  // Cascade: deleting a player deletes its entities.
  ok(rt->call("spawn", {{"owner", ana}, {"n", 100}}));
  ok(rt->call("spawn", {{"owner", bo}, {"n", 50}}));
  ok(rt->call("db.delete", {{"table", "players"}, {"id", ana}}));
  CHECK(rt->current()->table("entities")->count() == 50);
}

TEST_CASE("game: leaderboard is a parallel top-k, best first", "[game]") {
  auto rt = game(no_ticks(3));
  for (int i = 0; i < 3000; ++i)
    add(*rt, "players", {{"name", "p" + std::to_string(i)}, {"score", (i * 7919) % 1000}});
  json top = ok(rt->call("leaderboard", {{"k", 5}}));
  REQUIRE(top.size() == 5);
  // Scores 999 are held by three players; ties go to the lower id.
  CHECK(top[0]["score"] == 999);
  for (std::size_t i = 1; i < top.size(); ++i) {
    bool ordered = top[i - 1]["score"] > top[i]["score"] ||
                   (top[i - 1]["score"] == top[i]["score"] && top[i - 1]["id"] < top[i]["id"]);
    CHECK(ordered);
  }
  // The same as a serial sort.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> all;
  const auto db_players = rt->current();
  for (RecordView r : *db_players->table("players"))
    all.push_back({r.get<std::uint64_t>("score").value(), r.id()});
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(top[i]["id"] == all[i].second);
    CHECK(top[i]["name"] == "p" + std::to_string(all[i].second - 1));
  }
  CHECK(code_of(rt->call("leaderboard", {{"k", 10000}})) == Errc::procedure_failed);
  CHECK(code_of(rt->call("leaderboard", {{"k", 0}})) == Errc::procedure_failed);
}

TEST_CASE("game: step runs as a tick procedure", "[game]") {
  RuntimeConfig cfg;
  cfg.workers = 2;
  cfg.tick_rate_hz = 60;
  cfg.tick_procedures = {{"step", 1, json::object()}};
  auto rt = game(cfg);
  add(*rt, "players", {{"name", "ana"}});
  std::uint64_t id = add(*rt, "entities", entity(0, 60));
  REQUIRE(wait_until([&] { return pos_x(*rt, id) > 10.0f; }, 5000ms));  // ~60 units/s
  CHECK(rt->tick_stats().errors == 0);
}
