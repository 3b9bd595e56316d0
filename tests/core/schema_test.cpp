// Table schemas: names, fields, offsets, the reserved id, defaults.
#include "test_db.h"
#include <limits>

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

TEST_CASE("defaults given as bytes obey the rules values obey", "[schema][catalog][bounds]") {
  auto db = things_db(1);
  Transaction t(db);
  CHECK(t.add_field("things", {"flag", "bool", 0, {std::byte{7}}}).code() == Errc::invalid_argument);
  CHECK(t.add_field("things", {"name", "str", 2, {std::byte{0xff}, std::byte{0}}}).code() == Errc::invalid_argument);
  CHECK(t.add_field("things", {"name", "str", 2, {std::byte{0}, std::byte{'a'}}}).code() == Errc::invalid_argument);
  std::vector<std::byte> nan(4);
  store<float>(nan.data(), std::numeric_limits<float>::quiet_NaN());
  CHECK(t.add_field("things", {"f", "f32", 0, nan}).code() == Errc::invalid_argument);
  CHECK(t.create_type("v1", {{"f", "f32", 0, nan}}).code() == Errc::invalid_argument);
  CHECK(t.create_table("x", {{"flag", "bool", 0, {std::byte{2}}}}).code() == Errc::invalid_argument);
  CHECK_FALSE(t.changed());
  // and a valid byte default is applied to the existing record
  ok(t.add_field("things", {"flag", "bool", 0, {std::byte{1}}}));
  CHECK(t.get("things", 1)->get<bool>("flag").value() == true);
}

TEST_CASE("an empty string can be set", "[types][bounds]") {
  auto db = things_db();
  auto s = TableSchema::build("t", {{"name", "str", 8}}, TypeRegistry{}).value();
  RecordBuffer b(*s);
  ok(b.set_str("name", "abc"));
  ok(b.set_str("name", std::string_view{}));
  CHECK(RecordView(b.bytes().data(), 1, s.get()).get<std::string_view>("name").value().empty());
}
