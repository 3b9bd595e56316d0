// Procedure modules: loaded with dlopen, ABI-checked; any failure stops start-up naming the file.
#include "actors/modules.h"
#include "runtime_util.h"

using namespace tickdb;
using namespace tickdb::test;

namespace {
void refused(const std::string& path, const std::string& why) {
  RuntimeConfig cfg = no_ticks();
  cfg.modules = {TICKDB_GAME_MODULE, path};
  auto r = Runtime::start(cfg);
  REQUIRE_FALSE(r.is_ok());
  INFO(r.message());
  CHECK(r.code() == Errc::invalid_argument);
  CHECK(r.message().find(path) != std::string::npos);
  CHECK(r.message().find(why) != std::string::npos);
}
}  // namespace

TEST_CASE("a module registers its procedures", "[modules]") {
  RuntimeConfig cfg = no_ticks();
  cfg.modules = {TICKDB_GAME_MODULE};
  auto rt = start_runtime(cfg);
  for (const char* n : {"setup", "spawn", "step", "damage_area", "leaderboard"}) CHECK(rt->registry().find(n));
  json list = ok(rt->call("db.procedures", json::object()));
  CHECK(std::any_of(list.begin(), list.end(), [](const json& e) { return e["name"] == "leaderboard"; }));
}

TEST_CASE("a missing, foreign, wrong-ABI or failing module stops start-up naming the file", "[modules]") {
  refused("/nonexistent/libnothere.so", "cannot be loaded");
  refused(TICKDB_TEST_MODULE_DIR "/libtickdb_test_no_symbol.so", "exports no tickdb_module_register");
  refused(TICKDB_TEST_MODULE_DIR "/libtickdb_test_bad_abi.so", "built for module ABI 99.7.0");
  refused(TICKDB_TEST_MODULE_DIR "/libtickdb_test_fails_register.so", "registration failed");
  refused(TICKDB_TEST_MODULE_DIR "/libtickdb_test_throws_register.so", "no config for me");
  refused(TICKDB_TEST_MODULE_DIR "/../CTestTestfile.cmake", "cannot be loaded");  // not a shared library
  refused(TICKDB_GAME_MODULE, "already registered");                             // loaded twice
}

TEST_CASE("tick procedures must name registered procedures", "[modules]") {
  RuntimeConfig cfg = no_ticks();
  cfg.tick_procedures = {{"step", 1, json::object()}};
  auto r = Runtime::start(cfg);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.message().find("'step' is not a registered procedure") != std::string::npos);
  cfg.modules = {TICKDB_GAME_MODULE};
  cfg.tick_procedures = {{"step", 0, json::object()}};
  CHECK(Runtime::start(cfg).message().find("at least 1") != std::string::npos);
  cfg.tick_procedures = {{"step", 2, json::object()}};
  CHECK(Runtime::start(cfg).is_ok());
}
