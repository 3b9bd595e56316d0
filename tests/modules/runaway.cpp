// A module of procedures that run away on purpose (tests/e2e/procedure_limits_test.py): each
// stops by itself after a bound far above the limits the test sets, so a limit that does not
// work fails the test instead of taking the machine.
#include <chrono>
#include <vector>

#include "actors/module_api.h"
#include "core/json_codec.h"

namespace {

using tickdb::CallContext;
using tickdb::json;
using tickdb::Result;

// Reads record 1 of `t` for up to 60 s, rewriting it now and then.
Result<json> spin(CallContext& ctx, const json&) {
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (std::int64_t i = 0; std::chrono::steady_clock::now() < give_up; ++i) {
    if (!ctx.get("t", 1)) return tickdb::make_error(tickdb::Errc::not_found, "no record 1");
    if (i % 4096 == 0)
      if (auto s = tickdb::update_json(**tx, "t", 1, {{"v", i}}); !s) return s.error();
  }
  return json("never stopped");
}

// Grows a vector of 1 MiB blocks up to 1 GiB.
Result<json> alloc_hog(CallContext&, const json&) {
  std::vector<std::vector<char>> blocks;
  for (int i = 0; i < 1024; ++i) blocks.emplace_back(1 << 20, static_cast<char>(i));
  return json("never stopped");
}

// Inserts into `t` up to 10 million records.
Result<json> write_hog(CallContext& ctx, const json&) {
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  for (std::int64_t i = 0; i < 10'000'000; ++i)
    if (auto id = tickdb::insert_json(**tx, "t", {{"v", i}}); !id) return id.error();
  return json("never stopped");
}

tickdb::Callable proc(const char* name, tickdb::CallFn fn) {
  tickdb::Callable c;
  c.name = name;
  c.description = "runs away on purpose";
  c.fn = std::move(fn);
  return c;
}

tickdb::Status setup(tickdb::ModuleContext& m) {
  TICKDB_TRY(m.registry().add(proc("test.spin", spin)));
  TICKDB_TRY(m.registry().add(proc("test.alloc_hog", alloc_hog)));
  return m.registry().add(proc("test.write_hog", write_hog));
}

}  // namespace

TICKDB_MODULE(setup)
