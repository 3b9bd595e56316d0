// A procedure module for tickdb-bench-subscriptions: `churn {fraction}` changes that fraction
// of the live records of table `bench` (ids picked at random, field `hp` += 1), in one
// transaction. In the tick loop it makes "1% of the records changed per tick". Nothing to
// do (0 changed) while the table is not there.
#include <cmath>
#include <cstring>
#include <vector>

#include "actors/module_api.h"
#include "core/transaction.h"

namespace {

using namespace tickdb;

std::uint64_t next_random(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Result<json> churn(CallContext& ctx, const json& p) {
  double fraction = 0.01;
  if (p.contains("fraction")) {
    if (!p["fraction"].is_number() || p["fraction"].get<double>() < 0 ||
        p["fraction"].get<double>() > 1)
      return make_error(Errc::invalid_argument, "churn: 'fraction' must be a number in 0..1");
    fraction = p["fraction"].get<double>();
  }
  auto t = ctx.find_table("bench");
  if (!t) return json{{"changed", 0}};
  const TableVersion& tv = **t;
  auto hp = tv.schema()->locate("hp");
  if (!hp || hp->type.kind != Kind::I32)
    return make_error(Errc::invalid_argument, "churn: table 'bench' needs an i32 field 'hp'");
  auto txn = ctx.txn();
  if (!txn) return txn.error();
  const auto n =
      static_cast<std::uint64_t>(std::llround(static_cast<double>(tv.count()) * fraction));
  const std::uint64_t ids = tv.next_id() > 1 ? tv.next_id() - 1 : 0;
  static thread_local std::uint64_t seed = 0x5eed;
  std::vector<std::byte> rec(tv.record_size());
  std::uint64_t changed = 0;
  for (std::uint64_t i = 0; i < n && ids > 0; ++i) {
    const std::uint64_t id = 1 + next_random(seed) % ids;
    auto r = tv.get(id);
    if (!r) continue;
    std::memcpy(rec.data(), r->data(), rec.size());
    std::int32_t v;
    std::memcpy(&v, rec.data() + hp->offset, sizeof v);
    v = v == 2147483647 ? 0 : v + 1;
    std::memcpy(rec.data() + hp->offset, &v, sizeof v);
    TICKDB_TRY((*txn)->update("bench", id, rec));
    ++changed;
  }
  return json{{"changed", changed}};
}

Status setup(ModuleContext& m) {
  Callable c;
  c.name = "churn";
  c.description = "Changes a fraction of table bench's records (hp += 1 at random ids).";
  c.params = {{"fraction", "0..1 (0.01)"}};
  c.route = Route::serial;
  c.fn = churn;
  return m.registry().add(std::move(c));
}

}  // namespace

TICKDB_MODULE(setup)
