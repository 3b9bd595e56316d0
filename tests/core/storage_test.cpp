// Record storage: capacity management, appends across chunks, deletes, slot bounds.
#include <pthread.h>
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;

TEST_CASE("a table is created with a capacity of 0, 1 or many records", "[storage]") {
  for (std::uint64_t cap : {0ull, 1ull, 1000ull, 100000ull}) {
    auto db = commit(DbVersion::empty(), [&](Transaction& t) {
      ok(t.create_table("t", {{"a", "u64"}}, cap));
    });
    const TableVersion* t = db->table("t");
    REQUIRE(t);
    CHECK(t->count() == 0);
    CHECK(t->capacity() >= cap);
    // No more than one chunk of slack.
    CHECK(t->capacity() < cap + t->records_per_chunk());
    if (cap == 0) CHECK(t->chunk_count() == 0);
  }
}

TEST_CASE("reserve grows capacity, shrink_to_fit gives unused chunks back", "[storage]") {
  auto db = things_db(10);
  const auto rpc = db->table("things")->records_per_chunk();
  db = commit(db, [&](Transaction& t) { ok(t.reserve("things", 10 * rpc)); });
  CHECK(db->table("things")->capacity() == 10 * rpc);
  CHECK(db->table("things")->count() == 10);
  // reserve below the capacity changes nothing
  db = commit(db, [&](Transaction& t) { ok(t.reserve("things", 5)); });
  CHECK(db->table("things")->capacity() == 10 * rpc);
  // appends go into the reserved chunks without allocating new ones
  auto chunks_before = db->table("things")->chunk_count();
  db = commit(db, [&](Transaction& t) {
    for (int i = 0; i < 3 * static_cast<int>(rpc); ++i) ok(t.insert("things", rec32(i)));
  });
  CHECK(db->table("things")->chunk_count() == chunks_before);
  db = commit(db, [&](Transaction& t) { ok(t.shrink_to_fit("things")); });
  const TableVersion* t = db->table("things");
  CHECK(t->chunk_count() == t->used_chunk_count());
  CHECK(t->capacity() == 4 * rpc);  // 10 + 3*rpc records fill 4 chunks
  CHECK(t->count() == 10 + 3 * rpc);
  // and the records survived
  CHECK(t->get(1)->get<std::int32_t>("hp").value() == 0);
  CHECK(t->get(11)->get<std::int32_t>("hp").value() == 0);
  CHECK(t->get(12)->get<std::int32_t>("hp").value() == 1);
}

TEST_CASE("a reservation that cannot be satisfied is a clear error, not a crash", "[storage]") {
  auto db = things_db(3);
  Transaction t(db);
  auto s = t.reserve("things", 1'000'000'000'000'000ull);  // 32 PB
  REQUIRE(s.code() == Errc::resource_exhausted);
  CHECK_THAT(s.message(), Catch::Contains("memory"));
  CHECK(t.table("things")->count() == 3);
  CHECK(t.reserve("things", ~std::uint64_t{0}).code() == Errc::resource_exhausted);
  // the transaction is still usable and unchanged by the failed reservations
  ok(t.insert("things", rec32(7)));
  auto v = t.commit();
  REQUIRE(v.is_ok());
  CHECK((*v)->table("things")->count() == 4);
  // creating a table with an impossible capacity fails and creates nothing
  Transaction t2(db);
  CHECK(t2.create_table("huge", {{"a", "str", 4096}}, 1ull << 50).code() ==
        Errc::resource_exhausted);
  CHECK(t2.table("huge") == nullptr);
}

TEST_CASE("appends fill chunk after chunk with rising ids", "[storage]") {
  auto db = things_db();
  const auto rpc = db->table("things")->records_per_chunk();
  const std::uint64_t n = 5 * rpc + 7;
  db = commit(db, [&](Transaction& t) {
    for (std::uint64_t i = 0; i < n; ++i)
      REQUIRE(t.insert("things", rec32(static_cast<std::int32_t>(i))).value() == i + 1);
  });
  const TableVersion* t = db->table("things");
  CHECK(t->count() == n);
  CHECK(t->used_chunk_count() == 6);
  std::uint64_t expect = 1;
  for (RecordView r : *t) {
    REQUIRE(r.id() == expect);
    REQUIRE(r.get<std::int32_t>("hp").value() == static_cast<std::int32_t>(expect - 1));
    ++expect;
  }
  CHECK(expect == n + 1);
}

TEST_CASE("deleted records vanish from lookups and iteration, ids are never reused", "[storage]") {
  auto db = things_db(100);
  db = commit(db, [](Transaction& t) {
    for (std::uint64_t id = 1; id <= 100; id += 3) ok(t.erase("things", id));
    CHECK(t.erase("things", 1).code() == Errc::not_found);
    CHECK(t.erase("things", 101).code() == Errc::not_found);
  });
  const TableVersion* t = db->table("things");
  CHECK(t->count() == 66);
  CHECK_FALSE(t->get(1).has_value());
  CHECK(t->get(2).has_value());
  std::uint64_t seen = 0;
  for (RecordView r : *t) {
    REQUIRE((r.id() - 1) % 3 != 0);
    ++seen;
  }
  CHECK(seen == 66);
  db = commit(db, [](Transaction& t) {
    CHECK(t.insert("things", rec32(1)).value() == 101);
    CHECK(t.insert("things", rec32(1), 100).code() == Errc::already_exists);  // deleted: not reused
    CHECK(t.insert("things", rec32(1), 50).code() == Errc::already_exists);   // live
    CHECK(t.insert("things", rec32(1), 0).code() == Errc::invalid_argument);
    CHECK(t.insert("things", rec32(1), 1000).value() == 1000);
    CHECK(t.insert("things", rec32(1)).value() == 1001);
  });
  // sparse ids are still found by binary search
  CHECK(db->table("things")->get(1000).has_value());
  CHECK_FALSE(db->table("things")->get(999).has_value());
  CHECK(db->table("things")->get(1001).has_value());
}

TEST_CASE("deleting every record of a chunk leaves iteration correct", "[storage]") {
  auto db = things_db();
  const auto rpc = db->table("things")->records_per_chunk();
  db = commit(db, [&](Transaction& t) {
    for (std::uint64_t i = 0; i < 3 * rpc; ++i) ok(t.insert("things", rec32(1)).status());
  });
  db = commit(db, [&](Transaction& t) {
    for (std::uint64_t id = 1; id <= 3 * rpc; ++id)
      if (id <= 2 * rpc || id == 3 * rpc) ok(t.erase("things", id));
  });
  std::vector<std::uint64_t> ids;
  for (RecordView r : *db->table("things")) ids.push_back(r.id());
  REQUIRE(ids.size() == rpc - 1);
  CHECK(ids.front() == 2 * rpc + 1);
  CHECK(ids.back() == 3 * rpc - 1);
  db = commit(db, [&](Transaction& t) {
    for (auto id : ids) ok(t.erase("things", id));
  });
  CHECK(db->table("things")->begin() == db->table("things")->end());
  CHECK(db->table("things")->count() == 0);
}

TEST_CASE("a table with no fields stores ids only", "[storage]") {
  auto db = commit(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("empty", {}));
    for (int i = 0; i < 3; ++i) ok(t.insert("empty", {}).status());
  });
  CHECK(db->table("empty")->record_size() == 0);
  CHECK(db->table("empty")->count() == 3);
  std::uint64_t n = 0;
  for (RecordView r : *db->table("empty")) CHECK(r.id() == ++n);
  CHECK(n == 3);
}

TEST_CASE("iterating past thousands of all-deleted chunks needs no stack", "[storage][bounds]") {
  // Records over 8 KiB: one record per chunk, so every deleted record is an all-dead chunk.
  auto db = commit(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("big", {{"a", "str", 4096}, {"b", "str", 4096}, {"x", "u8"}}));
  });
  REQUIRE(db->table("big")->records_per_chunk() == 1);
  constexpr std::uint64_t kDead = 4000;
  db = commit(db, [](Transaction& t) {
    std::vector<std::byte> rec(8193);
    for (std::uint64_t i = 0; i <= kDead; ++i) ok(t.insert("big", rec).status());
    for (std::uint64_t id = 1; id <= kDead; ++id) ok(t.erase("big", id));
  });
  // Walk the table on a thread with a 256 KiB stack: a walk that recursed per dead chunk
  // would overflow it.
  struct Arg {
    const TableVersion* t;
    std::vector<std::uint64_t> ids;
  } arg{db->table("big"), {}};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t th;
  auto walk = [](void* p) -> void* {
    auto* a = static_cast<Arg*>(p);
    for (RecordView r : *a->t) a->ids.push_back(r.id());
    for (ChunkSpan c : a->t->chunks())
      for (RecordView r : c) a->ids.push_back(r.id());
    return nullptr;
  };
  REQUIRE(pthread_create(&th, &attr, walk, &arg) == 0);
  pthread_join(th, nullptr);
  pthread_attr_destroy(&attr);
  CHECK(arg.ids == std::vector<std::uint64_t>{kDead + 1, kDead + 1});
}
