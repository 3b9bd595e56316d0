// Secondary indexes in the engine: creating and dropping them (and every refusal, message
// checked), unique keys checked at commit, relation indexes, a randomized run of writes,
// transactions, cascades, parallel updates and schema changes that checks every index against
// a rebuild after each commit, snapshots (with indexes, and of the older format), and a
// cascade down a long chain that must not be quadratic.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/snapshot_file.h"
#include "test_db.h"

using namespace tickdb;
using tickdb::test::ok;

namespace {

std::shared_ptr<const DbVersion> build(std::shared_ptr<const DbVersion> base, auto&& fn) {
  return tickdb::test::commit(std::move(base), fn);
}

// players {name str(6), score i32, pos vec3, guild u64, flag bool}; guilds {tag u32, rank i16,
// boss u64}; players.guild -> guilds (cascade), guilds.boss -> players (set_zero).
std::shared_ptr<const DbVersion> game_db() {
  return build(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_type("vec3", {{"x", "f32"}, {"y", "f32"}, {"z", "f32"}}));
    ok(t.create_table("players", {{"name", "str", 6},
                                  {"score", "i32"},
                                  {"pos", "vec3"},
                                  {"guild", "u64"},
                                  {"flag", "bool"}}));
    ok(t.create_table("guilds", {{"tag", "u32"}, {"rank", "i16"}, {"boss", "u64"}}));
    ok(t.create_relation("players", "guild", "guilds", OnDelete::cascade));
    ok(t.create_relation("guilds", "boss", "players", OnDelete::set_zero));
  });
}

std::vector<std::byte> player(const Transaction& t, const std::string& name, std::int32_t score,
                              float x = 0, std::uint64_t guild = 0) {
  RecordBuffer r(*t.table("players")->schema());
  ok(r.set_str("name", name));
  ok(r.set<std::int32_t>("score", score));
  ok(r.set<float>("pos.x", x));
  ok(r.set<std::uint64_t>("guild", guild));
  return {r.bytes().begin(), r.bytes().end()};
}

void check_all(const DbVersion& db) {
  for (const auto& [name, t] : db.tables()) {
    INFO("table " << name);
    auto s = check_indexes(*t);
    INFO(s.message());
    REQUIRE(s.is_ok());
  }
}

// `s` failed with `code` and its message holds `word`.
void refused(const Status& s, Errc code, const std::string& word) {
  INFO(s.message());
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.code() == code);
  CHECK(s.message().find(word) != std::string::npos);
}
template <class T>
void refused(const Result<T>& r, Errc code, const std::string& word) {
  refused(r.status(), code, word);
}

// prefix + n (g++ 12 reports a false -Wrestrict for "literal" + std::string: GCC bug 105329).
std::string nm(const char* prefix, long n) {
  std::string s = prefix;
  s += std::to_string(n);
  return s;
}

IndexDef def(std::string name, std::vector<std::string> fields, IndexType type = IndexType::ordered,
             bool unique = false) {
  return IndexDef{std::move(name), std::move(fields), type, unique, false};
}

}  // namespace

TEST_CASE("indexes: create, describe, drop, and every refusal with its message", "[indexes]") {
  auto db = game_db();
  Transaction t(db);
  ok(t.insert("players", player(t, "ann", 5)));
  ok(t.insert("players", player(t, "bob", 5)));
  // Relations made their automatic indexes.
  auto d = ok(t.describe_indexes("players"));
  REQUIRE(d.size() == 1);
  CHECK(d[0].name == "players_guild_rel");
  CHECK(d[0].auto_);
  CHECK(d[0].fields == std::vector<std::string>{"guild"});
  CHECK(d[0].entries == 2);

  auto made = ok(t.create_index("players", def("players_score", {"score", "pos.x"})));
  CHECK(made.name == "players_score");
  CHECK(made.table == "players");
  CHECK(made.entries == 2);
  CHECK(made.bytes > 0);
  CHECK_FALSE(made.auto_);
  CHECK(index_description_to_json(made) == json{{"name", "players_score"},
                                                {"table", "players"},
                                                {"fields", {"score", "pos.x"}},
                                                {"type", "ordered"},
                                                {"unique", false},
                                                {"entries", 2},
                                                {"bytes", made.bytes},
                                                {"auto", false}});

  refused(t.create_index("nope", def("x", {"score"})), Errc::not_found,
          "table 'nope' does not exist");
  refused(t.create_index("players", def("bad name", {"score"})), Errc::invalid_argument,
          "index name");
  refused(t.create_index("players", def("players_score", {"flag"})), Errc::already_exists,
          "index 'players_score' of table 'players' already exists");
  refused(t.create_index("players", def("players_guild_rel", {"flag"})), Errc::already_exists,
          "index 'players_guild_rel' of table 'players' already exists");
  refused(t.create_index("players", def("x", {})), Errc::invalid_argument,
          "index 'x': an index has 1 to 4 fields, not 0");
  refused(t.create_index("players", def("x", {"a", "b", "c", "d", "e"})), Errc::invalid_argument,
          "an index has 1 to 4 fields, not 5");
  refused(t.create_index("players", def("x", {"hpp"})), Errc::invalid_argument,
          "index field 'hpp'");
  refused(t.create_index("players", def("x", {"pos"})), Errc::invalid_argument,
          "index field 'pos' is a composite (vec3)");
  refused(t.create_index("players", def("x", {"score", "score"})), Errc::invalid_argument,
          "index field 'score' is repeated");
  refused(t.create_index("players", def("x", {"score"}, IndexType::hash, true)),
          Errc::unique_violation,
          "unique index 'x' of table 'players': records 1 and 2 have the same key (score = 5)");
  refused(t.create_index("players", def("x", {"flag", "score"}, IndexType::ordered, true)),
          Errc::unique_violation,
          "unique index 'x' of table 'players': records 1 and 2 have the same key (flag = false, "
          "score = 5)");
  CHECK(ok(t.describe_indexes("players")).size() == 2);  // the refusals added nothing

  refused(t.drop_index("nope", "x"), Errc::not_found, "table 'nope' does not exist");
  refused(t.drop_index("players", "x"), Errc::not_found,
          "index 'x' of table 'players' does not exist");
  refused(t.drop_index("players", "players_guild_rel"), Errc::conflict,
          "index 'players_guild_rel' of table 'players' is the automatic index of relation 1");
  refused(t.remove_field("players", "score"), Errc::conflict,
          "field 'score' of table 'players' is used by index 'players_score'");
  refused(t.remove_field("players", "pos"), Errc::conflict,
          "field 'pos' of table 'players' is used by index 'players_score'");
  refused(t.drop_type("vec3"), Errc::conflict,
          "type 'vec3' is used by index 'players_score' of table 'players'");
  refused(t.describe_indexes("nope"), Errc::not_found, "table 'nope' does not exist");

  ok(t.drop_index("players", "players_score"));
  ok(t.remove_field("players", "score"));  // free now
  auto v = ok(t.commit());
  check_all(*v);
  CHECK(v->table("players")->indexes().size() == 1);
  auto published = v->table("players")->describe_indexes();  // readers of a published version
  REQUIRE(published.size() == 1);
  CHECK(published[0].name == "players_guild_rel");
  CHECK(published[0].entries == 2);

  // Deleting the last relation from a field drops its automatic index.
  auto v2 = build(v, [](Transaction& u) {
    ok(u.delete_relation(1));
    CHECK(ok(u.describe_indexes("players")).empty());
  });
  CHECK(v2->table("players")->indexes().empty());
  CHECK(v->table("players")->indexes().size() == 1);  // the older version keeps its own
}

TEST_CASE(
    "indexes: unique keys are checked at commit, a swap commits, a duplicate publishes nothing",
    "[indexes]") {
  auto db = build(game_db(), [](Transaction& t) {
    ok(t.insert("players", player(t, "bob", 1)));
    ok(t.insert("players", player(t, "amy", 2)));
    ok(t.create_index("players", def("players_name", {"name"}, IndexType::ordered, true)));
    ok(t.create_index("players", def("players_score", {"score"}, IndexType::hash, true)));
  });
  SECTION("a second bob fails at commit, naming the index, both ids and the key") {
    Transaction t(db);
    ok(t.insert("players", player(t, "bob", 3)));
    auto v = t.commit();
    refused(v, Errc::unique_violation,
            "unique index 'players_name' of table 'players': records 1 and 3 have the same key "
            "(name = \"bob\")");
    check_all(*db);
    CHECK(db->table("players")->count() == 2);
  }
  SECTION("check_unique says so before commit") {
    Transaction t(db);
    auto id = ok(t.insert("players", player(t, "cat", 2)));
    refused(t.check_unique(), Errc::unique_violation,
            "unique index 'players_score' of table 'players': records 2 and 3 have the same key "
            "(score = 2)");
    ok(t.update("players", id, player(t, "cat", 9)));
    ok(t.check_unique());
    check_all(*ok(t.commit()));
  }
  SECTION("two records swap their unique values in one transaction") {
    auto v = build(db, [](Transaction& t) {
      ok(t.update("players", 1, player(t, "amy", 2)));
      ok(t.update("players", 2, player(t, "bob", 1)));
    });
    check_all(*v);
    CHECK(v->table("players")->get(1)->get<std::string_view>("name").value() == "amy");
  }
  SECTION("an update into a taken value, and a delete that frees it first") {
    Transaction t(db);
    ok(t.update("players", 2, player(t, "bob", 2)));
    refused(t.commit(), Errc::unique_violation,
            "records 1 and 2 have the same key (name = \"bob\")");
    auto v = build(db, [](Transaction& u) {
      ok(u.erase("players", 1));
      ok(u.update("players", 2, player(u, "bob", 2)));
    });
    check_all(*v);
  }
  SECTION("a table written directly is checked when its indexes are rebuilt") {
    Transaction t(db);
    TableVersion* w = ok(t.writable_table("players"));
    auto span = ok(w->mutable_chunk_span(0));
    auto score = FieldAccessor<std::int32_t>::resolve(*w->schema(), "score").value();
    score.set(span.records + span.record_size, 1);  // record 2 gets record 1's score
    refused(t.commit(), Errc::unique_violation,
            "unique index 'players_score' of table 'players': records 1 and 2");
  }
}

TEST_CASE(
    "indexes: random writes, transactions, cascades, parallel updates and schema changes keep "
    "every index equal to a rebuild",
    "[indexes]") {
  std::mt19937_64 rng(12345);
  auto db = build(game_db(), [](Transaction& t) {
    ok(t.create_index("players", def("p_name", {"name"}, IndexType::ordered, true)));
    ok(t.create_index("players", def("p_score_x", {"score", "pos.x"})));
    ok(t.create_index("players", def("p_flag_score", {"flag", "score"}, IndexType::hash)));
    ok(t.create_index("guilds", def("g_tag", {"tag"}, IndexType::hash, true)));
    ok(t.create_index("guilds", def("g_rank", {"rank"})));
  });
  const std::vector<std::string> names = {
      "a", "b", "c", "ab", "abc", "bob", "amy", "zed", "z",  "q",  "r",  "s",  "t",  "u",  "v",
      "w", "x", "y", "aa", "bb",  "cc",  "dd",  "ee",  "ff", "gg", "hh", "ii", "jj", "kk", "ll"};
  const std::vector<float> xs = {-0.0f, 0.0f, 1.5f, -2.25f, 1e30f, -1e-30f};
  auto pick = [&](const TableVersion* t) -> std::uint64_t {
    if (!t || t->count() == 0) return 0;
    for (int tries = 0; tries < 20; ++tries) {
      auto s = rng() % t->slots();
      if (t->slot_alive(s)) return t->slot_unchecked(s).id();
    }
    return 0;
  };
  int committed = 0, unique_failures = 0, extra = 0;
  std::vector<std::shared_ptr<const DbVersion>> kept;
  for (int step = 0; step < 1500; ++step) {
    Transaction t(db);
    const int ops = 1 + static_cast<int>(rng() % 4);
    bool abandon = rng() % 10 == 0;
    for (int o = 0; o < ops; ++o) {
      const int what = static_cast<int>(rng() % 100);
      const TableVersion* players = t.table("players");
      const TableVersion* guilds = t.table("guilds");
      if (what < 30) {
        std::uint64_t g = rng() % 3 ? pick(guilds) : 0;
        (void)t.insert("players", player(t, names[rng() % names.size()],
                                         static_cast<std::int32_t>(rng() % 21) - 10,
                                         xs[rng() % xs.size()], g));
      } else if (what < 40) {
        RecordBuffer r(*guilds->schema());
        ok(r.set<std::uint32_t>("tag", static_cast<std::uint32_t>(rng() % 40)));
        ok(r.set<std::int16_t>("rank", static_cast<std::int16_t>(rng() % 7) - 3));
        ok(r.set<std::uint64_t>("boss", rng() % 2 ? pick(players) : 0));
        (void)t.insert("guilds", r.bytes());
      } else if (what < 60) {
        if (auto id = pick(players)) {
          RecordBuffer r(*players->get(id));
          if (rng() % 2) ok(r.set_str("name", names[rng() % names.size()]));
          if (rng() % 2)
            ok(r.set<std::int32_t>("score", static_cast<std::int32_t>(rng() % 21) - 10));
          if (rng() % 2) ok(r.set<float>("pos.x", xs[rng() % xs.size()]));
          if (rng() % 4 == 0) ok(r.set<std::uint64_t>("guild", pick(guilds)));
          ok(t.update("players", id, r.bytes()));
        }
      } else if (what < 67) {
        if (auto id = pick(players)) ok(t.erase("players", id));  // guilds.boss set to zero
      } else if (what < 72) {
        if (auto id = pick(guilds)) ok(t.erase("guilds", id));  // its players cascade
      } else if (what < 76) {
        // Swap two players' names: unique keys may collide half-way.
        auto a = pick(players), b = pick(players);
        if (a && b && a != b) {
          RecordBuffer ra(*players->get(a)), rb(*players->get(b));
          auto na = std::string(players->get(a)->get<std::string_view>("name").value());
          auto nb = std::string(players->get(b)->get<std::string_view>("name").value());
          ok(ra.set_str("name", nb));
          ok(rb.set_str("name", na));
          ok(t.update("players", a, ra.bytes()));
          ok(t.update("players", b, rb.bytes()));
        }
      } else if (what < 80) {
        // A parallel update (single-threaded here): every score + 1 on some chunks.
        auto work = ok(t.begin_parallel_update("players"));
        auto score =
            FieldAccessor<std::int32_t>::resolve(*t.table("players")->schema(), "score").value();
        for (auto& w : work) {
          ok(w.fill());
          auto span = w.span();
          if (rng() % 2)
            for (std::uint32_t i = 0; i < span.count; ++i) {
              std::byte* rec = span.records + std::size_t{i} * span.record_size;
              score.set(rec, (score.get(rec) + 1) % 12);
            }
        }
        ok(t.finish_parallel_update("players", work));
      } else if (what < 83) {
        // Direct writes: the indexes are rebuilt at the next operation.
        TableVersion* w = ok(t.writable_table("guilds"));
        if (w->used_chunk_count()) {
          auto span = ok(w->mutable_chunk_span(0));
          auto rank = FieldAccessor<std::int16_t>::resolve(*w->schema(), "rank").value();
          for (std::uint32_t i = 0; i < span.count; ++i)
            rank.set(span.records + std::size_t{i} * span.record_size,
                     static_cast<std::int16_t>(rng() % 5));
        }
      } else if (what < 87) {
        if (rng() % 2)
          ok(t.add_field("players", FieldSpec(nm("extra", extra++), "i32")));
        else {
          for (const auto& f : players->schema()->fields())
            if (f.name.starts_with("extra")) {
              ok(t.remove_field("players", f.name));
              break;
            }
        }
      } else if (what < 92) {
        if (players->find_index("p_tmp"))
          ok(t.drop_index("players", "p_tmp"));
        else
          ok(t.create_index("players", def("p_tmp", {"pos.x", "flag"},
                                           rng() % 2 ? IndexType::hash : IndexType::ordered)));
      } else if (what < 95) {
        refused(t.remove_field("players", "name"), Errc::conflict, "is used by index 'p_name'");
      } else {
        if (guilds->count()) {
          // Re-create a relation: its automatic index goes and comes back.
          const auto rels = t.relations();
          for (const auto& [id, r] : rels)
            if (r.from_table == "players") {
              ok(t.delete_relation(id));
              ok(t.create_relation("players", "guild", "guilds", OnDelete::cascade));
              break;
            }
        }
      }
    }
    if (abandon) continue;  // dropped: the base is untouched
    auto v = t.commit();
    if (!v) {
      CHECK(v.code() == Errc::unique_violation);
      ++unique_failures;
      continue;  // nothing published: db stays
    }
    db = *v;
    ++committed;
    check_all(*db);
    // Brute force: the unique name index holds each name once, and as many as records.
    std::set<std::string> seen;
    for (const RecordView r : *db->table("players"))
      REQUIRE(seen.insert(std::string(r.get<std::string_view>("name").value())).second);
    if (step % 100 == 0) kept.push_back(db);
  }
  for (const auto& k : kept) check_all(*k);  // older versions keep their own indexes
  CHECK(committed > 500);
  CHECK(unique_failures > 20);
}

TEST_CASE(
    "indexes: snapshots store definitions and loading rebuilds; an older-format file loads with "
    "the relation indexes",
    "[indexes][snapshot]") {
  tickdb::test::TempDir dir;
  auto db = build(game_db(), [](Transaction& t) {
    auto g = ok(t.insert("guilds", [&] {
      RecordBuffer r(*t.table("guilds")->schema());
      ok(r.set<std::uint32_t>("tag", 7));
      return std::vector<std::byte>(r.bytes().begin(), r.bytes().end());
    }()));
    for (int i = 0; i < 3000; ++i)
      ok(t.insert("players",
                  player(t, nm("p", i), i % 17, static_cast<float>(i % 5), i % 3 ? g : 0)));
    ok(t.create_index("players", def("p_name", {"name"}, IndexType::hash, true)));
    ok(t.create_index("players", def("p_score", {"score", "pos.x"})));
  });
  const std::string path = dir.file("s.tds");
  ok(write_snapshot(*db, path, 3));
  auto loaded = ok(read_snapshot(path));
  CHECK(loaded.info.format == 2);
  tickdb::test::require_same_db(*db, *loaded.db);
  check_all(*loaded.db);
  auto names = [](const DbVersion& d) {
    std::vector<std::string> out;
    for (const auto& ix : d.table("players")->indexes())
      out.push_back(ix.name() + (ix.def().auto_ ? "*" : "") + ":" + std::to_string(ix.entries()));
    return out;
  };
  CHECK(names(*loaded.db) ==
        std::vector<std::string>{"p_name:3000", "p_score:3000", "players_guild_rel*:3000"});

  SECTION("replaying writes over the loaded snapshot keeps the indexes right") {
    auto v = loaded.db;
    for (int i = 0; i < 50; ++i)
      v = build(v, [&](Transaction& t) {
        ok(t.update("players", 10 + i, player(t, nm("q", i), -i)));
        ok(t.erase("players", 2000 + i));
        ok(t.insert("players", player(t, nm("new", i), i, 0, 1)));
      });
    v = build(v, [](Transaction& t) { ok(t.erase("guilds", 1)); });  // cascades to 2/3 of them
    check_all(*v);
    CHECK(v->table("players")->count() < 1100);
  }
  SECTION("a format 1 file (no index definitions) loads with the automatic indexes") {
    auto plain = build(game_db(), [](Transaction& t) {
      for (int i = 0; i < 100; ++i) ok(t.insert("players", player(t, nm("p", i), i)));
    });
    ok(write_snapshot(*plain, path, 3));
    std::string bytes;
    {
      std::ifstream f(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(f), {});
    }
    REQUIRE(bytes.size() > 64);
    bytes[8] = 1;  // the format follows the magic; then the checksum over all before the trailer
    const std::uint64_t sum = XXH3_64bits(bytes.data(), bytes.size() - 16);
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f << bytes;
    }
    auto old = ok(read_snapshot(path));
    CHECK(old.info.format == 1);
    tickdb::test::require_same_db(*plain, *old.db);
    check_all(*old.db);
    CHECK(names(*old.db) == std::vector<std::string>{"players_guild_rel*:100"});
    CHECK(names(*old.db)[0] == names(*plain)[0]);
  }
  SECTION("a catalog with a bad index definition is refused") {
    json cj = catalog_to_json(*db);
    cj["tables"][1]["indexes"][0]["fields"] = {"nope"};
    refused(catalog_from_json(cj), Errc::invalid_argument,
            "table 'players': index 'p_name': index 'p_name': index field 'nope'");
    cj["tables"][1]["indexes"][0] = {{"name", "x"}, {"fields", {"score"}}, {"type", "btree"}};
    refused(catalog_from_json(cj), Errc::invalid_argument,
            "index 'type' must be \"ordered\" or \"hash\", not 'btree'");
    cj["tables"][1]["indexes"][0] = {{"name", "x"}, {"fields", {"score"}}, {"colour", 1}};
    refused(catalog_from_json(cj), Errc::invalid_argument, "unknown index key 'colour'");
    cj["tables"][1]["indexes"][0] = {{"name", "x"}, {"fields", "score"}};
    refused(catalog_from_json(cj), Errc::invalid_argument,
            "index 'fields' must be an array of field names");
    cj["tables"][1]["indexes"][0] = {{"name", "x"}, {"fields", {"score"}}, {"unique", 1}};
    refused(catalog_from_json(cj), Errc::invalid_argument, "index 'unique' must be true or false");
  }
}

TEST_CASE("indexes: a cascade down a chain of 10,000 records is not quadratic",
          "[indexes][relations]") {
  auto chain = [](int n) {
    auto db = build(DbVersion::empty(), [&](Transaction& t) {
      ok(t.create_table("node", {{"parent", "u64"}}));
      ok(t.create_relation("node", "parent", "node", OnDelete::cascade));
      for (int i = 0; i < n; ++i) {
        RecordBuffer r(*t.table("node")->schema());
        ok(r.set<std::uint64_t>("parent", static_cast<std::uint64_t>(i)));  // 0: the root has none
        ok(t.insert("node", r.bytes()));
      }
    });
    const auto start = std::chrono::steady_clock::now();
    Transaction t(db);
    ok(t.erase("node", 1));
    auto v = ok(t.commit());
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(v->table("node")->count() == 0);
    check_all(*v);
    return s;
  };
  const double small = chain(2500);
  const double big = chain(10000);
  INFO("2,500: " << small << " s, 10,000: " << big << " s");
  // Quadratic would be 16x; n log n about 4.5x. Generous for sanitizer builds and noise.
  CHECK(big < 10 * small + 0.05);
  CHECK(big < 2.0);
}

TEST_CASE(
    "indexes: readers of published versions walk their indexes while a writer publishes new ones",
    "[indexes][cow]") {
  auto db = build(game_db(), [](Transaction& t) {
    for (int i = 0; i < 2000; ++i) ok(t.insert("players", player(t, nm("p", i), i % 50)));
    ok(t.create_index("players", def("p_score", {"score"})));
    ok(t.create_index("players", def("p_name", {"name"}, IndexType::hash, true)));
  });
  std::mutex mu;  // guards `current` only: readers copy the pointer, then read lock-free
  std::shared_ptr<const DbVersion> current = db;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      while (!stop.load()) {
        std::shared_ptr<const DbVersion> v;
        {
          std::lock_guard<std::mutex> g(mu);
          v = current;
        }
        const TableVersion* t = v->table("players");
        const TableIndex* ix = t->find_index("p_score");
        std::size_t n = 0;
        for (auto c = ix->ordered().begin(); c.valid(); c.next()) ++n;
        if (n != t->count()) bad.fetch_add(1);
      }
    });
  for (int i = 0; i < 300; ++i) {
    auto next = build(current, [&](Transaction& t) {
      ok(t.update("players", static_cast<std::uint64_t>(1 + i), player(t, nm("q", i), -i)));
      ok(t.erase("players", static_cast<std::uint64_t>(1001 + i)));
      ok(t.insert("players", player(t, nm("n", i), i)));
    });
    std::lock_guard<std::mutex> g(mu);
    current = next;
  }
  stop.store(true);
  for (auto& th : readers) th.join();
  CHECK(bad.load() == 0);
  check_all(*current);
  check_all(*db);  // the first version is whole
}
