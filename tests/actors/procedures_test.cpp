// Procedures run transactionally: all of what they write appears at once when they return;
// if they fail or throw, nothing of it does, and the caller gets the error.
#include <atomic>
#include <future>
#include <stdexcept>

#include "runtime_util.h"

using namespace tickdb;
using namespace tickdb::test;

namespace {
// Inserts params.n records into `t`, then fails / throws / succeeds as params.end says.
Result<json> write_then(CallContext& ctx, const json& p) {
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  for (int i = 0; i < p.value("n", 10); ++i) {
    auto id = insert_json(**tx, "t", {{"v", i}});
    if (!id) return id.error();
  }
  std::string end = p.value("end", "ok");
  if (end == "fail") return make_error(Errc::invalid_argument, "asked to fail");
  if (end == "throw") throw std::runtime_error("asked to throw");
  if (end == "json") return json::parse("{bad");  // an exception from a library
  if (end == "nested_fail") {
    auto r = ctx.call("test.write_then", {{"n", 3}, {"end", "fail"}});
    if (!r)
      return json("swallowed: " + r.message());  // a procedure that ignores a failed nested call
  }
  return json(p.value("n", 10));
}

RuntimeConfig with_procs() {
  RuntimeConfig cfg = no_ticks();
  cfg.register_procedures = [](Registry& reg) {
    return reg.add(procedure("test.write_then", write_then));
  };
  return cfg;
}
}  // namespace

TEST_CASE("a procedure's writes appear all at once when it returns", "[procedures]") {
  auto rt = start_runtime(with_procs());
  make_table(*rt, "t");
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> partial{0};
  std::thread reader([&] {
    while (!stop) {
      auto n = rt->current()->table("t")->count();
      if (n % 100 != 0) ++partial;  // each run inserts 100
    }
  });
  for (int i = 0; i < 50; ++i) CHECK(ok(rt->call("test.write_then", {{"n", 100}})) == 100);
  stop = true;
  reader.join();
  CHECK(partial == 0);
  CHECK(rt->current()->table("t")->count() == 5000);
}

TEST_CASE("a failing, throwing or half-done procedure leaves nothing behind", "[procedures]") {
  auto rt = start_runtime(with_procs());
  make_table(*rt, "t");
  ok(rt->call("test.write_then", {{"n", 5}}));
  auto before = rt->current();
  for (const char* end : {"fail", "throw", "json", "nested_fail"}) {
    auto r = rt->call("test.write_then", {{"n", 50}, {"end", end}});
    INFO(end << ": " << describe(r));
    CHECK(code_of(r) == Errc::procedure_failed);
    CHECK(r.error().message.find("test.write_then") != std::string::npos);
    CHECK(rt->current() == before);
  }
  auto r = rt->call("test.write_then", {{"n", 1}, {"end", "fail"}});
  CHECK(r.error().message.find("asked to fail") != std::string::npos);
  CHECK(rt->call("test.write_then", {{"n", 1}, {"end", "throw"}})
            .error()
            .message.find("asked to throw") != std::string::npos);
  // The node keeps working afterwards.
  CHECK(ok(rt->call("test.write_then", {{"n", 2}})) == 2);
  CHECK(rt->current()->table("t")->count() == 7);
}

TEST_CASE("a failing procedure does not fail the others committed in the same batch",
          "[procedures]") {
  auto rt = start_runtime(with_procs());
  make_table(*rt, "t");
  std::vector<std::promise<Result<json>>> ps(40);
  for (int i = 0; i < 40; ++i)
    rt->call_async("test.write_then", {{"n", 10}, {"end", i % 4 == 1 ? "fail" : "ok"}},
                   [&ps, i](Result<json> r) { ps[i].set_value(std::move(r)); });
  int good = 0;
  for (int i = 0; i < 40; ++i) {
    auto r = ps[i].get_future().get();
    if (i % 4 == 1) {
      CHECK(code_of(r) == Errc::procedure_failed);
    } else {
      CHECK(ok(r) == 10);
      ++good;
    }
  }
  CHECK(rt->current()->table("t")->count() == static_cast<std::uint64_t>(good * 10));
}

TEST_CASE("procedures may be ops of db.transaction, and its failure undoes every op",
          "[procedures]") {
  auto rt = start_runtime(with_procs());
  make_table(*rt, "t");
  json ops = {{{"method", "db.insert"}, {"params", {{"table", "t"}, {"values", {{"v", 1}}}}}},
              {{"method", "test.write_then"}, {"params", {{"n", 4}}}}};
  CHECK(ok(rt->call("db.transaction", {{"ops", ops}})) == json::array({{{"id", 1}, {"v", 1}}, 4}));
  ops.push_back({{"method", "test.write_then"}, {"params", {{"n", 4}, {"end", "fail"}}}});
  auto r = rt->call("db.transaction", {{"ops", ops}});
  CHECK(code_of(r) == Errc::procedure_failed);
  CHECK(rt->current()->table("t")->count() == 5);
}

namespace {
// Procedures that run away: `test.spin` reads and updates one record until stopped (a safety
// bound of 60 s keeps a broken limit from hanging the test), `test.hog` inserts until stopped,
// `test.spin_parallel` runs parallel updates until stopped.
RuntimeConfig with_runaways(std::uint64_t timeout_ms, std::uint64_t max_write_bytes) {
  RuntimeConfig cfg = no_ticks(2);
  cfg.procedure_timeout_ms = timeout_ms;
  cfg.procedure_max_write_bytes = max_write_bytes;
  cfg.register_procedures = [](Registry& reg) -> Status {
    TICKDB_TRY(reg.add(procedure("test.spin", [](CallContext& ctx, const json&) -> Result<json> {
      auto tx = ctx.txn();
      if (!tx) return tx.error();
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      for (std::int64_t i = 0; std::chrono::steady_clock::now() < give_up; ++i) {
        if (!ctx.get("t", 1)) return make_error(Errc::not_found, "record 1 vanished");
        if (auto s = update_json(**tx, "t", 1, {{"v", i}}); !s) return s.error();
      }
      return json("never stopped");
    })));
    TICKDB_TRY(reg.add(procedure("test.hog", [](CallContext& ctx, const json&) -> Result<json> {
      auto tx = ctx.txn();
      if (!tx) return tx.error();
      for (std::int64_t i = 0; i < 100'000'000; ++i)
        if (auto id = insert_json(**tx, "t", {{"v", i}}); !id) return id.error();
      return json("never stopped");
    })));
    return reg.add(
        procedure("test.spin_parallel", [](CallContext& ctx, const json&) -> Result<json> {
          const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
          while (std::chrono::steady_clock::now() < give_up)
            TICKDB_TRY(ctx.parallel_update("t", [](std::byte*, std::uint64_t, UpdateScope&) {}));
          return json("never stopped");
        }));
  };
  return cfg;
}
}  // namespace

TEST_CASE("a procedure past procedures.timeout_ms is stopped and rolled back, the node goes on",
          "[procedures]") {
  auto rt = start_runtime(with_runaways(200, 0));
  make_table(*rt, "t");
  for (int i = 0; i < 3000; ++i)
    ok(rt->call("db.insert", {{"table", "t"}, {"values", {{"v", 7}}}}));
  const auto before = rt->current();
  for (const char* name : {"test.spin", "test.spin_parallel"}) {
    INFO(name);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = rt->call(name, json::object());
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.code() == Errc::procedure_failed);
    CHECK_THAT(r.message(), Catch::Matchers::Contains("resource_exhausted") &&
                                Catch::Matchers::Contains("procedures.timeout_ms (200 ms)") &&
                                Catch::Matchers::Contains(name));
    CHECK(took >= std::chrono::milliseconds(200));
    CHECK(took < std::chrono::seconds(5));
    // Nothing of it committed.
    CHECK(rt->current() == before);
  }
  CHECK(ok(rt->call("db.get", {{"table", "t"}, {"id", 1}}))["v"] == 7);
  // Built-ins have no such limit, and the executor takes the next call at once.
  ok(rt->call("db.update", {{"table", "t"}, {"id", 1}, {"values", {{"v", 8}}}}));
  CHECK(ok(rt->call("db.get", {{"table", "t"}, {"id", 1}}))["v"] == 8);
}

TEST_CASE("a procedure that would write past procedures.max_write_bytes is refused and rolled back",
          "[procedures]") {
  auto rt = start_runtime(with_runaways(0, 1 << 20));
  make_table(*rt, "t");
  ok(rt->call("db.insert", {{"table", "t"}, {"values", {{"v", 7}}}}));
  const auto before = rt->current();
  auto r = rt->call("test.hog", json::object());
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.code() == Errc::procedure_failed);
  CHECK_THAT(r.message(),
             Catch::Matchers::Contains("resource_exhausted") &&
                 Catch::Matchers::Contains("procedures.max_write_bytes (1048576 bytes)"));
  CHECK(rt->current() == before);
  CHECK(rt->current()->table("t")->count() == 1);
  // Inside db.transaction the procedure's failure undoes the other ops too.
  auto tx =
      rt->call("db.transaction",
               {{"ops",
                 {{{"method", "db.insert"}, {"params", {{"table", "t"}, {"values", {{"v", 1}}}}}},
                  {{"method", "test.hog"}, {"params", json::object()}}}}});
  CHECK(code_of(tx) == Errc::procedure_failed);
  CHECK(rt->current()->table("t")->count() == 1);
}
