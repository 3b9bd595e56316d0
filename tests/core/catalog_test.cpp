// Catalog operations: add and remove fields by re-layout into a new version.
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;

TEST_CASE("adding a field keeps every value and gives the new field its default", "[catalog]") {
  auto db = things_db(3000);
  db = commit(db, [](Transaction& t) { ok(t.erase("things", 5)); });
  auto old = db;
  std::vector<std::byte> dflt(2);
  store<std::int16_t>(dflt.data(), -7);
  db = commit(db, [&](Transaction& t) { ok(t.add_field("things", {"armor", "i16", 0, dflt})); });
  const TableVersion* t = db->table("things");
  CHECK(t->record_size() == 34);
  CHECK(t->schema()->fields().back().name == "armor");
  CHECK(t->schema()->fields().back().offset == 32);
  CHECK(t->count() == 2999);
  CHECK(t->next_id() == 3001);
  auto armor = FieldAccessor<std::int16_t>::resolve(*t->schema(), "armor").value();
  auto hp = FieldAccessor<std::int32_t>::resolve(*t->schema(), "hp").value();
  std::uint64_t n = 0;
  for (RecordView r : *t) {
    REQUIRE(hp.get(r.data()) == static_cast<std::int32_t>(r.id() - 1));
    REQUIRE(armor.get(r.data()) == -7);
    ++n;
  }
  CHECK(n == 2999);
  CHECK_FALSE(t->get(5).has_value());
  // the old version still reads with the old layout
  CHECK(old->table("things")->record_size() == 32);
  CHECK(old->table("things")->get(3000)->get<std::int32_t>("hp").value() == 2999);
  CHECK(old->table("things")->get(3000)->get<std::int16_t>("armor").code() == Errc::not_found);
}

TEST_CASE("removing a field keeps the other fields' values", "[catalog]") {
  auto db = things_db(100);
  db = commit(db, [](Transaction& t) {
    auto s = t.table("things")->schema();
    RecordBuffer r(*t.get("things", 50));
    ok(r.set<std::uint32_t>("tag", 77));
    ok(r.set<float>("pos.y", 2.5f));
    ok(t.update("things", 50, r.bytes()));
  });
  auto old = db;
  db = commit(db, [](Transaction& t) {
    ok(t.remove_field("things", "hp"));
    CHECK(t.remove_field("things", "hp").code() == Errc::not_found);
    CHECK(t.remove_field("nope", "hp").code() == Errc::not_found);
  });
  const TableVersion* t = db->table("things");
  CHECK(t->record_size() == 28);
  CHECK(t->schema()->fields()[0].name == "pos");
  CHECK(t->schema()->fields()[0].offset == 0);
  CHECK(t->get(50)->get<std::uint32_t>("tag").value() == 77);
  CHECK(t->get(50)->get<float>("pos.y").value() == 2.5f);
  CHECK(t->count() == 100);
  CHECK(old->table("things")->get(50)->get<std::int32_t>("hp").value() == 49);
}

TEST_CASE("adding a field refuses duplicates, bad specs and the reserved id", "[catalog][schema]") {
  auto db = things_db(1);
  Transaction t(db);
  CHECK(t.add_field("things", {"hp", "i32"}).code() == Errc::already_exists);
  CHECK(t.add_field("things", {"id", "u64"}).code() == Errc::invalid_argument);
  CHECK(t.add_field("things", {"x", "nosuch"}).code() == Errc::not_found);
  CHECK(t.add_field("things", {"x", "str", 0}).code() == Errc::invalid_argument);
  CHECK(t.add_field("nope", {"x", "i32"}).code() == Errc::not_found);
  CHECK_FALSE(t.changed());
  CHECK(t.table("things")->record_size() == 32);
}

TEST_CASE("a composite field can be added and defaults to its own defaults", "[catalog][composite]") {
  auto db = things_db(2);
  db = commit(db, [](Transaction& t) { ok(t.add_field("things", {"vel", "vec3"})); });
  auto r = *db->table("things")->get(2);
  CHECK(r.get<float>("vel.z").value() == 0.0f);
  CHECK(r.get<std::int32_t>("hp").value() == 1);
}
