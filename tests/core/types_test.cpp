// Field types, sizes, names and the composite type registry.
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;

TEST_CASE("every built-in type has the size API.md gives", "[types]") {
  struct Case { const char* name; Kind kind; std::uint32_t size; };
  const Case cases[] = {{"bool", Kind::Bool, 1}, {"i8", Kind::I8, 1},   {"i16", Kind::I16, 2},
                        {"i32", Kind::I32, 4},   {"i64", Kind::I64, 8}, {"u8", Kind::U8, 1},
                        {"u16", Kind::U16, 2},   {"u32", Kind::U32, 4}, {"u64", Kind::U64, 8},
                        {"f32", Kind::F32, 4},   {"f64", Kind::F64, 8}};
  TypeRegistry reg;
  for (const auto& c : cases) {
    auto t = reg.resolve(c.name, 0);
    REQUIRE(t.is_ok());
    CHECK(t->kind == c.kind);
    CHECK(t->size == c.size);
    CHECK(t->name() == c.name);
    CHECK(kind_name(c.kind) == c.name);
  }
}

TEST_CASE("str takes a size from 1 to 4096 and nothing else does", "[types]") {
  TypeRegistry reg;
  CHECK(reg.resolve("str", 1)->size == 1);
  CHECK(reg.resolve("str", 4096)->size == 4096);
  CHECK(reg.resolve("str", 0).code() == Errc::invalid_argument);
  CHECK(reg.resolve("str", 4097).code() == Errc::invalid_argument);
  CHECK(reg.resolve("i32", 4).code() == Errc::invalid_argument);
  CHECK(reg.resolve("nosuch", 0).code() == Errc::not_found);
}

TEST_CASE("names follow ^[A-Za-z_][A-Za-z0-9_]{0,62}$", "[types][schema]") {
  CHECK(is_valid_name("a"));
  CHECK(is_valid_name("_x9"));
  CHECK(is_valid_name(std::string(63, 'a')));
  CHECK_FALSE(is_valid_name(std::string(64, 'a')));
  CHECK_FALSE(is_valid_name(""));
  CHECK_FALSE(is_valid_name("9a"));
  CHECK_FALSE(is_valid_name("a-b"));
  CHECK_FALSE(is_valid_name("a b"));
  CHECK_FALSE(is_valid_name("é"));
  CHECK(check_name("a.b", "table name").code() == Errc::invalid_argument);
}

TEST_CASE("composite types are laid out packed and may nest", "[types][composite]") {
  TypeRegistry reg;
  auto vec3 = reg.create("vec3", {{"x", "f32"}, {"y", "f32"}, {"z", "f32"}});
  REQUIRE(vec3.is_ok());
  CHECK((*vec3)->size == 12);
  CHECK((*vec3)->fields[2].offset == 8);
  auto xf = reg.create("xform", {{"pos", "vec3"}, {"flag", "bool"}, {"rot", "vec3"}, {"tag", "str", 5}});
  REQUIRE(xf.is_ok());
  CHECK((*xf)->size == 12 + 1 + 12 + 5);
  CHECK((*xf)->fields[2].offset == 13);
  CHECK((*xf)->fields[3].offset == 25);
  auto t = reg.resolve("xform", 0);
  REQUIRE(t.is_ok());
  CHECK(t->kind == Kind::Composite);
  CHECK(type_uses(*t, "vec3"));
  CHECK(reg.users_of("vec3") == std::vector<std::string>{"xform"});
}

TEST_CASE("composite registry refuses bad definitions", "[types][composite]") {
  TypeRegistry reg;
  REQUIRE(reg.create("vec3", {{"x", "f32"}}).is_ok());
  CHECK(reg.create("vec3", {{"x", "f32"}}).code() == Errc::already_exists);
  CHECK(reg.create("i32", {{"x", "f32"}}).code() == Errc::already_exists);
  CHECK(reg.create("bad name", {{"x", "f32"}}).code() == Errc::invalid_argument);
  CHECK(reg.create("empty", {}).code() == Errc::invalid_argument);
  // No cycles: a type can only use types that exist before it, never itself.
  CHECK(reg.create("node", {{"next", "node"}}).code() == Errc::invalid_argument);
  CHECK(reg.create("pair", {{"a", "nosuch"}}).code() == Errc::not_found);
  CHECK(reg.create("dup", {{"a", "i32"}, {"a", "i64"}}).code() == Errc::invalid_argument);
  CHECK(reg.create("withid", {{"id", "u64"}}).is_ok());  // `id` is reserved in tables only
  CHECK(reg.size() == 2);
}

TEST_CASE("a type cannot be dropped while a type or a table uses it", "[types][composite][catalog]") {
  auto db = things_db();
  {
    Transaction t(db);
    CHECK(t.drop_type("vec3").code() == Errc::conflict);  // table things uses it
    CHECK(t.drop_type("nosuch").code() == Errc::not_found);
  }
  db = commit(db, [](Transaction& t) {
    ok(t.create_type("box", {{"lo", "vec3"}, {"hi", "vec3"}}));
    ok(t.drop_table("things"));
  });
  {
    Transaction t(db);
    CHECK(t.drop_type("vec3").code() == Errc::conflict);  // type box uses it
    ok(t.drop_type("box"));
    ok(t.drop_type("vec3"));
    auto v = t.commit();
    REQUIRE(v.is_ok());
    CHECK((*v)->types().size() == 0);
  }
  CHECK(db->types().size() == 2);  // the old version still has both
}
