// Copy-on-write versions and cache layout: writes copy only what they touch; appends copy
// nothing; old versions never change; records of a chunk are adjacent; chunks are aligned.
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;

namespace {
std::vector<const Chunk*> chunks_of(const TableVersion& t) {
  std::vector<const Chunk*> out;
  for (std::size_t k = 0; k < t.chunk_count(); ++k) out.push_back(t.chunk(k));
  return out;
}
}  // namespace

TEST_CASE("an update copies only the chunk it touches", "[cow]") {
  auto v1 = things_db(10000);
  const auto before = chunks_of(*v1->table("things"));
  REQUIRE(before.size() > 3);
  auto v2 = commit(v1, [](Transaction& t) {
    RecordBuffer r(*t.get("things", 5000));
    ok(r.set<std::int32_t>("hp", -1));
    ok(t.update("things", 5000, r.bytes()));
  });
  const auto after = chunks_of(*v2->table("things"));
  REQUIRE(after.size() == before.size());
  const std::size_t touched =
      *v1->table("things")->find_slot(5000) / v1->table("things")->records_per_chunk();
  for (std::size_t k = 0; k < after.size(); ++k) {
    if (k == touched)
      CHECK(after[k] != before[k]);
    else
      CHECK(after[k] == before[k]);
  }
  CHECK(v2->table("things")->get(5000)->get<std::int32_t>("hp").value() == -1);
  // the holder of the old version sees it unchanged
  CHECK(v1->table("things")->get(5000)->get<std::int32_t>("hp").value() == 4999);
}

TEST_CASE("a transaction copies a chunk once however often it writes it", "[cow]") {
  auto v1 = things_db(1000);
  Transaction t(v1);
  for (int i = 0; i < 50; ++i) {
    RecordBuffer r(*t.get("things", 10));
    ok(r.set<std::int32_t>("hp", i));
    ok(t.update("things", 10, r.bytes()));
  }
  const Chunk* c = t.table("things")->chunk(0);
  RecordBuffer r(*t.get("things", 11));
  ok(r.set<std::int32_t>("hp", 5));
  ok(t.update("things", 11, r.bytes()));
  CHECK(t.table("things")->chunk(0) == c);
  CHECK(t.table("things")->chunk(0) != v1->table("things")->chunk(0));
}

TEST_CASE("an append copies nothing that is already there", "[cow]") {
  auto v1 = things_db(1500);  // the last chunk is partly filled
  const auto before = chunks_of(*v1->table("things"));
  auto v2 = commit(v1, [](Transaction& t) { ok(t.insert("things", rec32(42)).status()); });
  const auto after = chunks_of(*v2->table("things"));
  REQUIRE(after.size() == before.size());
  for (std::size_t k = 0; k < after.size(); ++k) CHECK(after[k] == before[k]);
  CHECK(v2->table("things")->count() == 1501);
  CHECK(v1->table("things")->count() == 1500);
  CHECK_FALSE(v1->table("things")->get(1501).has_value());
  CHECK(v2->table("things")->get(1501)->get<std::int32_t>("hp").value() == 42);
}

TEST_CASE("two writers branching from one version never see each other's appends", "[cow]") {
  auto base = things_db(100);
  Transaction a(base), b(base);
  ok(a.insert("things", rec32(1)).status());
  ok(b.insert("things", rec32(2)).status());  // the same slot: b must copy, not overwrite
  ok(b.insert("things", rec32(3)).status());
  auto va = a.commit().value();
  auto vb = b.commit().value();
  CHECK(va->table("things")->count() == 101);
  CHECK(vb->table("things")->count() == 102);
  CHECK(va->table("things")->get(101)->get<std::int32_t>("hp").value() == 1);
  CHECK(vb->table("things")->get(101)->get<std::int32_t>("hp").value() == 2);
  CHECK(vb->table("things")->get(102)->get<std::int32_t>("hp").value() == 3);
  CHECK(base->table("things")->count() == 100);
  // An abandoned transaction's in-place append leaves the base usable for the next writer.
  {
    Transaction dropped(base);
    ok(dropped.insert("things", rec32(9)).status());
  }
  auto vc = commit(base, [](Transaction& t) { ok(t.insert("things", rec32(7)).status()); });
  CHECK(vc->table("things")->get(101)->get<std::int32_t>("hp").value() == 7);
  CHECK(va->table("things")->get(101)->get<std::int32_t>("hp").value() == 1);
}

TEST_CASE("a delete copies one chunk and old versions keep the record", "[cow]") {
  auto v1 = things_db(5000);
  auto v2 = commit(v1, [](Transaction& t) { ok(t.erase("things", 4000)); });
  const auto a = chunks_of(*v1->table("things"));
  const auto b = chunks_of(*v2->table("things"));
  std::size_t differ = 0;
  for (std::size_t k = 0; k < a.size(); ++k) differ += a[k] != b[k];
  CHECK(differ == 1);
  CHECK(v1->table("things")->get(4000).has_value());
  CHECK_FALSE(v2->table("things")->get(4000).has_value());
}

TEST_CASE("records of a chunk are adjacent and chunks are cache-line aligned", "[cache]") {
  auto db = things_db(3000);
  const TableVersion* t = db->table("things");
  CHECK(t->record_size() == 4 + 12 + 8 + 4 + 4);
  std::uint32_t sum = 0;
  for (const auto& f : t->schema()->fields()) sum += f.type.size;
  CHECK(t->record_size() == sum);
  for (std::size_t k = 0; k < t->used_chunk_count(); ++k) {
    ChunkSpan s = t->chunk_span(k);
    CHECK(reinterpret_cast<std::uintptr_t>(s.records) % kCacheLine == 0);
    // What a scan prefetches as it reads this chunk: the next chunk's records, none at the end.
    if (k + 1 < t->used_chunk_count()) {
      CHECK(s.next_records == t->chunk(k + 1)->records());
    } else {
      CHECK(s.next_records == nullptr);
    }
    // slot i+1 starts exactly record_size bytes after slot i
    for (std::uint32_t i = 0; i + 1 < s.count; ++i) {
      RecordView a = t->slot_unchecked(k * t->records_per_chunk() + i);
      RecordView b = t->slot_unchecked(k * t->records_per_chunk() + i + 1);
      REQUIRE(b.data() - a.data() == 32);
    }
  }
  // iteration walks memory forward in record_size steps inside a chunk
  const std::byte* prev = nullptr;
  std::uint64_t adjacent = 0;
  for (RecordView r : *t) {
    if (prev && r.data() == prev + 32) ++adjacent;
    prev = r.data();
  }
  CHECK(adjacent == 3000 - t->used_chunk_count());
  // records per chunk is a power of two, and a chunk holds at least one record
  CHECK((t->records_per_chunk() & (t->records_per_chunk() - 1)) == 0);
  CHECK(records_per_chunk(1u << 20) == 1);
}

TEST_CASE("memory of dead versions is recycled", "[cow][storage]") {
  auto v = things_db(20000);
  const std::size_t pooled_before = chunk_pool_bytes();
  v = commit(v, [](Transaction& t) {
    RecordBuffer r(*t.get("things", 1));
    ok(t.update("things", 1, r.bytes()));
  });
  // the old version's copy of chunk 0 died with it and went to the pool
  CHECK(chunk_pool_bytes() > pooled_before);
  const std::size_t pooled = chunk_pool_bytes();
  v = commit(v, [](Transaction& t) {
    RecordBuffer r(*t.get("things", 2));
    ok(t.update("things", 2, r.bytes()));
  });
  // the next copy took its memory from the pool, and the one it replaced went back
  CHECK(chunk_pool_bytes() == pooled);
}
