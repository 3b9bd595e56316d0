// The idempotency ledger and the keys calls take from an IdempotencyScope: a keyed write made
// again is answered with its first result and not applied again; another request under the
// same key is a conflict; results expire and are bounded; a rolled-back version's keys go.
#include <algorithm>
#include <thread>

#include "actors/database.h"
#include "actors/idempotency_ledger.h"
#include "runtime_util.h"

using namespace tickdb;

namespace {
IdempotencyLedger::Entry entry(std::uint64_t fp, json result, std::uint64_t version,
                               std::uint64_t unix_ms = IdempotencyLedger::now_ms()) {
  return {fp, std::move(result), version, unix_ms};
}
}  // namespace

TEST_CASE("the ledger keeps results for their time to live, at most max_keys of them",
          "[idempotency]") {
  IdempotencyLedger l(60, 3);
  l.record("a", entry(1, {{"id", 1}}, 5));
  l.record("b", entry(2, {{"id", 2}}, 6));
  REQUIRE(l.find("a"));
  CHECK(l.find("a")->result == json{{"id", 1}});
  CHECK(l.find("a")->fingerprint == 1);
  CHECK_FALSE(l.find("c"));
  // Past max_keys the oldest goes.
  l.record("c", entry(3, 3, 7));
  l.record("d", entry(4, 4, 8));
  CHECK(l.size() == 3);
  CHECK_FALSE(l.find("a"));
  CHECK(l.find("d"));
  // An old one (replayed from a log older than the time to live) is not kept.
  l.record("old", entry(5, 5, 9, IdempotencyLedger::now_ms() - 61'000));
  CHECK_FALSE(l.find("old"));
  // A snapshot of version 7 carries the keys up to 7.
  auto upto7 = l.through(7);
  std::vector<std::string> keys;
  for (const auto& r : upto7) keys.push_back(r.key);
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"b", "c"});
  // The log lost what came after version 6: those calls are undone.
  l.forget_after(6);
  CHECK(l.find("b"));
  CHECK_FALSE(l.find("c"));
  CHECK_FALSE(l.find("d"));
}

TEST_CASE("ledger results expire", "[idempotency]") {
  IdempotencyLedger l(0.05, 100);
  l.record("a", entry(1, 1, 1));
  CHECK(l.find("a"));
  CHECK(test::wait_until([&] { return !l.find("a"); }, std::chrono::milliseconds(2000)));
  CHECK(l.through(10).empty());
  // load() keeps what is unexpired and skips what is not JSON.
  CHECK(l.load({{"x", 1, 1, IdempotencyLedger::now_ms(), "{\"id\":3}"},
                {"y", 1, 1, IdempotencyLedger::now_ms(), "not json"},
                {"z", 1, 1, IdempotencyLedger::now_ms() - 1000, "1"}}) == 1);
  CHECK(l.find("x")->result == json{{"id", 3}});
}

TEST_CASE("calls under a scope are keyed in order; no scope, no key", "[idempotency]") {
  CHECK(IdempotencyScope::next_call().key.empty());
  {
    IdempotencyScope s("k", 9);
    auto a = IdempotencyScope::next_call();
    auto b = IdempotencyScope::next_call();
    CHECK(a.key == "k");
    CHECK(a.fingerprint == 9);
    CHECK(b.key == "k#1");
    {
      IdempotencyScope inner("other", 1);
      CHECK(IdempotencyScope::next_call().key == "other");
    }
    CHECK(IdempotencyScope::next_call().key == "k#2");
    // Another thread is not under this scope.
    std::string there = "unset";
    std::thread([&] { there = IdempotencyScope::next_call().key; }).join();
    CHECK(there.empty());
  }
  CHECK(IdempotencyScope::next_call().key.empty());
}

TEST_CASE("a keyed write made again is answered from the ledger, not applied again",
          "[idempotency]") {
  auto rt = test::start_runtime(test::no_ticks());
  test::ok(
      rt->call("db.create_table", {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
  auto keyed = [&](const std::string& key, std::uint64_t fp, json values, bool& replayed) {
    auto flag = std::make_shared<std::atomic<bool>>(false);
    IdempotencyScope scope(key, fp, flag);
    auto r = rt->call("db.insert", {{"table", "t"}, {"values", std::move(values)}});
    replayed = flag->load();
    return r;
  };
  bool replayed = true;
  auto first = test::ok(keyed("k", 1, {{"v", 5}}, replayed));
  CHECK_FALSE(replayed);
  CHECK(test::ok(keyed("k", 1, {{"v", 5}}, replayed)) == first);
  CHECK(replayed);
  CHECK(rt->current()->table("t")->count() == 1);
  auto other = keyed("k", 2, {{"v", 6}}, replayed);
  CHECK(test::code_of(other) == Errc::conflict);
  CHECK_THAT(other.error().message, Catch::Matchers::Contains("'k'"));
  CHECK(rt->current()->table("t")->count() == 1);
  // A failed keyed write records nothing: its retry runs.
  auto failed = [&] {
    IdempotencyScope scope("bad", 3);
    return rt->call("db.insert", {{"table", "t"}, {"values", {{"nope", 1}}}});
  }();
  CHECK_FALSE(failed.is_ok());
  CHECK_FALSE(rt->idempotency_ledger().find("bad"));
  // The ledger has the version the call committed in.
  auto e = rt->idempotency_ledger().find("k");
  REQUIRE(e);
  CHECK(e->version <= rt->current()->version());
  CHECK(e->version > 0);
}
