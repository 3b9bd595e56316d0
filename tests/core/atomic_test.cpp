// Atomic transactions: many tables, one commit, nothing of a failure left behind.
#include <stdexcept>

#include "core/version_cell.h"
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;

namespace {
std::shared_ptr<const DbVersion> bank() {
  return commit(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("accounts", {{"balance", "i64"}}));
    ok(t.create_table("log", {{"amount", "i64"}, {"account", "u64"}}));
    ok(t.create_relation("log", "account", "accounts", OnDelete::cascade).status());
    for (int i = 0; i < 10; ++i) {
      RecordBuffer r(*t.table("accounts")->schema());
      ok(r.set<std::int64_t>("balance", 100));
      ok(t.insert("accounts", r.bytes()).status());
    }
  });
}
Status add(Transaction& t, std::uint64_t account, std::int64_t amount) {
  auto cur = t.get("accounts", account);
  if (!cur) return make_error(Errc::not_found, "no account");
  RecordBuffer r(*cur);
  std::int64_t b = cur->get<std::int64_t>("balance").value() + amount;
  if (b < 0) return make_error(Errc::conflict, "overdrawn");
  TICKDB_TRY(r.set<std::int64_t>("balance", b));
  TICKDB_TRY(t.update("accounts", account, r.bytes()));
  RecordBuffer l(*t.table("log")->schema());
  TICKDB_TRY(l.set<std::int64_t>("amount", amount));
  TICKDB_TRY(l.set<std::uint64_t>("account", account));
  return t.insert("log", l.bytes()).status();
}
std::int64_t total(const DbVersion& db) {
  std::int64_t s = 0;
  for (RecordView r : *db.table("accounts")) s += r.get<std::int64_t>("balance").value();
  return s;
}
}  // namespace

TEST_CASE("a transaction over several tables publishes all of it in one swap", "[atomic]") {
  VersionCell<DbVersion> cell(bank());
  auto base = cell.load();
  Transaction t(base);
  ok(add(t, 1, -30));
  ok(add(t, 2, +30));
  ok(t.create_table("audit", {{"n", "u32"}}));
  ok(t.erase("accounts", 10));  // cascades into log (nothing there yet)
  // nothing is visible before commit + publish
  CHECK(cell.load()->table("log")->count() == 0);
  CHECK(cell.load()->table("audit") == nullptr);
  auto v = t.commit();
  REQUIRE(v.is_ok());
  CHECK(cell.load()->table("log")->count() == 0);
  REQUIRE(cell.publish_if(base.get(), *v));
  auto now = cell.load();
  CHECK(now->version() == base->version() + 1);
  CHECK(now->table("log")->count() == 2);
  CHECK(now->table("audit") != nullptr);
  CHECK(now->table("accounts")->count() == 9);
  CHECK(now->table("accounts")->get(1)->get<std::int64_t>("balance").value() == 70);
  CHECK(total(*now) == 900);
  // the base is untouched
  CHECK(total(*base) == 1000);
  CHECK(base->table("log")->count() == 0);
}

TEST_CASE("a failed operation leaves no trace and the transaction goes on", "[atomic]") {
  auto base = bank();
  Transaction t(base);
  ok(add(t, 1, -50));
  // this insert would break the relation: it is refused and changes nothing
  RecordBuffer l(*t.table("log")->schema());
  ok(l.set<std::uint64_t>("account", 999));
  CHECK(t.insert("log", l.bytes()).code() == Errc::foreign_key_violation);
  CHECK(t.table("log")->count() == 1);
  CHECK(t.update("accounts", 999, l.bytes()).code() == Errc::not_found);
  CHECK(t.create_table("log", {}).code() == Errc::already_exists);
  auto v = t.commit().value();
  CHECK(total(*v) == 950);
  CHECK(v->table("log")->count() == 1);
  CHECK(t.insert("log", l.bytes()).code() == Errc::internal);  // committed: closed
}

TEST_CASE("a transaction that fails half-way is discarded whole", "[atomic]") {
  VersionCell<DbVersion> cell(bank());
  auto base = cell.load();
  auto transfer = [&](std::int64_t amount) -> Status {
    Transaction t(cell.load());
    TICKDB_TRY(add(t, 3, -amount));   // fails when overdrawn...
    TICKDB_TRY(add(t, 4, +amount));
    ok(t.create_table("later", {}));
    if (amount == 13) throw std::runtime_error("a procedure threw half-way");
    auto v = t.commit();
    if (!v) return v.status();
    REQUIRE(cell.publish_if(t.base().get(), *v));
    return {};
  };
  CHECK(transfer(500).code() == Errc::conflict);
  CHECK(cell.load() == base);
  CHECK_THROWS(transfer(13));
  CHECK(cell.load() == base);
  CHECK(cell.load()->table("later") == nullptr);
  CHECK(total(*cell.load()) == 1000);
  ok(transfer(20));
  CHECK(cell.load()->table("accounts")->get(3)->get<std::int64_t>("balance").value() == 80);
  CHECK(cell.load()->table("accounts")->get(4)->get<std::int64_t>("balance").value() == 120);
}

TEST_CASE("publish_if refuses a commit built on a version that is no longer current", "[atomic]") {
  VersionCell<DbVersion> cell(bank());
  auto base = cell.load();
  Transaction a(base), b(base);
  ok(add(a, 1, 1));
  ok(add(b, 1, 2));
  auto va = a.commit().value();
  auto vb = b.commit().value();
  CHECK(cell.publish_if(base.get(), va));
  CHECK_FALSE(cell.publish_if(base.get(), vb));
  CHECK(cell.load()->table("accounts")->get(1)->get<std::int64_t>("balance").value() == 101);
}

TEST_CASE("a transaction that changes nothing commits to its base", "[atomic]") {
  auto base = bank();
  Transaction t(base);
  CHECK(t.drop_table("nope").code() == Errc::not_found);
  CHECK(t.commit().value() == base);
}
