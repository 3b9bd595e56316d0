// Table schemas: names, fields, offsets, the reserved id, defaults.
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;

TEST_CASE("a schema lays its fields out back to back", "[schema][cache]") {
  TypeRegistry reg;
  REQUIRE(reg.create("vec3", {{"x", "f32"}, {"y", "f32"}, {"z", "f32"}}).is_ok());
  auto s = TableSchema::build("players", {{"hp", "i32"}, {"pos", "vec3"}, {"name", "str", 16}}, reg);
  REQUIRE(s.is_ok());
  CHECK((*s)->record_size() == 32);  // the API.md example
  CHECK((*s)->fields()[0].offset == 0);
  CHECK((*s)->fields()[1].offset == 4);
  CHECK((*s)->fields()[2].offset == 16);
  CHECK((*s)->index_of("name").value() == 2);
  CHECK((*s)->index_of("nope").code() == Errc::not_found);
}

TEST_CASE("schemas refuse bad names, duplicates and the reserved id", "[schema]") {
  TypeRegistry reg;
  CHECK(TableSchema::build("1bad", {}, reg).code() == Errc::invalid_argument);
  CHECK(TableSchema::build(std::string(64, 't'), {}, reg).code() == Errc::invalid_argument);
  CHECK(TableSchema::build("t", {{"id", "u64"}}, reg).code() == Errc::invalid_argument);
  CHECK(TableSchema::build("t", {{"a", "i32"}, {"a", "i32"}}, reg).code() == Errc::invalid_argument);
  CHECK(TableSchema::build("t", {{"a-b", "i32"}}, reg).code() == Errc::invalid_argument);
  CHECK(TableSchema::build("t", {{"a", "vec9"}}, reg).code() == Errc::not_found);
  CHECK(TableSchema::build("t", {{"a", "str", 0}}, reg).code() == Errc::invalid_argument);
  CHECK(TableSchema::build("t", {{"a", "str", 5000}}, reg).code() == Errc::invalid_argument);
  // a record is at most 1 MiB
  std::vector<FieldSpec> big;
  for (int i = 0; i < 257; ++i) big.push_back({std::string("s").append(std::to_string(i)), "str", 4096});
  CHECK(TableSchema::build("t", big, reg).code() == Errc::invalid_argument);
  auto empty = TableSchema::build("t", {}, reg);
  REQUIRE(empty.is_ok());
  CHECK((*empty)->record_size() == 0);
}

TEST_CASE("defaults fill the default record, composite defaults included", "[schema]") {
  TypeRegistry reg;
  std::vector<std::byte> three(4);
  store<float>(three.data(), 3.0f);
  REQUIRE(reg.create("v2", {{"x", "f32", 0, three}, {"y", "f32"}}).is_ok());
  std::vector<std::byte> hp(4);
  store<std::int32_t>(hp.data(), 100);
  auto s = TableSchema::build("t", {{"hp", "i32", 0, hp}, {"v", "v2"}}, reg);
  REQUIRE(s.is_ok());
  auto d = (*s)->default_record();
  CHECK(load<std::int32_t>(d.data()) == 100);
  CHECK(load<float>(d.data() + 4) == 3.0f);
  CHECK(load<float>(d.data() + 8) == 0.0f);
  // a default of the wrong size is refused
  CHECK(TableSchema::build("t", {{"hp", "i64", 0, hp}}, reg).code() == Errc::invalid_argument);
}

TEST_CASE("tables are created once and dropped once", "[schema][catalog]") {
  auto db = things_db();
  Transaction t(db);
  CHECK(t.create_table("things", {}).code() == Errc::already_exists);
  CHECK(t.create_table("bad name", {}).code() == Errc::invalid_argument);
  CHECK(t.drop_table("nope").code() == Errc::not_found);
  ok(t.drop_table("things"));
  CHECK(t.drop_table("things").code() == Errc::not_found);
  ok(t.create_table("things", {{"a", "u8"}}));
  auto v = t.commit().value();
  CHECK(v->table("things")->record_size() == 1);
  CHECK(db->table("things")->record_size() == 32);
}
