// Whole records and single fields: every type at its extremes, byte-exact; zero-copy views
// and accessors; checked access at the edge.
#include <atomic>
#include <cfloat>
#include <cstdlib>
#include <limits>
#include <new>

#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;

// Counts heap allocations, to prove the read path allocates nothing per record. The
// sanitizers bring their own operator new, so the count is taken in plain builds only (the
// release test run covers it). The replacement new takes its memory from malloc, so the
// matching delete frees it with free: GCC cannot see that pairing, hence the pragma.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kCountsAllocations = false;
namespace {
std::atomic<std::size_t> g_allocs{0};
}
#else
constexpr bool kCountsAllocations = true;
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<std::size_t> g_allocs{0};
}
void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

std::shared_ptr<const DbVersion> all_types_db() {
  return commit(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_type("vec3", {{"x", "f32"}, {"y", "f32"}, {"z", "f32"}}));
    ok(t.create_type("body", {{"pos", "vec3"}, {"mass", "f64"}}));
    ok(t.create_table("all", {{"b", "bool"}, {"i8", "i8"}, {"i16", "i16"}, {"i32", "i32"}, {"i64", "i64"},
                              {"u8", "u8"}, {"u16", "u16"}, {"u32", "u32"}, {"u64", "u64"}, {"f32", "f32"},
                              {"f64", "f64"}, {"s", "str", 8}, {"body", "body"}}));
  });
}

template <class T>
void roundtrip(const char* field, T v) {
  auto db = all_types_db();
  const TableSchema& s = *db->table("all")->schema();
  RecordBuffer rec(s);
  REQUIRE(rec.set<T>(field, v).is_ok());
  // The bytes at the field's offset are exactly the value's bytes.
  auto loc = s.locate(field).value();
  if constexpr (!std::is_same_v<T, bool>) {
    T raw;
    std::memcpy(&raw, rec.bytes().data() + loc.offset, sizeof(T));
    CHECK(std::memcmp(&raw, &v, sizeof(T)) == 0);
  }
  Transaction txn(db);
  auto id = txn.insert("all", rec.bytes());
  REQUIRE(id.is_ok());
  auto v2 = txn.commit().value();
  RecordView view = *v2->table("all")->get(*id);
  CHECK(std::memcmp(view.data(), rec.bytes().data(), s.record_size()) == 0);
  T back = view.get<T>(field).value();
  CHECK(std::memcmp(&back, &v, sizeof(T)) == 0);
}

}  // namespace

TEST_CASE("every type round-trips byte-exact at its extremes", "[types][storage]") {
  roundtrip<bool>("b", true);
  roundtrip<bool>("b", false);
  roundtrip<std::int8_t>("i8", std::numeric_limits<std::int8_t>::min());
  roundtrip<std::int8_t>("i8", std::numeric_limits<std::int8_t>::max());
  roundtrip<std::int16_t>("i16", std::numeric_limits<std::int16_t>::min());
  roundtrip<std::int16_t>("i16", std::numeric_limits<std::int16_t>::max());
  roundtrip<std::int32_t>("i32", std::numeric_limits<std::int32_t>::min());
  roundtrip<std::int32_t>("i32", std::numeric_limits<std::int32_t>::max());
  roundtrip<std::int64_t>("i64", std::numeric_limits<std::int64_t>::min());
  roundtrip<std::int64_t>("i64", std::numeric_limits<std::int64_t>::max());
  roundtrip<std::uint8_t>("u8", 255);
  roundtrip<std::uint16_t>("u16", 65535);
  roundtrip<std::uint32_t>("u32", std::numeric_limits<std::uint32_t>::max());
  roundtrip<std::uint64_t>("u64", std::numeric_limits<std::uint64_t>::max());
  roundtrip<float>("f32", FLT_MAX);
  roundtrip<float>("f32", -FLT_MAX);
  roundtrip<float>("f32", FLT_TRUE_MIN);
  roundtrip<float>("f32", -0.0f);
  roundtrip<double>("f64", DBL_MAX);
  roundtrip<double>("f64", DBL_TRUE_MIN);
  roundtrip<float>("body.pos.z", 1.25f);
  roundtrip<double>("body.mass", -1e300);
}

TEST_CASE("fields are packed with no padding and read through unaligned offsets", "[types][cache]") {
  auto db = all_types_db();
  const TableSchema& s = *db->table("all")->schema();
  std::uint32_t sum = 0, offset = 0;
  for (const auto& f : s.fields()) {
    CHECK(f.offset == offset);
    offset += f.type.size;
    sum += f.type.size;
  }
  CHECK(s.record_size() == sum);
  CHECK(s.record_size() == 1 + 1 + 2 + 4 + 8 + 1 + 2 + 4 + 8 + 4 + 8 + 8 + 20);
  // i64 sits at offset 8, u64 at 23, f64 at 35: odd offsets, read via memcpy (UBSan-clean).
  CHECK(s.locate("u64")->offset == 23);
  CHECK(s.locate("body.mass")->offset == s.locate("body")->offset + 12);
}

TEST_CASE("strings are stored zero-padded and read back up to the padding", "[types]") {
  auto db = all_types_db();
  RecordBuffer rec(*db->table("all")->schema());
  REQUIRE(rec.set_str("s", "abcdefgh").is_ok());  // exactly 8 bytes
  CHECK(RecordView(rec.bytes().data(), 1, &rec.schema()).get<std::string_view>("s").value() == "abcdefgh");
  REQUIRE(rec.set_str("s", "ab").is_ok());
  auto off = rec.schema().locate("s")->offset;
  for (std::uint32_t i = 2; i < 8; ++i) CHECK(rec.bytes()[off + i] == std::byte{0});
  CHECK(RecordView(rec.bytes().data(), 1, &rec.schema()).get<std::string_view>("s").value() == "ab");
  CHECK(rec.set_str("s", "abcdefghi").code() == Errc::invalid_argument);
  CHECK(rec.set_str("s", std::string_view("a\0b", 3)).code() == Errc::invalid_argument);
  CHECK(rec.set_str("s", "\xff").code() == Errc::invalid_argument);
  CHECK(rec.set_str("i32", "x").code() == Errc::invalid_argument);
}

TEST_CASE("a view points into the published version's memory", "[zero-copy]") {
  auto db = things_db(1000);
  const TableVersion* t = db->table("things");
  RecordView a = *t->get(700);
  RecordView b = *t->get(700);
  CHECK(a.data() == b.data());
  const std::uint64_t slot = *t->find_slot(700);
  const Chunk* c = t->chunk(slot / t->records_per_chunk());
  CHECK(a.data() >= c->records());
  CHECK(a.data() < c->records() + std::size_t{c->capacity()} * 32);
  CHECK(a.data() == c->records() + (slot % t->records_per_chunk()) * 32);
}

TEST_CASE("an accessor is resolved once and applied to many records with no allocation", "[zero-copy]") {
  auto db = things_db(20000);
  const TableVersion* t = db->table("things");
  auto hp = FieldAccessor<std::int32_t>::resolve(*t->schema(), "hp");
  auto x = FieldAccessor<float>::resolve(*t->schema(), "pos.x");
  REQUIRE(hp.is_ok());
  REQUIRE(x.is_ok());
  CHECK(hp->offset() == 0);
  CHECK(x->offset() == 4);
  const std::size_t before = g_allocs.load();
  std::int64_t sum = 0;
  float fx = 0;
  std::uint64_t n = 0;
  for (RecordView r : *t) {
    sum += hp->get(r.data());
    fx += x->get(r.data());
    ++n;
  }
  const std::size_t after = g_allocs.load();
  if (kCountsAllocations) CHECK(after == before);
  CHECK(n == 20000);
  CHECK(sum == 20000ll * 19999 / 2);
  CHECK(fx == 0.0f);
}

TEST_CASE("checked access refuses bad indexes, names, types and ranges", "[bounds]") {
  auto db = things_db(10);
  const TableVersion* t = db->table("things");
  const TableSchema& s = *t->schema();
  // record index
  CHECK(t->at_slot(9).is_ok());
  CHECK(t->at_slot(10).code() == Errc::not_found);
  CHECK(t->at_slot(~std::uint64_t{0}).code() == Errc::not_found);
  CHECK_FALSE(t->get(0).has_value());
  CHECK_FALSE(t->get(11).has_value());
  // field index and name
  CHECK(s.field_at(4).is_ok());
  CHECK(s.field_at(5).code() == Errc::not_found);
  CHECK(FieldAccessor<std::int32_t>::resolve(s, std::size_t{99}).code() == Errc::not_found);
  CHECK(FieldAccessor<std::int32_t>::resolve(s, "nope").code() == Errc::not_found);
  CHECK(FieldAccessor<float>::resolve(s, "pos.w").code() == Errc::not_found);
  CHECK(FieldAccessor<float>::resolve(s, "hp.x").code() == Errc::invalid_argument);
  // type mismatch: an f32 field read as i64, an i32 read as u32, a composite read as a scalar
  auto mismatch = FieldAccessor<std::int64_t>::resolve(s, "speed");
  CHECK(mismatch.code() == Errc::invalid_argument);
  CHECK_THAT(mismatch.message(), Catch::Contains("f32"));
  CHECK(FieldAccessor<std::uint32_t>::resolve(s, "hp").code() == Errc::invalid_argument);
  CHECK(FieldAccessor<float>::resolve(s, "pos").code() == Errc::invalid_argument);
  RecordView r = *t->get(1);
  CHECK(r.get<std::int64_t>("speed").code() == Errc::invalid_argument);
  CHECK(r.get<std::int32_t>(std::size_t{0}).is_ok());
  CHECK(r.get<std::int32_t>(std::size_t{5}).code() == Errc::not_found);
  // offset/size beyond the record
  CHECK(r.raw(0, 32).is_ok());
  CHECK(r.raw(28, 4).is_ok());
  CHECK(r.raw(28, 5).code() == Errc::invalid_argument);
  CHECK(r.raw(33, 0).code() == Errc::invalid_argument);
  CHECK(r.raw(~std::size_t{0}, 2).code() == Errc::invalid_argument);
  RecordBuffer buf(s);
  std::byte four[4]{};
  CHECK(buf.write_raw(28, four).is_ok());
  CHECK(buf.write_raw(29, four).code() == Errc::invalid_argument);
}

TEST_CASE("writes of invalid bytes are refused whole", "[bounds][atomic]") {
  auto db = commit(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("t", {{"b", "bool"}, {"f", "f32"}, {"s", "str", 4}}));
  });
  Transaction txn(db);
  std::vector<std::byte> rec(9, std::byte{0});
  rec[0] = std::byte{2};  // a bool that is neither 0 nor 1
  CHECK(txn.insert("t", rec).code() == Errc::invalid_argument);
  rec[0] = std::byte{1};
  store<float>(rec.data() + 1, std::numeric_limits<float>::quiet_NaN());
  CHECK(txn.insert("t", rec).code() == Errc::invalid_argument);
  store<float>(rec.data() + 1, 1.0f);
  rec[5] = std::byte{'a'};
  rec[6] = std::byte{0};
  rec[7] = std::byte{'b'};  // garbage after the padding starts
  CHECK(txn.insert("t", rec).code() == Errc::invalid_argument);
  rec[7] = std::byte{0};
  CHECK(txn.insert("t", std::span(rec).first(8)).code() == Errc::invalid_argument);  // short
  CHECK(txn.table("t")->count() == 0);
  CHECK(txn.insert("t", rec).value() == 1);
}
