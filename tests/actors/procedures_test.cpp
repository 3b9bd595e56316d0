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
