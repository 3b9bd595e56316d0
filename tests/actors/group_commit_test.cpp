// Table actors: writes queued at one table's actor are committed together, each sender gets
// its own answer, and writes to different tables do not wait for each other.
#include <atomic>
#include <future>
#include <map>
#include <set>

#include "runtime_util.h"

using namespace tickdb;
using namespace tickdb::test;

namespace {
// Sends `n` calls without waiting and collects every answer.
std::vector<Result<json>> send_all(Runtime& rt, const std::string& method,
                                   const std::vector<json>& params) {
  std::vector<std::promise<Result<json>>> ps(params.size());
  std::vector<std::future<Result<json>>> fs;
  for (auto& p : ps) fs.push_back(p.get_future());
  for (std::size_t i = 0; i < params.size(); ++i)
    rt.call_async(method, params[i], [&ps, i](Result<json> r) { ps[i].set_value(std::move(r)); });
  std::vector<Result<json>> out;
  for (auto& f : fs) out.push_back(f.get());
  return out;
}
}  // namespace

TEST_CASE("queued writes to one table are published as one version each batch", "[group-commit]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t");
  auto before = rt->commit_stats();
  std::vector<json> params;
  for (int i = 0; i < 2000; ++i) params.push_back({{"table", "t"}, {"values", {{"v", i}}}});
  auto res = send_all(*rt, "db.insert", params);
  std::set<std::uint64_t> ids;
  for (auto& r : res) ids.insert(ok(r)["id"].get<std::uint64_t>());
  CHECK(ids.size() == 2000);
  CHECK(*ids.begin() == 1);
  CHECK(*ids.rbegin() == 2000);
  auto after = rt->commit_stats();
  INFO("versions published for 2000 inserts: " << after.versions - before.versions);
  CHECK(after.calls - before.calls == 2000);
  CHECK(after.versions - before.versions < 2000);
  CHECK(after.versions - before.versions >= 1);
  CHECK(rt->current()->table("t")->count() == 2000);
}

TEST_CASE("one bad write in a batch fails alone", "[group-commit]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t", {{{"name", "v"}, {"type", "i8"}}});
  std::vector<json> params;
  for (int i = 0; i < 500; ++i)
    params.push_back(
        {{"table", "t"},
         {"values", {{"v", i % 10 == 3 ? 1000 : i % 100}}}});  // 1000 is out of range for i8
  auto res = send_all(*rt, "db.insert", params);
  int good = 0;
  for (int i = 0; i < 500; ++i) {
    if (i % 10 == 3) {
      CHECK(code_of(res[i]) == Errc::invalid_argument);
    } else {
      CHECK(ok(res[i])["v"] == i % 100);
      ++good;
    }
  }
  auto t = rt->current()->table("t");
  CHECK(t->count() == static_cast<std::uint64_t>(good));
  // Every stored record is one of the good ones: the failed ones left nothing behind.
  for (RecordView r : *t)
    CHECK(r.get<std::int8_t>("v").value() != static_cast<std::int8_t>(1000 % 256));
}

TEST_CASE("updates and deletes in one batch each get their own answer", "[group-commit]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t");
  for (int i = 0; i < 10; ++i) ok(rt->call("db.insert", {{"table", "t"}, {"values", {{"v", i}}}}));
  std::vector<std::promise<Result<json>>> ps(4);
  rt->call_async("db.update", {{"table", "t"}, {"id", 1}, {"values", {{"v", 100}}}},
                 [&](Result<json> r) { ps[0].set_value(r); });
  rt->call_async("db.delete", {{"table", "t"}, {"id", 2}},
                 [&](Result<json> r) { ps[1].set_value(r); });
  rt->call_async("db.delete", {{"table", "t"}, {"id", 2}},
                 [&](Result<json> r) { ps[2].set_value(r); });
  rt->call_async("db.update", {{"table", "t"}, {"id", 99}, {"values", {{"v", 1}}}},
                 [&](Result<json> r) { ps[3].set_value(r); });
  CHECK(ok(ps[0].get_future().get())["v"] == 100);
  CHECK(ok(ps[1].get_future().get()) == true);
  CHECK(code_of(ps[2].get_future().get()) ==
        Errc::not_found);  // the second delete of the same record
  CHECK(code_of(ps[3].get_future().get()) == Errc::not_found);
  CHECK(rt->current()->table("t")->count() == 9);
}

TEST_CASE("writes to different tables do not wait for each other", "[group-commit]") {
  // A built-in-like table write holds table `slow`'s actor until the test releases it (at most
  // 30 s); writes to table `fast` must all be answered meanwhile. No timing: the gate opens only
  // after the 200 fast inserts are answered, so if they waited on `slow` the gate times out.
  std::atomic<bool> slow_running{false};
  std::atomic<bool> released_in_time{false};
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  RuntimeConfig cfg = no_ticks(2);
  cfg.register_procedures = [&](Registry& reg) {
    Callable c =
        procedure("test.slow_insert", [&](CallContext& ctx, const json& p) -> Result<json> {
          slow_running = true;
          released_in_time = gate.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
          return ctx.registry().find("db.insert")->fn(ctx, p);
        });
    c.route = Route::table;
    c.builtin = true;  // one statement: may batch on a table actor
    return reg.add(std::move(c));
  };
  auto rt = start_runtime(cfg);
  make_table(*rt, "slow");
  make_table(*rt, "fast");
  std::promise<Result<json>> slow;
  rt->call_async("test.slow_insert", {{"table", "slow"}, {"values", {{"v", 1}}}},
                 [&](Result<json> r) { slow.set_value(r); });
  REQUIRE(wait_until([&] { return slow_running.load(); }));
  for (int i = 0; i < 200; ++i)
    ok(rt->call("db.insert", {{"table", "fast"}, {"values", {{"v", i}}}}));
  auto f = slow.get_future();
  CHECK(f.wait_for(std::chrono::seconds(0)) !=
        std::future_status::ready);  // `slow` still held: the fast inserts did not wait on it
  CHECK(rt->current()->table("fast")->count() == 200);
  release.set_value();
  CHECK(ok(f.get())["id"] == 1);
  CHECK(released_in_time.load());  // the gate opened before its 30 s bound
  CHECK(rt->current()->table("slow")->count() == 1);
}

TEST_CASE("concurrent senders each get their own answer", "[group-commit]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t");
  std::vector<std::thread> threads;
  std::vector<std::vector<std::uint64_t>> got(4);
  for (int s = 0; s < 4; ++s)
    threads.emplace_back([&, s] {
      for (int i = 0; i < 500; ++i) {
        auto r = rt->call("db.insert", {{"table", "t"}, {"values", {{"v", s * 1000 + i}}}});
        if (r.is_ok() && r.value()["v"] == s * 1000 + i) got[s].push_back(r.value()["id"]);
      }
    });
  for (auto& t : threads) t.join();
  std::set<std::uint64_t> all;
  for (auto& g : got) {
    CHECK(g.size() == 500);
    CHECK(std::is_sorted(g.begin(), g.end()));  // one sender's writes keep their order
    all.insert(g.begin(), g.end());
  }
  CHECK(all.size() == 2000);
}

TEST_CASE("stopping answers every call still queued", "[group-commit]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t");
  std::atomic<int> answered{0}, succeeded{0};
  for (int i = 0; i < 1000; ++i)
    rt->call_async("db.insert", {{"table", "t"}, {"values", {{"v", i}}}}, [&](Result<json> r) {
      if (r.is_ok()) ++succeeded;
      ++answered;
    });
  rt->stop();
  CHECK(answered == 1000);
  CHECK(succeeded == 1000);
  CHECK(code_of(rt->call("db.insert", {{"table", "t"}, {"values", {{"v", 1}}}})) ==
        Errc::node_unavailable);
}

TEST_CASE("a table write that throws half-way fails alone and leaves nothing", "[group-commit]") {
  RuntimeConfig cfg = no_ticks();
  cfg.register_procedures = [](Registry& reg) {
    Callable c =
        procedure("test.insert_then_throw", [](CallContext& ctx, const json& p) -> Result<json> {
          auto r = ctx.registry().find("db.insert")->fn(ctx, p);
          if (r && p["values"]["v"] == 13) throw std::runtime_error("after the write");
          return r;
        });
    c.route = Route::table;
    c.builtin = true;
    return reg.add(std::move(c));
  };
  auto rt = start_runtime(cfg);
  make_table(*rt, "t");
  std::vector<json> params;
  for (int i = 0; i < 40; ++i) params.push_back({{"table", "t"}, {"values", {{"v", i}}}});
  auto res = send_all(*rt, "test.insert_then_throw", params);
  for (int i = 0; i < 40; ++i) {
    if (i == 13) {
      CHECK(code_of(res[i]) == Errc::internal);
      CHECK(res[i].error().message.find("after the write") != std::string::npos);
    } else {
      CHECK(ok(res[i])["v"] == i);
    }
  }
  auto t = rt->current()->table("t");
  CHECK(t->count() == 39);
  for (RecordView r : *t) CHECK(r.get<std::int64_t>("v").value() != 13);
}

TEST_CASE("stopping while other threads keep calling answers every call", "[group-commit]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t");
  std::atomic<bool> go{true};
  std::atomic<std::uint64_t> answered{0}, sent{0}, odd{0};
  std::vector<std::thread> ts;
  for (int k = 0; k < 3; ++k)
    ts.emplace_back([&, k] {
      while (go) {
        ++sent;
        auto r = k == 2 ? rt->call("db.list", {{"table", "t"}, {"limit", 5}})
                        : rt->call(k ? "db.transaction" : "db.insert",
                                   k ? json{{"ops", json::array()}}
                                     : json{{"table", "t"}, {"values", {{"v", 1}}}});
        ++answered;
        if (!r.is_ok() && code_of(r) != Errc::node_unavailable) ++odd;
        if (!r.is_ok()) break;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  rt->stop();
  go = false;
  for (auto& t : ts) t.join();
  CHECK(answered == sent);
  CHECK(odd == 0);
}

TEST_CASE("a write that duplicates a unique key fails alone in its batch", "[group-commit]") {
  auto rt = start_runtime(no_ticks());
  make_table(*rt, "t", {{{"name", "k"}, {"type", "u32"}}});
  ok(rt->call(
      "db.create_index",
      {{"table", "t"}, {"name", "t_k"}, {"fields", {"k"}}, {"type", "hash"}, {"unique", true}}));
  // 600 inserts sent at once (batched at the table's actor): every key twice but 0..199.
  std::vector<json> params;
  for (int i = 0; i < 600; ++i)
    params.push_back({{"table", "t"}, {"values", {{"k", i < 400 ? i % 200 : i}}}});
  auto res = send_all(*rt, "db.insert", params);
  std::map<int, int> wins;
  int dup = 0;
  for (int i = 0; i < 600; ++i) {
    const int k = i < 400 ? i % 200 : i;
    if (res[i].is_ok()) {
      ++wins[k];
    } else {
      INFO(describe(res[i]));
      CHECK(code_of(res[i]) == Errc::unique_violation);
      CHECK(k < 200);
      ++dup;
    }
  }
  CHECK(dup == 200);
  CHECK(wins.size() == 400);
  for (const auto& [k, n] : wins) CHECK(n == 1);
  CHECK(rt->current()->table("t")->count() == 400);
}
