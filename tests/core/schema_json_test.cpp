// The catalog as JSON: save_catalog_file / load_catalog_file / catalog_from_json keep types,
// tables, defaults, layouts, relations and id counters exactly, and malformed catalogs are
// clear errors.
#include "test_db.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/json_codec.h"

using namespace tickdb;
using tickdb::test::ok;
using Catch::Matchers::Contains;

namespace {

// A unique file in the temp directory, removed when the guard goes.
struct TempFile {
  std::filesystem::path path;
  TempFile() {
    static std::atomic<int> n{0};
    auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() /
           ("tickdb_schema_json_test_" + std::to_string(::getpid()) + "_" + std::to_string(stamp) +
            "_" + std::to_string(n.fetch_add(1)) + ".json");
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string read() const {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  void write(const std::string& text) const {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
  }
};

FieldSpec spec(const TypeRegistry& types, const json& j) { return ok(field_spec_from_json(j, types)); }

// Inserts a record given as JSON and returns its id.
std::uint64_t put(Transaction& t, const char* table, const json& values) {
  return ok(insert_json(t, table, values));
}

// The catalog under test:
//  types  vec2 {x f32 = 1.5, y f32}; box {lo vec2, hi vec2 = {3,4}, label str(8) = "bx"}
//  tables teams, players (str, defaults incl. composite and str), items, empty (no fields),
//         untouched (never written)
//  relations 1 items.owner -> players cascade, (2 deleted), 3 players.team -> teams set_zero,
//         4 players.mentor -> players restrict
//  counters advanced by inserts and deletes.
std::shared_ptr<const DbVersion> rich_db() {
  Transaction t(DbVersion::empty());
  ok(t.create_type("vec2", {spec(t.types(), {{"name", "x"}, {"type", "f32"}, {"default", 1.5}}),
                            spec(t.types(), {{"name", "y"}, {"type", "f32"}})}));
  ok(t.create_type("box", {spec(t.types(), {{"name", "lo"}, {"type", "vec2"}}),
                           spec(t.types(), {{"name", "hi"}, {"type", "vec2"}, {"default", {{"x", 3}, {"y", 4}}}}),
                           spec(t.types(), {{"name", "label"}, {"type", "str"}, {"size", 8}, {"default", "bx"}})}));
  ok(t.create_table("teams", {spec(t.types(), {{"name", "title"}, {"type", "str"}, {"size", 10}, {"default", "none"}})}));
  ok(t.create_table(
      "players",
      {spec(t.types(), {{"name", "name"}, {"type", "str"}, {"size", 16}, {"default", "anon \"q\" é"}}),
       spec(t.types(), {{"name", "hp"}, {"type", "i32"}, {"default", 100}}),
       spec(t.types(), {{"name", "pos"}, {"type", "vec2"}, {"default", {{"x", 0.25}, {"y", -2}}}}),
       spec(t.types(), {{"name", "bbox"}, {"type", "box"}}),
       spec(t.types(), {{"name", "team"}, {"type", "u64"}}),
       spec(t.types(), {{"name", "mentor"}, {"type", "u64"}}),
       spec(t.types(), {{"name", "score"}, {"type", "f64"}, {"default", 2.5}}),
       spec(t.types(), {{"name", "big"}, {"type", "u64"}, {"default", 18446744073709551615ull}}),
       spec(t.types(), {{"name", "alive"}, {"type", "bool"}, {"default", true}})}));
  ok(t.create_table("items", {spec(t.types(), {{"name", "owner"}, {"type", "u64"}}),
                              spec(t.types(), {{"name", "weight"}, {"type", "f32"}, {"default", 0.1}})}));
  ok(t.create_table("empty", {}));
  ok(t.create_table("untouched", {{"n", "i8"}}));

  ok(t.create_relation("items", "owner", "players", OnDelete::cascade));           // 1
  auto tmp = ok(t.create_relation("players", "mentor", "teams", OnDelete::cascade));  // 2
  ok(t.delete_relation(tmp.id));
  ok(t.create_relation("players", "team", "teams", OnDelete::set_zero));           // 3
  ok(t.create_relation("players", "mentor", "players", OnDelete::restrict));       // 4

  for (int i = 0; i < 3; ++i) put(t, "teams", json::object());    // 1..3
  ok(t.erase("teams", 3));                                         // next_id 4
  for (int i = 0; i < 5; ++i) put(t, "players", {{"team", 1}});    // 1..5
  ok(t.erase("players", 5));
  ok(t.erase("players", 2));                                       // next_id 6
  REQUIRE(put(t, "items", {{"id", 10}, {"owner", 1}}) == 10);
  ok(t.erase("items", 10));                                        // next_id 11, empty
  put(t, "empty", json::object());
  put(t, "empty", json::object());                                 // next_id 3
  return ok(t.commit());
}

void check_same_field(const Field& a, const Field& b) {
  INFO("field " << a.name);
  CHECK(a.name == b.name);
  CHECK(a.type.name() == b.type.name());
  CHECK(a.type.kind == b.type.kind);
  CHECK(a.type.size == b.type.size);
  CHECK(a.offset == b.offset);
  CHECK(a.default_value == b.default_value);
}

void check_same_relations(const RelationMap& a, const RelationMap& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [id, r] : a) {
    INFO("relation " << id);
    REQUIRE(b.count(id) == 1);
    const Relation& s = b.at(id);
    CHECK(s.id == id);
    CHECK(r.id == id);
    CHECK(s.from_table == r.from_table);
    CHECK(s.from_field == r.from_field);
    CHECK(s.to_table == r.to_table);
    CHECK(s.on_delete == r.on_delete);
  }
}

// The table's entry in a catalog JSON.
json& table_j(json& cat, const std::string& name) {
  for (auto& t : cat["tables"])
    if (t["name"] == name) return t;
  FAIL("no table " << name << " in the catalog");
  throw;  // unreachable
}
json& type_j(json& cat, const std::string& name) {
  for (auto& t : cat["types"])
    if (t["name"] == name) return t;
  FAIL("no type " << name << " in the catalog");
  throw;  // unreachable
}
json& field_j(json& table, const std::string& name) {
  for (auto& f : table["fields"])
    if (f["name"] == name) return f;
  FAIL("no field " << name);
  throw;  // unreachable
}

// catalog_from_json must refuse `j` with invalid_argument and a message containing `word`.
void expect_invalid(const json& j, const std::string& word) {
  auto r = catalog_from_json(j);
  REQUIRE_FALSE(r.is_ok());
  INFO("message: " << r.message());
  CHECK(r.code() == Errc::invalid_argument);
  CHECK_THAT(r.message(), Contains(word));
}

}  // namespace

TEST_CASE("schema-json: a saved catalog loads back identical", "[schema-json]") {
  auto db = rich_db();
  REQUIRE(db->tables().size() == 5);
  REQUIRE(db->relations().size() == 3);
  REQUIRE(db->next_relation_id() == 5);
  REQUIRE(db->table("players")->next_id() == 6);
  REQUIRE(db->table("empty")->record_size() == 0);

  TempFile file;
  ok(save_catalog_file(*db, file.str()));
  REQUIRE(std::filesystem::exists(file.path));
  auto loaded = ok(load_catalog_file(file.str()));

  // The JSON form is the same.
  CHECK(catalog_to_json(*loaded) == catalog_to_json(*db));
  CHECK(loaded->version() == db->version());
  CHECK(loaded->next_relation_id() == db->next_relation_id());

  // Types, in the same order, with the same layout and defaults.
  const auto& ta = db->types().all();
  const auto& tb = loaded->types().all();
  REQUIRE(ta.size() == 2);
  REQUIRE(tb.size() == ta.size());
  for (std::size_t i = 0; i < ta.size(); ++i) {
    INFO("type " << ta[i]->name);
    CHECK(tb[i]->name == ta[i]->name);
    CHECK(tb[i]->size == ta[i]->size);
    REQUIRE(tb[i]->fields.size() == ta[i]->fields.size());
    for (std::size_t k = 0; k < ta[i]->fields.size(); ++k) check_same_field(ta[i]->fields[k], tb[i]->fields[k]);
  }
  CHECK(loaded->types().find("box")->size == 8 + 8 + 8);

  // Tables: next_id, record_size, offsets, defaults, default record; and no records.
  REQUIRE(loaded->tables().size() == db->tables().size());
  for (const auto& [name, t] : db->tables()) {
    INFO("table " << name);
    const TableVersion* l = loaded->table(name);
    REQUIRE(l != nullptr);
    CHECK(l->next_id() == t->next_id());
    CHECK(l->record_size() == t->record_size());
    CHECK(l->count() == 0);
    const auto& fa = t->schema()->fields();
    const auto& fb = l->schema()->fields();
    REQUIRE(fb.size() == fa.size());
    for (std::size_t k = 0; k < fa.size(); ++k) check_same_field(fa[k], fb[k]);
    auto da = t->schema()->default_record();
    auto db2 = l->schema()->default_record();
    REQUIRE(da.size() == db2.size());
    CHECK(std::equal(da.begin(), da.end(), db2.begin()));
  }
  CHECK(loaded->table("teams")->next_id() == 4);
  CHECK(loaded->table("players")->next_id() == 6);
  CHECK(loaded->table("items")->next_id() == 11);
  CHECK(loaded->table("empty")->next_id() == 3);
  CHECK(loaded->table("empty")->record_size() == 0);
  CHECK(loaded->table("empty")->schema()->fields().empty());
  CHECK(loaded->table("untouched")->next_id() == 1);
  CHECK(loaded->table("players")->record_size() == 16 + 4 + 8 + 24 + 8 + 8 + 8 + 8 + 1);

  // Defaults are the values asked for, not only equal bytes.
  {
    const TableSchema& s = *loaded->table("players")->schema();
    RecordView d(s.default_record().data(), 0, &s);
    CHECK(ok(d.get<std::string_view>("name")) == "anon \"q\" é");
    CHECK(ok(d.get<std::int32_t>("hp")) == 100);
    CHECK(ok(d.get<float>("pos.x")) == 0.25f);
    CHECK(ok(d.get<float>("pos.y")) == -2.0f);
    CHECK(ok(d.get<float>("bbox.lo.x")) == 1.5f);  // the nested type's own default
    CHECK(ok(d.get<float>("bbox.lo.y")) == 0.0f);
    CHECK(ok(d.get<float>("bbox.hi.x")) == 3.0f);
    CHECK(ok(d.get<float>("bbox.hi.y")) == 4.0f);
    CHECK(ok(d.get<std::string_view>("bbox.label")) == "bx");
    CHECK(ok(d.get<double>("score")) == 2.5);
    CHECK(ok(d.get<std::uint64_t>("big")) == 18446744073709551615ull);
    CHECK(ok(d.get<bool>("alive")) == true);
    const TableSchema& it = *loaded->table("items")->schema();
    RecordView di(it.default_record().data(), 0, &it);
    CHECK(ok(di.get<float>("weight")) == 0.1f);
  }

  // Relations keep their ids (with the gap) and rules.
  check_same_relations(db->relations(), loaded->relations());
  CHECK(loaded->relations().count(2) == 0);
  CHECK(loaded->relations().at(1).on_delete == OnDelete::cascade);
  CHECK(loaded->relations().at(3).on_delete == OnDelete::set_zero);
  CHECK(loaded->relations().at(4).on_delete == OnDelete::restrict);

  // Saving the loaded catalog gives the same file.
  TempFile again;
  ok(save_catalog_file(*loaded, again.str()));
  CHECK(again.read() == file.read());

  // Ids are never reused: inserts continue after the saved counters.
  Transaction txn(loaded);
  CHECK(put(txn, "teams", json::object()) == 4);
  CHECK(put(txn, "players", {{"team", 4}}) == 6);
  CHECK(insert_json(txn, "players", {{"id", 5}}).code() == Errc::already_exists);
}

TEST_CASE("schema-json: ids and relations continue after a load", "[schema-json]") {
  auto db = rich_db();
  TempFile file;
  ok(save_catalog_file(*db, file.str()));
  auto loaded = ok(load_catalog_file(file.str()));

  Transaction txn(loaded);
  CHECK(put(txn, "teams", json::object()) == 4);
  CHECK(put(txn, "players", {{"team", 4}}) == 6);
  CHECK(put(txn, "items", {{"owner", 6}}) == 11);
  CHECK(put(txn, "empty", json::object()) == 3);
  CHECK(put(txn, "untouched", json::object()) == 1);
  // Freed ids below the counter are not handed out again.
  CHECK(insert_json(txn, "players", {{"id", 5}}).code() == Errc::already_exists);
  CHECK(insert_json(txn, "players", {{"id", 2}}).code() == Errc::already_exists);
  CHECK(insert_json(txn, "items", {{"id", 10}}).code() == Errc::already_exists);
  CHECK(put(txn, "players", {{"id", 9}}) == 9);

  // The relations still hold.
  CHECK(insert_json(txn, "items", {{"owner", 77}}).code() == Errc::foreign_key_violation);
  CHECK(insert_json(txn, "players", {{"team", 99}}).code() == Errc::foreign_key_violation);
  CHECK(insert_json(txn, "players", {{"mentor", 99}}).code() == Errc::foreign_key_violation);
  ok(txn.erase("players", 6));  // cascade to items 11
  CHECK_FALSE(txn.get("items", 11).has_value());
  CHECK(put(txn, "players", {{"team", 4}}) == 10);
  ok(txn.erase("teams", 4));    // set_zero
  CHECK(ok(txn.get("players", 10)->get<std::uint64_t>("team")) == 0);
  CHECK(put(txn, "players", {{"mentor", 9}}) == 11);
  CHECK(txn.erase("players", 9).code() == Errc::foreign_key_violation);  // restrict

  // New relations get ids after the saved counter.
  auto r = ok(txn.create_relation("items", "owner", "teams", OnDelete::restrict));
  CHECK(r.id == 5);
  auto v = ok(txn.commit());
  CHECK(v->next_relation_id() == 6);
  CHECK(v->table("players")->next_id() == 12);
  // The loaded version itself is unchanged.
  CHECK(loaded->table("players")->count() == 0);
  CHECK(loaded->table("players")->next_id() == 6);
}

TEST_CASE("schema-json: catalog_from_json of catalog_to_json is the identity", "[schema-json]") {
  auto db = rich_db();
  auto j = catalog_to_json(*db);
  CHECK(j["format"] == "tickdb-catalog");
  CHECK(j["format_version"] == 1);
  CHECK(j["next_relation_id"] == 5);
  CHECK(j["relations"].size() == 3);
  auto loaded = ok(catalog_from_json(j));
  CHECK(catalog_to_json(*loaded) == j);
  // Through text too.
  auto parsed = ok(parse_json(j.dump()));
  CHECK(catalog_to_json(*ok(catalog_from_json(parsed))) == j);

  // An empty database round-trips too.
  auto e = DbVersion::empty();
  auto ej = catalog_to_json(*e);
  auto el = ok(catalog_from_json(ej));
  CHECK(el->tables().empty());
  CHECK(el->relations().empty());
  CHECK(el->next_relation_id() == 1);
  CHECK(catalog_to_json(*el) == ej);
}

TEST_CASE("schema-json: malformed catalogs are clear invalid_argument errors", "[schema-json]") {
  const json good = catalog_to_json(*rich_db());
  REQUIRE(catalog_from_json(good).is_ok());

  SECTION("not an object") { expect_invalid(json::array(), "object"); }
  SECTION("wrong format") {
    json j = good;
    j["format"] = "tickdb-something";
    expect_invalid(j, "format");
  }
  SECTION("missing format") {
    json j = good;
    j.erase("format");
    expect_invalid(j, "format");
  }
  SECTION("wrong format_version") {
    json j = good;
    j["format_version"] = 2;
    expect_invalid(j, "format_version");
    j["format_version"] = "1";
    expect_invalid(j, "format_version");
    j.erase("format_version");
    expect_invalid(j, "format_version");
  }
  SECTION("missing or malformed 'tables'") {
    json j = good;
    j.erase("tables");
    expect_invalid(j, "tables");
    j["tables"] = json::object();
    expect_invalid(j, "tables");
  }
  SECTION("missing 'types' or 'relations'") {
    json j = good;
    j.erase("types");
    expect_invalid(j, "types");
    j = good;
    j.erase("relations");
    expect_invalid(j, "relations");
  }
  SECTION("unknown type name in a table") {
    json j = good;
    field_j(table_j(j, "players"), "hp")["type"] = "i33";
    expect_invalid(j, "i33");
  }
  SECTION("unknown type name in a type") {
    json j = good;
    field_j(type_j(j, "box"), "lo")["type"] = "vec9";
    expect_invalid(j, "vec9");
  }
  SECTION("types out of order (a type used before it is defined)") {
    json j = good;
    std::swap(j["types"][0], j["types"][1]);
    expect_invalid(j, "vec2");
  }
  SECTION("relation naming a missing from_table") {
    json j = good;
    j["relations"][0]["from_table"] = "ghosts";
    expect_invalid(j, "ghosts");
  }
  SECTION("relation naming a missing to_table") {
    json j = good;
    j["relations"][0]["to_table"] = "phantoms";
    expect_invalid(j, "phantoms");
  }
  SECTION("relation naming a missing field") {
    json j = good;
    j["relations"][0]["from_field"] = "nope";
    expect_invalid(j, "nope");
  }
  SECTION("relation on a non-u64 field") {
    json j = good;
    j["relations"][0]["from_table"] = "players";
    j["relations"][0]["from_field"] = "hp";
    expect_invalid(j, "u64");
  }
  SECTION("relation with a bad on_delete") {
    json j = good;
    j["relations"][0]["on_delete"] = "explode";
    expect_invalid(j, "on_delete");
  }
  SECTION("a field offset that does not match the packed layout") {
    json j = good;
    field_j(table_j(j, "players"), "hp")["offset"] = 17;
    expect_invalid(j, "offset");
  }
  SECTION("a field offset in a type that does not match") {
    json j = good;
    field_j(type_j(j, "box"), "label")["offset"] = 0;
    expect_invalid(j, "offset");
  }
  SECTION("a record_size that does not match") {
    json j = good;
    table_j(j, "players")["record_size"] = table_j(j, "players")["record_size"].get<int>() + 1;
    expect_invalid(j, "record_size");
  }
  SECTION("a record_size for the empty table that is not 0") {
    json j = good;
    table_j(j, "empty")["record_size"] = 4;
    expect_invalid(j, "record_size");
  }
  SECTION("a type size that does not match") {
    json j = good;
    type_j(j, "vec2")["size"] = 12;
    expect_invalid(j, "size");
  }
  SECTION("a field size that does not match its type") {
    json j = good;
    field_j(table_j(j, "players"), "hp")["size"] = 8;
    expect_invalid(j, "size");
  }
  SECTION("a duplicate field name in a table") {
    json j = good;
    // "name" is str(16) at 0, "hp" at 16: renaming hp keeps the layout valid.
    field_j(table_j(j, "players"), "hp")["name"] = "name";
    expect_invalid(j, "duplicate");
  }
  SECTION("a duplicate field name in a type") {
    json j = good;
    field_j(type_j(j, "vec2"), "y")["name"] = "x";
    expect_invalid(j, "duplicate");
  }
  SECTION("a duplicate table") {
    json j = good;
    j["tables"].push_back(table_j(j, "teams"));
    expect_invalid(j, "teams");
  }
  SECTION("a repeated relation id") {
    json j = good;
    REQUIRE(j["relations"].size() == 3);
    j["relations"][1]["id"] = j["relations"][0]["id"];
    expect_invalid(j, "repeated");
  }
  SECTION("a relation id 0 or not below next_relation_id") {
    json j = good;
    j["relations"][0]["id"] = 0;
    expect_invalid(j, "relation id 0");
    j = good;
    j["relations"][2]["id"] = 5;
    expect_invalid(j, "next_relation_id");
    j = good;
    j["relations"][0].erase("id");
    expect_invalid(j, "id");
  }
  SECTION("next_id 0") {
    json j = good;
    table_j(j, "teams")["next_id"] = 0;
    expect_invalid(j, "next_id");
  }
  SECTION("next_id missing or negative") {
    json j = good;
    table_j(j, "teams").erase("next_id");
    expect_invalid(j, "next_id");
    j = good;
    table_j(j, "teams")["next_id"] = -3;
    expect_invalid(j, "next_id");
  }
  SECTION("a bad table name") {
    json j = good;
    table_j(j, "teams")["name"] = "9teams";
    expect_invalid(j, "9teams");
  }
  SECTION("a default out of range for its field") {
    json j = good;
    field_j(table_j(j, "untouched"), "n")["default"] = 300;
    expect_invalid(j, "300");
  }
  SECTION("an unknown key in a field") {
    json j = good;
    field_j(table_j(j, "players"), "hp")["colour"] = "red";
    expect_invalid(j, "colour");
  }
}

TEST_CASE("schema-json: a non-string 'format' is an error, not an exception", "[schema-json]") {
  json j = catalog_to_json(*DbVersion::empty());
  j["format"] = 1;
  Result<std::shared_ptr<const DbVersion>> r = make_error(Errc::internal, "not run");
  REQUIRE_NOTHROW(r = catalog_from_json(j));
  CHECK(r.code() == Errc::invalid_argument);
  CHECK_THAT(r.message(), Contains("format"));
}

TEST_CASE("schema-json: files: bad JSON, missing file, inconsistent content", "[schema-json]") {
  SECTION("bad JSON text is bad_json") {
    TempFile f;
    f.write("{\"format\": \"tickdb-catalog\", \"tables\": [");
    auto r = load_catalog_file(f.str());
    REQUIRE(r.code() == Errc::bad_json);
    f.write("not json at all");
    CHECK(load_catalog_file(f.str()).code() == Errc::bad_json);
    f.write("");
    CHECK(load_catalog_file(f.str()).code() == Errc::bad_json);
  }
  SECTION("a missing file is not_found") {
    TempFile f;  // never written
    REQUIRE_FALSE(std::filesystem::exists(f.path));
    auto r = load_catalog_file(f.str());
    REQUIRE(r.code() == Errc::not_found);
  }
  SECTION("valid JSON with inconsistent content is invalid_argument") {
    TempFile f;
    json j = catalog_to_json(*rich_db());
    table_j(j, "items")["next_id"] = 0;
    f.write(j.dump());
    auto r = load_catalog_file(f.str());
    REQUIRE(r.code() == Errc::invalid_argument);
    CHECK_THAT(r.message(), Contains("next_id"));
    f.write("[1, 2, 3]");
    CHECK(load_catalog_file(f.str()).code() == Errc::invalid_argument);
  }
  SECTION("saving into a directory that does not exist fails cleanly") {
    TempFile f;
    auto s = save_catalog_file(*DbVersion::empty(), (f.path / "sub" / "cat.json").string());
    CHECK_FALSE(s.is_ok());
  }
}

TEST_CASE("schema-json: next_relation_id 0 is refused like next_id 0", "[schema-json]") {
  json j = catalog_to_json(*DbVersion::empty());
  j["next_relation_id"] = 0;
  auto r = catalog_from_json(j);
  if (r.is_ok()) {
    Transaction txn(*r);
    ok(txn.create_table("t", {{"ref", "u64"}}));
    auto rel = ok(txn.create_relation("t", "ref", "t", OnDelete::restrict));
    CHECK(rel.id != 0);
  }
  REQUIRE(r.code() == Errc::invalid_argument);
  CHECK_THAT(r.message(), Contains("next_relation_id"));
}
