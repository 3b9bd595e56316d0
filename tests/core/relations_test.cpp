// Relations: creating and deleting them, and the rules they enforce on insert, update and
// delete (restrict, cascade, set_zero), atomically, through Transaction and the committed
// DbVersion.
#include "test_db.h"

#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/transaction.h"

using namespace tickdb;
using tickdb::test::ok;
constexpr auto build = [](auto base, auto&& fn) { return tickdb::test::commit(std::move(base), fn); };

namespace {


// A record of `table` with the given u64 fields set (others keep their default).
std::vector<std::byte> rec(const Transaction& t, std::string_view table,
                           std::initializer_list<std::pair<const char*, std::uint64_t>> u64s) {
  const TableVersion* tv = t.table(table);
  REQUIRE(tv != nullptr);
  RecordBuffer b(*tv->schema());
  for (const auto& [f, v] : u64s) ok(b.set<std::uint64_t>(f, v));
  return {b.bytes().begin(), b.bytes().end()};
}

Result<std::uint64_t> ins(Transaction& t, std::string_view table,
                          std::initializer_list<std::pair<const char*, std::uint64_t>> u64s) {
  return t.insert(table, rec(t, table, u64s));
}

// Updates one u64 field of a record, keeping the rest.
Status set_u64(Transaction& t, std::string_view table, std::uint64_t id, const char* field,
               std::uint64_t v) {
  auto cur = t.get(table, id);
  REQUIRE(cur.has_value());
  RecordBuffer b(*cur);
  ok(b.set<std::uint64_t>(field, v));
  return t.update(table, id, b.bytes());
}

std::uint64_t u64_of(const std::optional<RecordView>& r, const char* field) {
  REQUIRE(r.has_value());
  return ok(r->get<std::uint64_t>(field));
}

// A table's full content: id -> bytes.
using Rows = std::map<std::uint64_t, std::vector<std::byte>>;
Rows rows(const TableVersion* t) {
  REQUIRE(t != nullptr);
  Rows out;
  for (const RecordView r : *t) out[r.id()] = {r.bytes().begin(), r.bytes().end()};
  return out;
}

std::vector<std::uint64_t> ids(const TableVersion* t) {
  REQUIRE(t != nullptr);
  std::vector<std::uint64_t> out;
  for (const RecordView r : *t) out.push_back(r.id());
  return out;
}
using Ids = std::vector<std::uint64_t>;

// Every table's rows, for "nothing changed" checks.
std::map<std::string, Rows> snapshot(const TableMap& tables) {
  std::map<std::string, Rows> out;
  for (const auto& [name, t] : tables) out[name] = rows(t.get());
  return out;
}

// a {name str(8)}; b {a_id u64, hp i32}; c {b_id u64, tag str(8)}.
std::shared_ptr<const DbVersion> abc_db() {
  return build(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("a", {{"name", "str", 8}}));
    ok(t.create_table("b", {{"a_id", "u64"}, {"hp", "i32"}}));
    ok(t.create_table("c", {{"b_id", "u64"}, {"tag", "str", 8}}));
  });
}

}  // namespace

TEST_CASE("relations: create_relation checks tables, field and type", "[relations]") {
  auto db = build(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_type("ref", {{"target", "u64"}, {"w", "u32"}}));
    ok(t.create_table("players", {{"hp", "i32"}}));
    ok(t.create_table("items", {{"owner", "u64"},
                                {"hp", "i32"},
                                {"tag", "str", 8},
                                {"small", "u32"},
                                {"big", "i64"},
                                {"flag", "bool"},
                                {"weight", "f64"},
                                {"link", "ref"}}));
  });
  Transaction txn(db);

  SECTION("a top-level u64 field works and the relation is stored") {
    auto r = ok(txn.create_relation("items", "owner", "players", OnDelete::cascade));
    CHECK(r.id == 1);
    CHECK(r.from_table == "items");
    CHECK(r.from_field == "owner");
    CHECK(r.to_table == "players");
    CHECK(r.on_delete == OnDelete::cascade);
    REQUIRE(txn.relations().size() == 1);
    CHECK(txn.relations().at(1).from_field == "owner");
    CHECK(db->relations().empty());
    auto v = ok(txn.commit());
    REQUIRE(v->relations().size() == 1);
    const Relation& stored = v->relations().at(1);
    CHECK(stored.from_table == "items");
    CHECK(stored.from_field == "owner");
    CHECK(stored.to_table == "players");
    CHECK(stored.on_delete == OnDelete::cascade);
    CHECK(v->next_relation_id() == 2);
    CHECK(db->relations().empty());
  }

  SECTION("every non-u64 field is invalid_argument") {
    for (const char* f : {"hp", "tag", "small", "big", "flag", "weight", "link"}) {
      INFO(f);
      auto r = txn.create_relation("items", f, "players", OnDelete::restrict);
      REQUIRE(r.code() == Errc::invalid_argument);
    }
    CHECK(txn.relations().empty());
    CHECK_FALSE(txn.changed());
  }

  SECTION("missing table or field is not_found") {
    CHECK(txn.create_relation("ghosts", "owner", "players", OnDelete::restrict).code() == Errc::not_found);
    CHECK(txn.create_relation("items", "owner", "ghosts", OnDelete::restrict).code() == Errc::not_found);
    CHECK(txn.create_relation("items", "nope", "players", OnDelete::restrict).code() == Errc::not_found);
    CHECK(txn.create_relation("items", "id", "players", OnDelete::restrict).code() == Errc::not_found);
    CHECK(txn.relations().empty());
    CHECK_FALSE(txn.changed());
  }

  SECTION("the same from_table/from_field/to_table twice is already_exists") {
    auto r1 = ok(txn.create_relation("items", "owner", "players", OnDelete::restrict));
    for (OnDelete o : {OnDelete::restrict, OnDelete::cascade, OnDelete::set_zero}) {
      auto r2 = txn.create_relation("items", "owner", "players", o);
      REQUIRE(r2.code() == Errc::already_exists);
    }
    REQUIRE(txn.relations().size() == 1);
    CHECK(txn.relations().begin()->first == r1.id);
    CHECK(txn.relations().at(r1.id).on_delete == OnDelete::restrict);
    // A relation committed earlier counts too.
    auto v = ok(txn.commit());
    Transaction t2(v);
    CHECK(t2.create_relation("items", "owner", "players", OnDelete::set_zero).code() == Errc::already_exists);
    CHECK(t2.relations().size() == 1);
  }

  SECTION("relation ids rise and are not reused after delete_relation") {
    auto r1 = ok(txn.create_relation("items", "owner", "players", OnDelete::restrict));
    ok(txn.delete_relation(r1.id));
    CHECK(txn.relations().empty());
    auto r2 = ok(txn.create_relation("items", "owner", "players", OnDelete::restrict));
    CHECK(r2.id != r1.id);
    CHECK(r2.id > r1.id);
  }
}

TEST_CASE("relations: a nested u64 path is refused as invalid_argument", "[relations]") {
  auto db = build(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_type("ref", {{"target", "u64"}}));
    ok(t.create_table("players", {{"hp", "i32"}}));
    ok(t.create_table("items", {{"link", "ref"}}));
  });
  Transaction txn(db);
  auto r = txn.create_relation("items", "link.target", "players", OnDelete::restrict);
  CHECK_FALSE(r.is_ok());
  CHECK(txn.relations().empty());
  REQUIRE(r.code() == Errc::invalid_argument);
}

TEST_CASE("relations: creating a relation over violating data is refused", "[relations]") {
  auto db = build(abc_db(), [](Transaction& t) {
    ok(t.insert("a", rec(t, "a", {})));                   // a 1
    ok(t.insert("a", rec(t, "a", {})));                   // a 2
    ok(ins(t, "b", {{"a_id", 1}}));                       // b 1
    ok(ins(t, "b", {{"a_id", 0}}));                       // b 2: 0 is "no record"
    ok(ins(t, "b", {{"a_id", 7}}));                       // b 3: dangling
  });
  Transaction txn(db);
  for (OnDelete o : {OnDelete::restrict, OnDelete::cascade, OnDelete::set_zero}) {
    auto r = txn.create_relation("b", "a_id", "a", o);
    REQUIRE(r.code() == Errc::foreign_key_violation);
  }
  CHECK(txn.relations().empty());
  CHECK_FALSE(txn.changed());

  // Once the dangling reference is gone, the relation can be made.
  ok(set_u64(txn, "b", 3, "a_id", 2));
  auto r = ok(txn.create_relation("b", "a_id", "a", OnDelete::restrict));
  CHECK(r.id == 1);

  // A record deleted in the same transaction counts as missing.
  Transaction t2(db);
  ok(set_u64(t2, "b", 3, "a_id", 2));
  ok(t2.erase("a", 2));
  CHECK(t2.create_relation("b", "a_id", "a", OnDelete::cascade).code() == Errc::foreign_key_violation);
  CHECK(t2.relations().empty());
  CHECK(db->relations().empty());
}

TEST_CASE("relations: insert and update must name an existing record or 0", "[relations]") {
  auto db = build(abc_db(), [](Transaction& t) {
    ok(t.insert("a", rec(t, "a", {})));  // a 1
    ok(t.insert("a", rec(t, "a", {})));  // a 2
    ok(ins(t, "b", {{"a_id", 1}}));      // b 1
    ok(t.create_relation("b", "a_id", "a", OnDelete::restrict));
  });
  const auto base_rows = snapshot(db->tables());

  Transaction txn(db);
  SECTION("insert") {
    auto bad = ins(txn, "b", {{"a_id", 3}});
    REQUIRE(bad.code() == Errc::foreign_key_violation);
    CHECK(ins(txn, "b", {{"a_id", ~std::uint64_t{0}}}).code() == Errc::foreign_key_violation);
    CHECK(txn.table("b")->count() == 1);
    CHECK(txn.table("b")->next_id() == 2);
    CHECK_FALSE(txn.changed());

    CHECK(ok(ins(txn, "b", {{"a_id", 0}})) == 2);  // "no record"
    CHECK(ok(ins(txn, "b", {{"a_id", 2}})) == 3);
    // A target inserted in the same transaction counts.
    auto a3 = ok(txn.insert("a", rec(txn, "a", {})));
    CHECK(a3 == 3);
    CHECK(ok(ins(txn, "b", {{"a_id", 3}})) == 4);
    // A target deleted in this transaction does not.
    ok(txn.erase("b", 3));  // unreference it first: restrict
    ok(txn.erase("a", 2));
    CHECK(ins(txn, "b", {{"a_id", 2}}).code() == Errc::foreign_key_violation);
    CHECK(ids(txn.table("b")) == Ids{1, 2, 4});

    auto v = ok(txn.commit());
    CHECK(ids(v->table("b")) == Ids{1, 2, 4});
    CHECK(u64_of(v->table("b")->get(2), "a_id") == 0);
    CHECK(u64_of(v->table("b")->get(4), "a_id") == 3);
    CHECK(snapshot(db->tables()) == base_rows);
  }

  SECTION("update") {
    REQUIRE(set_u64(txn, "b", 1, "a_id", 9).code() == Errc::foreign_key_violation);
    CHECK(u64_of(txn.get("b", 1), "a_id") == 1);
    CHECK_FALSE(txn.changed());
    ok(set_u64(txn, "b", 1, "a_id", 2));
    CHECK(u64_of(txn.get("b", 1), "a_id") == 2);
    ok(set_u64(txn, "b", 1, "a_id", 0));
    CHECK(u64_of(txn.get("b", 1), "a_id") == 0);
    REQUIRE(set_u64(txn, "b", 1, "a_id", 3).code() == Errc::foreign_key_violation);
    CHECK(u64_of(txn.get("b", 1), "a_id") == 0);
    auto v = ok(txn.commit());
    CHECK(u64_of(v->table("b")->get(1), "a_id") == 0);
    CHECK(snapshot(db->tables()) == base_rows);
  }

  SECTION("without the relation anything goes") {
    ok(txn.delete_relation(1));
    CHECK(ok(ins(txn, "b", {{"a_id", 99}})) == 2);
    ok(set_u64(txn, "b", 1, "a_id", 42));
    CHECK(u64_of(txn.get("b", 1), "a_id") == 42);
  }
}

TEST_CASE("relations: restrict refuses the delete and changes nothing", "[relations]") {
  auto db = build(abc_db(), [](Transaction& t) {
    ok(t.insert("a", rec(t, "a", {})));  // a 1
    ok(t.insert("a", rec(t, "a", {})));  // a 2
    ok(ins(t, "b", {{"a_id", 1}}));      // b 1
    ok(ins(t, "b", {{"a_id", 1}}));      // b 2
    ok(ins(t, "b", {{"a_id", 0}}));      // b 3
    ok(t.create_relation("b", "a_id", "a", OnDelete::restrict));
  });
  const auto base_rows = snapshot(db->tables());
  Transaction txn(db);

  auto s = txn.erase("a", 1);
  REQUIRE(s.code() == Errc::foreign_key_violation);
  CHECK(snapshot(txn.tables()) == base_rows);
  CHECK(txn.table("a")->count() == 2);
  CHECK(txn.table("b")->count() == 3);
  CHECK_FALSE(txn.changed());
  // Nothing changed: committing gives the base itself.
  {
    Transaction t0(db);
    CHECK(t0.erase("a", 1).code() == Errc::foreign_key_violation);
    auto same = ok(t0.commit());
    CHECK(same.get() == db.get());
  }

  // An unreferenced record goes.
  ok(txn.erase("a", 2));
  CHECK(ids(txn.table("a")) == Ids{1});
  // Still refused while one reference remains.
  ok(txn.erase("b", 1));
  CHECK(txn.erase("a", 1).code() == Errc::foreign_key_violation);
  CHECK(ids(txn.table("a")) == Ids{1});
  ok(txn.erase("b", 2));
  ok(txn.erase("a", 1));
  CHECK(txn.table("a")->count() == 0);
  CHECK(ids(txn.table("b")) == Ids{3});

  auto v = ok(txn.commit());
  CHECK(v->table("a")->count() == 0);
  CHECK(ids(v->table("b")) == Ids{3});
  CHECK(snapshot(db->tables()) == base_rows);
  CHECK(txn.commit().code() != Errc::ok);  // used up
}

TEST_CASE("relations: cascade deletes transitively along a chain a <- b <- c", "[relations]") {
  auto db = build(abc_db(), [](Transaction& t) {
    for (int i = 0; i < 3; ++i) ok(t.insert("a", rec(t, "a", {})));  // a 1..3
    ok(ins(t, "b", {{"a_id", 1}}));  // b 1
    ok(ins(t, "b", {{"a_id", 2}}));  // b 2
    ok(ins(t, "b", {{"a_id", 1}}));  // b 3
    ok(ins(t, "b", {{"a_id", 0}}));  // b 4
    ok(ins(t, "c", {{"b_id", 1}}));  // c 1
    ok(ins(t, "c", {{"b_id", 2}}));  // c 2
    ok(ins(t, "c", {{"b_id", 3}}));  // c 3
    ok(ins(t, "c", {{"b_id", 3}}));  // c 4
    ok(ins(t, "c", {{"b_id", 0}}));  // c 5
    ok(ins(t, "c", {{"b_id", 4}}));  // c 6
    // The c -> b relation first, so its rule has to be applied after b's doomed set grows.
    ok(t.create_relation("c", "b_id", "b", OnDelete::cascade));
    ok(t.create_relation("b", "a_id", "a", OnDelete::cascade));
  });
  const auto base_rows = snapshot(db->tables());

  Transaction txn(db);
  ok(txn.erase("a", 1));
  CHECK(ids(txn.table("a")) == Ids{2, 3});
  CHECK(ids(txn.table("b")) == Ids{2, 4});
  CHECK(ids(txn.table("c")) == Ids{2, 5, 6});
  CHECK_FALSE(txn.get("b", 1).has_value());
  CHECK_FALSE(txn.get("c", 4).has_value());

  // A record with no referencing records goes alone.
  ok(txn.erase("a", 3));
  CHECK(ids(txn.table("a")) == Ids{2});
  CHECK(ids(txn.table("b")) == Ids{2, 4});

  auto v = ok(txn.commit());
  CHECK(ids(v->table("a")) == Ids{2});
  CHECK(ids(v->table("b")) == Ids{2, 4});
  CHECK(ids(v->table("c")) == Ids{2, 5, 6});
  CHECK(u64_of(v->table("c")->get(2), "b_id") == 2);
  CHECK(u64_of(v->table("b")->get(2), "a_id") == 2);
  // The base is untouched.
  CHECK(snapshot(db->tables()) == base_rows);
  CHECK(ids(db->table("c")) == Ids{1, 2, 3, 4, 5, 6});

  // Deleting from the middle of the chain cascades only downwards.
  Transaction t2(v);
  ok(t2.erase("b", 2));
  CHECK(ids(t2.table("a")) == Ids{2});
  CHECK(ids(t2.table("b")) == Ids{4});
  CHECK(ids(t2.table("c")) == Ids{5, 6});
}

TEST_CASE("relations: cascade on a self-referencing table, cycles included", "[relations]") {
  auto db = build(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("nodes", {{"parent", "u64"}, {"v", "i32"}}));
    ok(t.create_relation("nodes", "parent", "nodes", OnDelete::cascade));
    ok(ins(t, "nodes", {{"parent", 0}}));  // 1 root
    ok(ins(t, "nodes", {{"parent", 1}}));  // 2
    ok(ins(t, "nodes", {{"parent", 2}}));  // 3
    ok(ins(t, "nodes", {{"parent", 0}}));  // 4 root
    ok(ins(t, "nodes", {{"parent", 4}}));  // 5
    ok(ins(t, "nodes", {{"parent", 3}}));  // 6
    ok(ins(t, "nodes", {{"parent", 0}}));  // 7 root
    // An older record pointing to a newer one: 7's child must not depend on id order.
    ok(set_u64(t, "nodes", 7, "parent", 6));  // 7 under 6
  });
  const auto base_rows = snapshot(db->tables());

  SECTION("a subtree goes, the rest stays") {
    Transaction txn(db);
    ok(txn.erase("nodes", 2));
    CHECK(ids(txn.table("nodes")) == Ids{1, 4, 5});
    auto v = ok(txn.commit());
    CHECK(ids(v->table("nodes")) == Ids{1, 4, 5});
    CHECK(snapshot(db->tables()) == base_rows);
  }

  SECTION("deleting a root takes its whole tree") {
    Transaction txn(db);
    ok(txn.erase("nodes", 1));
    CHECK(ids(txn.table("nodes")) == Ids{4, 5});
    CHECK(ids(ok(txn.commit())->table("nodes")) == Ids{4, 5});
  }

  SECTION("a cycle terminates and goes whole") {
    Transaction txn(db);
    ok(set_u64(txn, "nodes", 1, "parent", 7));  // 1 -> 7 -> 6 -> 3 -> 2 -> 1
    ok(txn.erase("nodes", 3));
    CHECK(ids(txn.table("nodes")) == Ids{4, 5});
    ok(set_u64(txn, "nodes", 4, "parent", 4));  // a record referencing itself
    ok(txn.erase("nodes", 4));
    CHECK(txn.table("nodes")->count() == 0);
    CHECK(ok(txn.commit())->table("nodes")->count() == 0);
    CHECK(snapshot(db->tables()) == base_rows);
  }
}

TEST_CASE("relations: set_zero clears only the referencing field", "[relations]") {
  auto db = build(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("teams", {{"name", "str", 8}}));
    ok(t.create_table("players", {{"hp", "i32"}, {"team", "u64"}, {"name", "str", 8}, {"rival_team", "u64"}}));
    ok(t.insert("teams", rec(t, "teams", {})));  // 1
    ok(t.insert("teams", rec(t, "teams", {})));  // 2
    auto p = [&](std::int32_t hp, std::uint64_t team, const char* name, std::uint64_t rival) {
      RecordBuffer b(*t.table("players")->schema());
      ok(b.set<std::int32_t>("hp", hp));
      ok(b.set<std::uint64_t>("team", team));
      ok(b.set_str("name", name));
      ok(b.set<std::uint64_t>("rival_team", rival));
      ok(t.insert("players", b.bytes()));
    };
    p(10, 1, "ann", 2);  // 1
    p(20, 2, "bob", 1);  // 2
    p(30, 1, "cid", 1);  // 3
    ok(t.create_relation("players", "team", "teams", OnDelete::set_zero));
    ok(t.create_relation("players", "rival_team", "teams", OnDelete::set_zero));
  });
  const auto base_rows = snapshot(db->tables());

  Transaction txn(db);
  ok(txn.erase("teams", 1));
  CHECK(ids(txn.table("teams")) == Ids{2});
  CHECK(ids(txn.table("players")) == Ids{1, 2, 3});

  auto v = ok(txn.commit());
  auto check = [&](std::uint64_t id, std::int32_t hp, std::uint64_t team, const char* name,
                   std::uint64_t rival) {
    INFO("player " << id);
    auto r = v->table("players")->get(id);
    REQUIRE(r.has_value());
    CHECK(ok(r->get<std::int32_t>("hp")) == hp);
    CHECK(ok(r->get<std::uint64_t>("team")) == team);
    CHECK(ok(r->get<std::string_view>("name")) == name);
    CHECK(ok(r->get<std::uint64_t>("rival_team")) == rival);
  };
  check(1, 10, 0, "ann", 2);
  check(2, 20, 2, "bob", 0);
  check(3, 30, 0, "cid", 0);
  CHECK(snapshot(db->tables()) == base_rows);
  CHECK(u64_of(db->table("players")->get(1), "team") == 1);
}

TEST_CASE("relations: cascade then set_zero further down the chain", "[relations]") {
  auto db = build(abc_db(), [](Transaction& t) {
    ok(t.insert("a", rec(t, "a", {})));  // a 1
    ok(ins(t, "b", {{"a_id", 1}}));      // b 1
    ok(ins(t, "b", {{"a_id", 0}}));      // b 2
    ok(ins(t, "c", {{"b_id", 1}}));      // c 1
    ok(ins(t, "c", {{"b_id", 2}}));      // c 2
    ok(t.create_relation("b", "a_id", "a", OnDelete::cascade));
    ok(t.create_relation("c", "b_id", "b", OnDelete::set_zero));
  });
  Transaction txn(db);
  ok(txn.erase("a", 1));
  auto v = ok(txn.commit());
  CHECK(v->table("a")->count() == 0);
  CHECK(ids(v->table("b")) == Ids{2});
  CHECK(ids(v->table("c")) == Ids{1, 2});
  CHECK(u64_of(v->table("c")->get(1), "b_id") == 0);
  CHECK(u64_of(v->table("c")->get(2), "b_id") == 2);
  CHECK(u64_of(db->table("c")->get(1), "b_id") == 1);
}

TEST_CASE("relations: a restrict broken by a cascade fails the whole delete", "[relations]") {
  // a <- b (cascade), b <- c (restrict), a <- d (set_zero).
  auto db = build(abc_db(), [](Transaction& t) {
    ok(t.create_table("d", {{"a_ref", "u64"}, {"n", "i32"}}));
    ok(t.insert("a", rec(t, "a", {})));  // a 1
    ok(t.insert("a", rec(t, "a", {})));  // a 2
    ok(ins(t, "b", {{"a_id", 1}}));      // b 1
    ok(ins(t, "b", {{"a_id", 1}}));      // b 2
    ok(ins(t, "b", {{"a_id", 2}}));      // b 3
    ok(ins(t, "c", {{"b_id", 2}}));      // c 1: blocks a 1 through b 2
    ok(ins(t, "d", {{"a_ref", 1}}));     // d 1: would be zeroed
    ok(t.create_relation("b", "a_id", "a", OnDelete::cascade));
    ok(t.create_relation("c", "b_id", "b", OnDelete::restrict));
    ok(t.create_relation("d", "a_ref", "a", OnDelete::set_zero));
  });
  const auto base_rows = snapshot(db->tables());

  Transaction txn(db);
  auto s = txn.erase("a", 1);
  REQUIRE(s.code() == Errc::foreign_key_violation);
  // Nothing at all changed: no cascade, no zeroing.
  CHECK(snapshot(txn.tables()) == base_rows);
  CHECK(u64_of(txn.get("d", 1), "a_ref") == 1);
  CHECK(ids(txn.table("b")) == Ids{1, 2, 3});
  CHECK_FALSE(txn.changed());
  CHECK(ok(txn.commit()).get() == db.get());

  // The same delete works once the blocking record is gone, in one step.
  Transaction t2(db);
  ok(t2.erase("c", 1));
  ok(t2.erase("a", 1));
  auto v = ok(t2.commit());
  CHECK(ids(v->table("a")) == Ids{2});
  CHECK(ids(v->table("b")) == Ids{3});
  CHECK(v->table("c")->count() == 0);
  CHECK(u64_of(v->table("d")->get(1), "a_ref") == 0);
  CHECK(snapshot(db->tables()) == base_rows);
}

TEST_CASE("relations: a restrict reference from a record deleted too does not block", "[relations]") {
  // c references both a (cascade) and b (restrict); b references a (cascade). Deleting a 1
  // dooms b 1 and c 1, so c 1's restrict reference to b 1 disappears with it.
  auto db = build(abc_db(), [](Transaction& t) {
    ok(t.add_field("c", {"a_id", "u64"}));
    ok(t.insert("a", rec(t, "a", {})));                  // a 1
    ok(ins(t, "b", {{"a_id", 1}}));                      // b 1
    ok(ins(t, "c", {{"b_id", 1}, {"a_id", 1}}));         // c 1
    ok(t.create_relation("b", "a_id", "a", OnDelete::cascade));
    ok(t.create_relation("c", "b_id", "b", OnDelete::restrict));
    ok(t.create_relation("c", "a_id", "a", OnDelete::cascade));
  });
  Transaction txn(db);
  ok(txn.erase("a", 1));
  auto v = ok(txn.commit());
  CHECK(v->table("a")->count() == 0);
  CHECK(v->table("b")->count() == 0);
  CHECK(v->table("c")->count() == 0);
  CHECK(db->table("c")->count() == 1);
}

TEST_CASE("relations: tables and fields in use cannot be dropped until the relation goes", "[relations]") {
  auto db = build(abc_db(), [](Transaction& t) {
    ok(t.insert("a", rec(t, "a", {})));
    ok(ins(t, "b", {{"a_id", 1}}));
    ok(t.create_relation("b", "a_id", "a", OnDelete::restrict));
  });
  const auto base_rows = snapshot(db->tables());
  const std::uint64_t rel_id = db->relations().begin()->first;

  Transaction txn(db);
  REQUIRE(txn.drop_table("a").code() == Errc::conflict);  // to_table
  REQUIRE(txn.drop_table("b").code() == Errc::conflict);  // from_table
  REQUIRE(txn.remove_field("b", "a_id").code() == Errc::conflict);
  CHECK(txn.table("a") != nullptr);
  CHECK(txn.table("b") != nullptr);
  CHECK(txn.table("b")->schema()->index_of("a_id").is_ok());
  CHECK_FALSE(txn.changed());
  CHECK(snapshot(txn.tables()) == base_rows);

  // Fields the relation does not use can go, and the relation still holds afterwards.
  ok(txn.remove_field("b", "hp"));
  CHECK(txn.table("b")->record_size() == 8);
  CHECK(ins(txn, "b", {{"a_id", 5}}).code() == Errc::foreign_key_violation);
  CHECK(txn.erase("a", 1).code() == Errc::foreign_key_violation);
  // An unrelated table can go.
  ok(txn.drop_table("c"));

  // Unknown relation ids.
  CHECK(txn.delete_relation(rel_id + 100).code() == Errc::not_found);
  CHECK(txn.delete_relation(0).code() == Errc::not_found);
  CHECK(txn.relations().size() == 1);

  ok(txn.delete_relation(rel_id));
  CHECK(txn.relations().empty());
  CHECK(txn.delete_relation(rel_id).code() == Errc::not_found);
  ok(txn.remove_field("b", "a_id"));
  CHECK(txn.table("b")->record_size() == 0);
  ok(txn.drop_table("a"));
  ok(txn.drop_table("b"));
  CHECK(txn.table("a") == nullptr);

  auto v = ok(txn.commit());
  CHECK(v->tables().empty());
  CHECK(v->relations().empty());
  // The base still has everything.
  CHECK(db->relations().size() == 1);
  CHECK(snapshot(db->tables()) == base_rows);
}

TEST_CASE("relations: restrict on a self-referencing table", "[relations]") {
  auto db = build(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("emp", {{"boss", "u64"}}));
    ok(t.create_relation("emp", "boss", "emp", OnDelete::restrict));
    ok(ins(t, "emp", {{"boss", 0}}));  // 1
    ok(ins(t, "emp", {{"boss", 1}}));  // 2
    ok(ins(t, "emp", {{"boss", 0}}));  // 3
    ok(set_u64(t, "emp", 3, "boss", 3));  // its own boss
  });
  Transaction txn(db);
  CHECK(txn.erase("emp", 1).code() == Errc::foreign_key_violation);
  CHECK(ids(txn.table("emp")) == Ids{1, 2, 3});
  // A reference from the record being deleted itself does not block it.
  ok(txn.erase("emp", 3));
  ok(txn.erase("emp", 2));
  ok(txn.erase("emp", 1));
  CHECK(ok(txn.commit())->table("emp")->count() == 0);
  CHECK(db->table("emp")->count() == 3);
}

TEST_CASE("relations: rules follow the field after the table's layout changes", "[relations]") {
  auto db = build(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("teams", {{"n", "i32"}}));
    ok(t.create_table("players", {{"hp", "i32"}, {"pad", "u64"}, {"team", "u64"}, {"tail", "i32"}}));
    ok(t.insert("teams", rec(t, "teams", {})));  // 1
    ok(t.insert("teams", rec(t, "teams", {})));  // 2
    ok(ins(t, "players", {{"pad", 2}, {"team", 1}}));  // 1
    ok(ins(t, "players", {{"pad", 1}, {"team", 2}}));  // 2
    ok(t.create_relation("players", "team", "teams", OnDelete::set_zero));
  });
  Transaction txn(db);
  // team moves from offset 12 to offset 0.
  ok(txn.remove_field("players", "hp"));
  ok(txn.remove_field("players", "pad"));
  ok(txn.add_field("players", {"extra", "u64"}));
  REQUIRE(ok(txn.table("players")->schema()->locate("team")).offset == 0);
  CHECK(ins(txn, "players", {{"team", 3}}).code() == Errc::foreign_key_violation);
  CHECK(ins(txn, "players", {{"extra", 1}}).is_ok());      // the old offset is not checked
  CHECK(set_u64(txn, "players", 1, "team", 9).code() == Errc::foreign_key_violation);
  ok(txn.erase("teams", 1));
  CHECK(u64_of(txn.get("players", 1), "team") == 0);
  CHECK(u64_of(txn.get("players", 1), "extra") == 0);
  CHECK(ok(txn.get("players", 1)->get<std::int32_t>("tail")) == 0);
  CHECK(u64_of(txn.get("players", 2), "team") == 2);
  auto v = ok(txn.commit());
  CHECK(u64_of(v->table("players")->get(1), "team") == 0);
  CHECK(u64_of(v->table("players")->get(2), "team") == 2);
  CHECK(u64_of(db->table("players")->get(1), "team") == 1);
  CHECK(u64_of(db->table("players")->get(1), "pad") == 2);
}
