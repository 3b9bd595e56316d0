// version_diff: the structural diff of two versions of a table and the subscription kinds on
// top of it, checked against a brute-force comparison of the two versions' records by id.
#include "core/version_diff.h"

#include <map>
#include <random>
#include <set>

#include "test_db.h"

using namespace tickdb;
using tickdb::test::commit;
using tickdb::test::ok;

namespace {

using Bytes = std::vector<std::byte>;
using Records = std::map<std::uint64_t, Bytes>;

Records records_of(const TableVersion& t) {
  Records out;
  for (RecordView r : t) out[r.id()] = Bytes(r.data(), r.data() + t.record_size());
  return out;
}

struct Change {
  std::uint64_t id;
  std::optional<Bytes> before, after;
  bool operator==(const Change&) const = default;
};

std::vector<Change> brute_diff(const TableVersion& b, const TableVersion& a) {
  Records rb = records_of(b), ra = records_of(a);
  std::set<std::uint64_t> ids;
  for (auto& [id, _] : rb) ids.insert(id);
  for (auto& [id, _] : ra) ids.insert(id);
  std::vector<Change> out;
  for (std::uint64_t id : ids) {
    Change c{id, {}, {}};
    if (rb.count(id)) c.before = rb[id];
    if (ra.count(id)) c.after = ra[id];
    if (c.before != c.after) out.push_back(c);
  }
  return out;
}

std::vector<Change> real_diff(const TableVersion& b, const TableVersion& a) {
  std::vector<Change> out;
  const std::uint32_t rs = a.record_size();
  auto st = diff_tables(b, a, [&](std::uint64_t id, const std::byte* pb, const std::byte* pa) {
    Change c{id, {}, {}};
    if (pb) c.before = Bytes(pb, pb + rs);
    if (pa) c.after = Bytes(pa, pa + rs);
    out.push_back(c);
  });
  ok(st.status());
  return out;
}

// The expected delta of one subscription, by id over both versions' records.
struct Expected {
  std::vector<std::pair<std::uint64_t, Bytes>> ins, upd;
  std::vector<std::uint64_t> del, out;
};
Expected brute_classify(const TableVersion& b, const TableVersion& a, const CompiledFilter* f,
                        const std::vector<ByteRange>& proj) {
  Records rb = records_of(b), ra = records_of(a);
  std::set<std::uint64_t> ids;
  for (auto& [id, _] : rb) ids.insert(id);
  for (auto& [id, _] : ra) ids.insert(id);
  Expected e;
  for (std::uint64_t id : ids) {
    const bool in_b = rb.count(id), in_a = ra.count(id);
    const bool was = in_b && (!f || f->match(rb[id].data(), id));
    const bool is = in_a && (!f || f->match(ra[id].data(), id));
    if (!was && is) e.ins.emplace_back(id, ra[id]);
    if (was && !in_a) e.del.push_back(id);
    if (was && in_a && !is) e.out.push_back(id);
    if (was && is) {
      bool differ = false;
      if (proj.empty()) differ = rb[id] != ra[id];
      for (const ByteRange& r : proj)
        differ |= std::memcmp(rb[id].data() + r.offset, ra[id].data() + r.offset, r.size) != 0;
      if (differ) e.upd.emplace_back(id, ra[id]);
    }
  }
  return e;
}

void require_delta_is(const SubscriptionDelta& d, const Expected& e, std::uint32_t rs) {
  auto rows = [&](const std::vector<RecordView>& v) {
    std::vector<std::pair<std::uint64_t, Bytes>> out;
    for (const RecordView& r : v) out.emplace_back(r.id(), Bytes(r.data(), r.data() + rs));
    return out;
  };
  CHECK(rows(d.ins) == e.ins);
  CHECK(rows(d.upd) == e.upd);
  CHECK(d.del == e.del);
  CHECK(d.out == e.out);
}

// The things table (32 bytes: hp i32 @0, pos vec3 @4, owner u64 @16, tag u32 @24, speed f32
// @28), optionally padded with a str field so that a chunk holds only a few records.
std::shared_ptr<const DbVersion> make_table(std::uint32_t pad) {
  return commit(DbVersion::empty(), [&](Transaction& t) {
    ok(t.create_type("vec3", {{"x", "f32"}, {"y", "f32"}, {"z", "f32"}}));
    std::vector<FieldSpec> fields{
        {"hp", "i32"}, {"pos", "vec3"}, {"owner", "u64"}, {"tag", "u32"}, {"speed", "f32"}};
    if (pad) fields.emplace_back("pad", "str", pad);
    ok(t.create_table("things", fields));
  });
}

// Sets one of the first five fields of a record to a small random value (small ranges, so
// filters flip often and an update may well write the value already there).
void set_random_field(std::byte* rec, std::mt19937_64& rng) {
  const int v = static_cast<int>(rng() % 6);
  switch (rng() % 5) {
    case 0:
      store<std::int32_t>(rec + 0, v);
      break;
    case 1:
      store<float>(rec + 4 + 4 * (rng() % 3), static_cast<float>(v));
      break;
    case 2:
      store<std::uint64_t>(rec + 16, static_cast<std::uint64_t>(v));
      break;
    case 3:
      store<std::uint32_t>(rec + 24, static_cast<std::uint32_t>(v));
      break;
    default:
      store<float>(rec + 28, static_cast<float>(v));
      break;
  }
}

Bytes random_record(const TableSchema& s, std::mt19937_64& rng) {
  RecordBuffer r(s);
  for (int i = 0; i < 3; ++i) set_random_field(r.data(), rng);
  return Bytes(r.bytes().begin(), r.bytes().end());
}

std::uint64_t random_live_id(const TableVersion& t, std::mt19937_64& rng) {
  if (t.count() == 0) return 0;
  for (;;) {
    const std::uint64_t slot = rng() % t.slots();
    if (t.slot_alive(slot)) return t.slot_unchecked(slot).id();
  }
}

// One random transaction over `things`.
std::shared_ptr<const DbVersion> random_txn(std::shared_ptr<const DbVersion> base,
                                            std::mt19937_64& rng) {
  return commit(std::move(base), [&](Transaction& txn) {
    const TableVersion& t0 = *txn.table("things");
    const std::uint32_t rpc = t0.records_per_chunk();
    const int ops = 1 + static_cast<int>(rng() % 4);
    for (int op = 0; op < ops; ++op) {
      const TableVersion& t = *txn.table("things");
      const auto& schema = *t.schema();
      switch (rng() % 9) {
        case 0:
        case 1:  // a few appends: in place in the shared tail chunk when it has room
          for (int i = 0, n = 1 + static_cast<int>(rng() % 3); i < n; ++i)
            ok(txn.insert("things", random_record(schema, rng)));
          break;
        case 2:  // a bulk insert over chunk boundaries
          for (std::uint64_t i = 0, n = 1 + rng() % (3 * rpc); i < n; ++i)
            ok(txn.insert("things", random_record(schema, rng)));
          break;
        case 3:
        case 4:
        case 5: {  // update random fields of a few records (or write the same bytes back)
          for (int i = 0, n = 1 + static_cast<int>(rng() % 5); i < n; ++i) {
            const std::uint64_t id = random_live_id(*txn.table("things"), rng);
            if (!id) break;
            RecordBuffer r(*txn.table("things")->get(id));
            if (rng() % 6) set_random_field(r.data(), rng);
            ok(txn.update("things", id, r.bytes()));
          }
          break;
        }
        case 6: {  // a parallel update writing a few records of every chunk (no history)
          if (rng() % 3) break;
          auto work = ok(txn.begin_parallel_update("things"));
          for (ChunkWork& w : work) {
            ok(w.fill());
            const MutableChunkSpan sp = w.span();
            for (int i = 0; i < 2; ++i) {
              const std::uint32_t slot = static_cast<std::uint32_t>(rng() % sp.count);
              if (sp.alive[slot])
                set_random_field(sp.records + std::size_t{slot} * sp.record_size, rng);
            }
          }
          ok(txn.finish_parallel_update("things", work));
          break;
        }
        case 7: {  // bulk access to one chunk (mutable_chunk_span), or a delete
          TableVersion* w = ok(txn.writable_table("things"));
          if (rng() % 2 || w->used_chunk_count() == 0) {
            const std::uint64_t id = random_live_id(*txn.table("things"), rng);
            if (id) ok(txn.erase("things", id));
            break;
          }
          const MutableChunkSpan sp = ok(w->mutable_chunk_span(rng() % w->used_chunk_count()));
          const std::uint32_t slot = static_cast<std::uint32_t>(rng() % sp.count);
          if (sp.alive[slot])
            set_random_field(sp.records + std::size_t{slot} * sp.record_size, rng);
          break;
        }
        default: {  // delete a few
          for (int i = 0, n = 1 + static_cast<int>(rng() % 3); i < n; ++i) {
            const std::uint64_t id = random_live_id(*txn.table("things"), rng);
            if (!id) break;
            ok(txn.erase("things", id));
          }
          break;
        }
      }
    }
  });
}

// A random filter over the things fields, compiled for `schema`.
std::shared_ptr<const CompiledFilter> random_filter(const TableSchema& schema,
                                                    std::mt19937_64& rng) {
  const int k = static_cast<int>(rng() % 6);
  const std::string ks = std::to_string(k);
  const std::vector<std::string> texts{
      "hp < " + ks,
      "tag = " + ks,
      "hp >= " + ks + " && tag != " + std::to_string((k + 2) % 6),
      "owner > " + ks + " || speed < " + ks + ".5",
      "pos.x <= " + ks,
      "id < " + std::to_string(40 + 37 * k),
      "!(hp = " + ks + ")",
  };
  if (rng() % 5 == 0) return nullptr;  // no filter: every record
  auto f = ok(CompiledFilter::compile(ok(parse_filter_text(texts[rng() % texts.size()])), schema));
  return std::make_shared<const CompiledFilter>(std::move(f));
}

// A random set of selected fields (empty: all).
std::vector<ByteRange> random_projection(const TableSchema& schema, std::mt19937_64& rng) {
  std::vector<ByteRange> out;
  if (rng() % 4 == 0) return out;
  for (const Field& f : schema.fields())
    if (rng() % 2) out.push_back({f.offset, f.type.size});
  if (out.empty()) out.push_back({schema.fields()[0].offset, schema.fields()[0].type.size});
  return out;
}

}  // namespace

TEST_CASE("a diff between any two versions equals the brute-force comparison by id", "[diff]") {
  const std::uint32_t pad = GENERATE(0u, 992u);  // 512 or 8 records per chunk
  INFO("pad " << pad);
  std::mt19937_64 rng(pad * 7919 + 1);
  std::vector<std::shared_ptr<const DbVersion>> versions{make_table(pad)};
  const int txns = pad ? 300 : 120;
  for (int i = 0; i < txns; ++i) versions.push_back(random_txn(versions.back(), rng));
  REQUIRE(versions.back()->table("things")->count() > 0);

  std::uint64_t total_changes = 0, skipped = 0, compared = 0, grown = 0;
  for (int pair = 0; pair < 250; ++pair) {
    std::size_t i = rng() % versions.size(), j = rng() % versions.size();
    if (i > j) std::swap(i, j);
    if (pair % 5 == 0) j = std::min(i + 1, versions.size() - 1);  // one commit apart
    INFO("versions " << i << " -> " << j);
    const TableVersion& b = *versions[i]->table("things");
    const TableVersion& a = *versions[j]->table("things");
    const auto expected = brute_diff(b, a);
    REQUIRE(real_diff(b, a) == expected);
    total_changes += expected.size();
    auto st = ok(diff_tables(b, a, [](auto, auto, auto) {}));
    skipped += st.chunks_skipped;
    compared += st.chunks_compared;
    grown += st.chunks_grown;

    // The classifier, for random subscriptions over this pair.
    auto changes = ok(collect_changes(b, a));
    REQUIRE(changes.size() == expected.size());
    for (int s = 0; s < 4; ++s) {
      auto filter = random_filter(*a.schema(), rng);
      auto proj = random_projection(*a.schema(), rng);
      auto sub = ok(SubscriptionClassifier::make(a.schema(), filter, proj));
      const Expected e = brute_classify(b, a, filter.get(), proj);
      require_delta_is(ok(subscription_delta(b, a, sub)), e, a.record_size());
      require_delta_is(ok(classify_changes(changes, a, sub)), e, a.record_size());
    }
  }
  // The walk took every path: chunks skipped, grown in place, and copied.
  CHECK(total_changes > 0);
  CHECK(skipped > 0);
  CHECK(compared > 0);
  CHECK(grown > 0);
}

TEST_CASE("a version against itself, or an equal later one, gives nothing", "[diff]") {
  auto v = test::things_db(2000);
  const TableVersion& t = *v->table("things");
  auto st = ok(diff_tables(t, t, [](auto...) { FAIL("a change of a version against itself"); }));
  CHECK(st.changes == 0);
  CHECK(st.slots_compared == 0);
  // A commit that writes the same bytes back copies a chunk but changes no record.
  auto w = commit(v, [&](Transaction& txn) {
    RecordBuffer r(*txn.get("things", 700));
    ok(txn.update("things", 700, r.bytes()));
  });
  st = ok(diff_tables(t, *w->table("things"), [](auto...) { FAIL("an unchanged record"); }));
  CHECK(st.chunks_compared == 1);
  CHECK(st.chunks_skipped == t.used_chunk_count() - 1);
}

TEST_CASE("the cost of a diff grows with the chunks that changed", "[diff]") {
  auto v = test::things_db(10000);
  const TableVersion& t = *v->table("things");
  const std::uint32_t rpc = t.records_per_chunk();
  // One update, then appends into the shared tail chunk (in place), over two commits.
  auto w = commit(v, [&](Transaction& txn) { ok(txn.update("things", 1234, test::rec32(-5))); });
  w = commit(w, [&](Transaction& txn) {
    for (int i = 0; i < 3; ++i) ok(txn.insert("things", test::rec32(77)));
  });
  const TableVersion& u = *w->table("things");
  REQUIRE(u.chunk(u.used_chunk_count() - 1) == t.chunk(t.used_chunk_count() - 1));  // in place
  std::vector<std::uint64_t> ids;
  auto st = ok(diff_tables(t, u, [&](std::uint64_t id, const std::byte* b, const std::byte* a) {
    ids.push_back(id);
    CHECK(a != nullptr);
    if (id == 1234)
      CHECK(b != nullptr);
    else
      CHECK(b == nullptr);
  }));
  CHECK(ids == std::vector<std::uint64_t>{1234, 10001, 10002, 10003});
  CHECK(st.chunks_compared == 1);
  CHECK(st.chunks_by_history == 1);
  CHECK(st.slots_compared == 1);  // the copied chunk's history names the one slot written
  CHECK(st.chunks_grown == 1);
  (void)rpc;
  CHECK(st.chunks_skipped == t.used_chunk_count() - 2);
}

TEST_CASE("deleted slots: a delete is reported once, a dead slot never again", "[diff]") {
  auto v0 = test::things_db(1500);
  auto v1 = commit(v0, [&](Transaction& txn) {
    for (std::uint64_t id : {3, 600, 601, 1500}) ok(txn.erase("things", id));
  });
  auto v2 = commit(v1, [&](Transaction& txn) {
    ok(txn.update("things", 602, test::rec32(9)));
    const auto id = ok(txn.insert("things", test::rec32(1)));
    ok(txn.erase("things", id));  // inserted and deleted between the two: nothing
  });
  const TableVersion& t0 = *v0->table("things");
  const TableVersion& t1 = *v1->table("things");
  const TableVersion& t2 = *v2->table("things");
  REQUIRE(real_diff(t0, t1) == brute_diff(t0, t1));
  REQUIRE(real_diff(t1, t2) == brute_diff(t1, t2));
  REQUIRE(real_diff(t0, t2) == brute_diff(t0, t2));
  std::vector<std::uint64_t> ids;
  ok(diff_tables(t1, t2, [&](std::uint64_t id, auto, auto) { ids.push_back(id); }));
  CHECK(ids == std::vector<std::uint64_t>{602});
  auto d = ok(collect_changes(t0, t1));
  REQUIRE(d.size() == 4);
  for (const RecordChange& c : d) {
    CHECK(c.before != nullptr);
    CHECK(c.after == nullptr);
  }
}

TEST_CASE("subscription kinds: enter and leave a filter, unselected fields, deletes", "[diff]") {
  auto v0 = test::things_db(10);  // hp = 0..9
  const auto schema = v0->table("things")->schema();
  auto f = std::make_shared<const CompiledFilter>(
      ok(CompiledFilter::compile(ok(parse_filter_text("hp < 5")), *schema)));
  const ByteRange hp{0, 4}, tag{24, 4};
  auto v1 = commit(v0, [&](Transaction& txn) {
    auto set_hp_tag = [&](std::uint64_t id, std::int32_t h, std::uint32_t g) {
      RecordBuffer r(*txn.get("things", id));
      store<std::int32_t>(r.data(), h);
      store<std::uint32_t>(r.data() + 24, g);
      ok(txn.update("things", id, r.bytes()));
    };
    set_hp_tag(1, 0, 7);          // hp 0 -> 0, tag changes: in the filter, only tag changed
    set_hp_tag(2, 3, 0);          // hp 1 -> 3: a selected field changed
    set_hp_tag(3, 8, 0);          // hp 2 -> 8: leaves the filter
    set_hp_tag(7, 4, 0);          // hp 6 -> 4: enters the filter
    set_hp_tag(9, 9, 5);          // hp 8, out before and after
    ok(txn.erase("things", 4));   // hp 3: in the filter, deleted
    ok(txn.erase("things", 10));  // hp 9: never in it
    ok(txn.insert("things", test::rec32(1)));   // id 11: in
    ok(txn.insert("things", test::rec32(50)));  // id 12: not in
  });
  const TableVersion& a = *v1->table("things");
  const TableVersion& b = *v0->table("things");

  auto only_hp = ok(SubscriptionClassifier::make(schema, f, {hp}));
  auto d = ok(subscription_delta(b, a, only_hp));
  auto ids = [](const std::vector<RecordView>& v) {
    std::vector<std::uint64_t> out;
    for (auto& r : v) out.push_back(r.id());
    return out;
  };
  CHECK(ids(d.ins) == std::vector<std::uint64_t>{7, 11});
  CHECK(ids(d.upd) == std::vector<std::uint64_t>{2});  // not 1: only tag changed
  CHECK(d.del == std::vector<std::uint64_t>{4});
  CHECK(d.out == std::vector<std::uint64_t>{3});
  for (const RecordView& r : d.ins) CHECK(r.data() == a.get(r.id())->data());  // rows of `after`

  auto hp_and_tag = ok(SubscriptionClassifier::make(schema, f, {hp, tag}));
  d = ok(subscription_delta(b, a, hp_and_tag));
  CHECK(ids(d.upd) == std::vector<std::uint64_t>{1, 2});

  auto everything = ok(SubscriptionClassifier::make(schema, nullptr, {}));
  d = ok(subscription_delta(b, a, everything));
  CHECK(ids(d.ins) == std::vector<std::uint64_t>{11, 12});
  CHECK(ids(d.upd) == std::vector<std::uint64_t>{1, 2, 3, 7, 9});
  CHECK(d.del == std::vector<std::uint64_t>{4, 10});
  CHECK(d.out.empty());

  // Direct classification.
  const Bytes r0 = test::rec32(0), r9 = test::rec32(9);
  CHECK(only_hp.classify(1, nullptr, r9.data()) == ChangeKind::none);
  CHECK(only_hp.classify(1, r9.data(), nullptr) == ChangeKind::none);
  CHECK(only_hp.classify(1, r0.data(), r0.data()) == ChangeKind::none);
  CHECK(only_hp.classify(1, r9.data(), r0.data()) == ChangeKind::ins);
  CHECK(only_hp.classify(1, r0.data(), r9.data()) == ChangeKind::out);
}

TEST_CASE("a schema change, a re-created table or dropped slots are not comparable: reset",
          "[diff]") {
  auto v0 = test::things_db(1000);
  auto v1 = commit(v0, [&](Transaction& txn) { ok(txn.erase("things", 5)); });
  const TableVersion& t0 = *v0->table("things");
  const TableVersion& t1 = *v1->table("things");
  auto noop = [](auto...) {};

  SECTION("a field added re-lays the table out") {
    auto v2 = commit(v1, [&](Transaction& txn) { ok(txn.add_field("things", {"mana", "i32"})); });
    auto r = diff_tables(t1, *v2->table("things"), noop);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.code() == Errc::conflict);
    CHECK_THAT(r.message(), Catch::Contains("schema changed"));
    auto c = collect_changes(t0, *v2->table("things"));
    CHECK(c.code() == Errc::conflict);
  }
  SECTION("a field removed") {
    auto v2 = commit(v1, [&](Transaction& txn) { ok(txn.remove_field("things", "tag")); });
    CHECK(check_comparable(t1, *v2->table("things")).code() == Errc::conflict);
  }
  SECTION("the table dropped and created again with the same fields") {
    auto v2 = commit(v1, [&](Transaction& txn) {
      ok(txn.drop_table("things"));
      ok(txn.create_table(
          "things",
          {{"hp", "i32"}, {"pos", "vec3"}, {"owner", "u64"}, {"tag", "u32"}, {"speed", "f32"}}));
    });
    CHECK(check_comparable(t1, *v2->table("things")).code() == Errc::conflict);
  }
  SECTION("a relayout under the same schema object drops the dead slots") {
    auto relaid = ok(t1.relayout(t1.schema(), 999'001));
    auto r = diff_tables(t1, *relaid, noop);
    CHECK(r.code() == Errc::conflict);
    CHECK_THAT(r.message(), Catch::Contains("slots were dropped"));
    // Grown back to as many slots: the ids at the same slot differ.
    ok(relaid->append(test::rec32(1), relaid->next_id()));
    REQUIRE(relaid->slots() == t1.slots());
    r = diff_tables(t1, *relaid, noop);
    CHECK(r.code() == Errc::conflict);
    CHECK_THAT(r.message(), Catch::Contains("ids differ"));
  }
  SECTION("ids differ in the middle of a chunk while both ends agree") {
    TableVersion x(t0.schema(), 999'002), y(t0.schema(), 999'003);
    for (std::uint64_t id : {1, 2, 3, 10}) ok(x.append(test::rec32(0), id));
    for (std::uint64_t id : {1, 5, 6, 10, 11}) ok(y.append(test::rec32(0), id));
    auto r = diff_tables(x, y, noop);
    CHECK(r.code() == Errc::conflict);
    CHECK_THAT(r.message(), Catch::Contains("ids differ in chunk 0"));
  }
  SECTION("the newer version given as `before`") {
    auto v2 = commit(v1, [&](Transaction& txn) { ok(txn.insert("things", test::rec32(1))); });
    CHECK(check_comparable(*v2->table("things"), t1).code() == Errc::conflict);
  }
}

TEST_CASE("an abandoned in-place append and a second writer's copy are diffed right", "[diff]") {
  auto v0 = test::things_db(100);
  {
    Transaction abandoned(v0);
    ok(abandoned.insert("things", test::rec32(123)));  // claims slot 100 in place, never commits
  }
  // A writer over the same base finds the slot claimed and copies the tail chunk.
  auto v1 = commit(v0, [&](Transaction& txn) { ok(txn.insert("things", test::rec32(5))); });
  const TableVersion& t0 = *v0->table("things");
  const TableVersion& t1 = *v1->table("things");
  CHECK(t1.chunk(0) != t0.chunk(0));
  REQUIRE(real_diff(t0, t1) == brute_diff(t0, t1));
  REQUIRE(brute_diff(t0, t1).size() == 1);
}

TEST_CASE("a subscription rejects bad selections and versions of another schema", "[diff]") {
  auto v0 = test::things_db(10);
  const auto schema = v0->table("things")->schema();
  auto bad = SubscriptionClassifier::make(schema, nullptr, {{30, 4}});
  CHECK(bad.code() == Errc::invalid_argument);
  CHECK_THAT(bad.message(), Catch::Contains("[30, 34)"));
  CHECK(SubscriptionClassifier::make(schema, nullptr, {{0xffffffffu, 2}}).code() ==
        Errc::invalid_argument);
  CHECK(SubscriptionClassifier::make(nullptr, nullptr, {}).code() == Errc::invalid_argument);
  CHECK(SubscriptionClassifier::make(schema, nullptr, {{32, 0}}).is_ok());

  auto sub = ok(SubscriptionClassifier::make(schema, nullptr, {}));
  auto v1 = commit(v0, [&](Transaction& txn) { ok(txn.add_field("things", {"mana", "i32"})); });
  const TableVersion& t1 = *v1->table("things");
  CHECK(subscription_delta(t1, t1, sub).code() == Errc::invalid_argument);
  CHECK(classify_changes({}, t1, sub).code() == Errc::invalid_argument);
  // A subscription whose schema is current but whose `before` is of the old one: a reset.
  auto sub1 = ok(SubscriptionClassifier::make(t1.schema(), nullptr, {}));
  CHECK(subscription_delta(*v0->table("things"), t1, sub1).code() == Errc::conflict);
}

TEST_CASE("a chunk's history covers kLineage copies, then the diff compares the whole chunk",
          "[diff]") {
  std::vector<std::shared_ptr<const DbVersion>> v{test::things_db(10000)};
  for (std::size_t i = 0; i <= Chunk::kLineage; ++i)
    v.push_back(commit(v.back(), [&](Transaction& txn) {
      ok(txn.update("things", 1234, test::rec32(static_cast<std::int32_t>(i) + 100)));
      if (i == 3) ok(txn.erase("things", 1200));
    }));
  const TableVersion& t0 = *v[0]->table("things");
  for (std::size_t i = 1; i < v.size(); ++i) {
    INFO("commits apart: " << i);
    const TableVersion& ti = *v[i]->table("things");
    REQUIRE(real_diff(t0, ti) == brute_diff(t0, ti));
    auto st = ok(diff_tables(t0, ti, [](auto...) {}));
    CHECK(st.chunks_compared == 1);
    if (i <= Chunk::kLineage) {
      CHECK(st.chunks_by_history == 1);
      CHECK(st.slots_compared == (i > 3 ? 2 : 1));
    } else {
      CHECK(st.chunks_by_history == 0);
      CHECK(st.slots_compared == t0.records_per_chunk());
    }
  }
}

TEST_CASE("tiny records: one history bit covers several slots", "[diff]") {
  auto v0 = commit(DbVersion::empty(), [&](Transaction& txn) {
    ok(txn.create_table("flags", {{"v", "u8"}}));
    for (int i = 0; i < 20000; ++i) ok(txn.insert("flags", Bytes{std::byte{1}}));
  });
  const TableVersion& t0 = *v0->table("flags");
  REQUIRE(t0.chunk(0)->lineage_group() > 1);
  auto v1 = commit(v0, [&](Transaction& txn) {
    for (std::uint64_t id : {5, 6, 4000, 9000, 19999})
      ok(txn.update("flags", id, Bytes{std::byte{2}}));
    ok(txn.erase("flags", 17));
    ok(txn.insert("flags", Bytes{std::byte{3}}));
  });
  auto v2 = commit(v1, [&](Transaction& txn) { ok(txn.update("flags", 5, Bytes{std::byte{1}})); });
  for (auto [b, a] : {std::pair{v0, v1}, std::pair{v1, v2}, std::pair{v0, v2}}) {
    const TableVersion& tb = *b->table("flags");
    const TableVersion& ta = *a->table("flags");
    REQUIRE(real_diff(tb, ta) == brute_diff(tb, ta));
    auto st = ok(diff_tables(tb, ta, [](auto...) {}));
    CHECK(st.slots_compared < tb.records_per_chunk());
  }
}

TEST_CASE("chunks(first, n) reads the same pointers as chunk(k), across tree nodes", "[diff]") {
  // 16 records per chunk: 4,200 records fill 263 chunks, a tree of three levels (fan 16).
  std::mt19937_64 rng(11);
  auto v = commit(make_table(992), [&](Transaction& t) {
    const auto& schema = *t.table("things")->schema();
    for (int i = 0; i < 4200; ++i) ok(t.insert("things", random_record(schema, rng)));
  });
  const TableVersion& t = *v->table("things");
  REQUIRE(t.chunk_count() > 256);
  for (int round = 0; round < 200; ++round) {
    const std::size_t first = rng() % t.chunk_count();
    const std::size_t left = t.chunk_count() - first;
    const std::size_t n = round == 0 ? left : rng() % (left + 1);
    std::vector<const Chunk*> got(n + 1, nullptr);
    t.chunks(first, n, got.data());
    for (std::size_t i = 0; i < n; ++i) REQUIRE(got[i] == t.chunk(first + i));
    REQUIRE(got[n] == nullptr);  // nothing written past n
  }
  std::vector<const Chunk*> all(t.chunk_count());
  t.chunks(0, all.size(), all.data());
  for (std::size_t k = 0; k < all.size(); ++k) REQUIRE(all[k] == t.chunk(k));
}

TEST_CASE("a diff over hundreds of chunks: the walk's batches and a grown table", "[diff]") {
  // 16 records per chunk, so the diff reads its chunk pointers in several batches (64 at a
  // time) and `after` has chunks past before's end; updates and deletes are spread over
  // every batch, the edges of the batches among them.
  std::mt19937_64 rng(5);
  auto v0 = commit(make_table(992), [&](Transaction& t) {
    const auto& schema = *t.table("things")->schema();
    for (int i = 0; i < 1400; ++i) ok(t.insert("things", random_record(schema, rng)));
  });
  auto v1 = commit(v0, [&](Transaction& t) {
    const auto& schema = *t.table("things")->schema();
    auto changed = [&](std::uint64_t id) {
      RecordBuffer r(*t.table("things")->get(id));
      store<std::int32_t>(r.data(), load<std::int32_t>(r.data()) + 100);  // hp: always new
      return Bytes(r.bytes().begin(), r.bytes().end());
    };
    for (std::uint64_t id : {1u, 16u, 17u, 1024u, 1025u, 1040u, 1041u, 1400u})
      ok(t.update("things", id, changed(id)));
    for (int i = 0; i < 40; ++i) {
      const std::uint64_t id = 1 + rng() % 1400;
      ok(t.update("things", id, changed(id)));
    }
    for (std::uint64_t id : {2u, 1200u, 1300u}) ok(t.erase("things", id));
    for (int i = 0; i < 1800; ++i) ok(t.insert("things", random_record(schema, rng)));
    ok(t.erase("things", 3000));  // inserted and deleted in between: nothing
  });
  const TableVersion& b = *v0->table("things");
  const TableVersion& a = *v1->table("things");
  REQUIRE(b.used_chunk_count() > 64);
  REQUIRE(a.used_chunk_count() > 192);
  const auto expected = brute_diff(b, a);
  REQUIRE(expected.size() > 1800);
  CHECK(real_diff(b, a) == expected);
  CHECK(real_diff(a, a).empty());
  CHECK(real_diff(b, b).empty());
  // The other way round is refused (a is not older), never misread.
  CHECK(!diff_tables(a, b, [](auto, auto, auto) {}).is_ok());
}
