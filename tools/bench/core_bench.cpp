// tickdb-bench-core: the storage engine's named workloads (Google Benchmark).
//
//   build/tools/bench/tickdb-bench-core [--benchmark_format=json]
//
// All workloads use one 32-byte record: hp i32, pos vec3 (3 x f32), owner u64, tag u32,
// speed f32 (4 + 12 + 8 + 4 + 4). The names are stable so results compare across versions;
// docs/benchmarks.md has the bars and the latest figures.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "core/catalog.h"
#include "core/filter.h"
#include "core/query.h"
#include "core/table.h"
#include "core/transaction.h"
#include "core/version_cell.h"
#include "core/version_diff.h"

using namespace tickdb;

namespace {

constexpr std::uint32_t kRecordSize = 32;
constexpr std::uint32_t kTagOffset = 24;

std::shared_ptr<const DbVersion> make_db(std::uint64_t n) {
  Transaction t(DbVersion::empty());
  (void)t.create_type("vec3", {{"x", "f32"}, {"y", "f32"}, {"z", "f32"}});
  (void)t.create_table(
      "things",
      {{"hp", "i32"}, {"pos", "vec3"}, {"owner", "u64"}, {"tag", "u32"}, {"speed", "f32"}}, n);
  std::byte rec[kRecordSize]{};
  for (std::uint64_t i = 0; i < n; ++i) {
    store<std::uint32_t>(rec + kTagOffset, static_cast<std::uint32_t>(i));
    store<std::int32_t>(rec, static_cast<std::int32_t>(i & 0xffff));
    (void)t.insert("things", rec);
  }
  return t.commit().value();
}

// One shared 10M-record database for the scans (built once, warm after the first pass).
const std::shared_ptr<const DbVersion>& big_db(std::uint64_t n) {
  static std::map<std::uint64_t, std::shared_ptr<const DbVersion>> cache;
  auto& db = cache[n];
  if (!db) db = make_db(n);
  return db;
}

void BM_ScanRaw(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto buf = std::unique_ptr<std::byte[]>(new (std::align_val_t(64)) std::byte[n * kRecordSize]);
  for (std::size_t i = 0; i < n; ++i) {
    std::memset(buf.get() + i * kRecordSize, 0, kRecordSize);
    store<std::uint32_t>(buf.get() + i * kRecordSize + kTagOffset, static_cast<std::uint32_t>(i));
  }
  for (auto _ : state) {
    std::uint64_t sum = 0;
    const std::byte* p = buf.get() + kTagOffset;
    for (std::size_t i = 0; i < n; ++i, p += kRecordSize) sum += load<std::uint32_t>(p);
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * kRecordSize));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// Sums the u32 `tag` of every record of the published 10M-record table with `sum_tags`.
template <class SumTags>
void scan(benchmark::State& state, SumTags sum_tags) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  VersionCell<DbVersion> cell(big_db(n));
  for (auto _ : state) {
    auto v = cell.load();  // a published version, loaded as a reader does
    const TableVersion& t = *v->table("things");
    auto tag = FieldAccessor<std::uint32_t>::resolve(*t.schema(), "tag").value();
    benchmark::DoNotOptimize(sum_tags(t, tag));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * kRecordSize));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// Through the zero-copy accessor and the chunk iterator: a plain loop per chunk.
void BM_ScanAccessor(benchmark::State& state) {
  scan(state, [](const TableVersion& t, const FieldAccessor<std::uint32_t>& tag) {
    std::uint64_t sum = 0;
    for (ChunkSpan c : t.chunks())
      for (RecordView r : c) sum += tag.get(r.data());
    return sum;
  });
}

// The same sum with the flat record iterator (one loop over all records).
void BM_ScanRecords(benchmark::State& state) {
  scan(state, [](const TableVersion& t, const FieldAccessor<std::uint32_t>& tag) {
    std::uint64_t sum = 0;
    for (RecordView r : t) sum += tag.get(r.data());
    return sum;
  });
}

// Counts the records matching `hp < 500 && tag = 3` with no index: the filter compiled once
// (as a query compiles it) and run over the packed chunks (bar: bytes/s >= 0.5x BM_ScanRaw).
void BM_FilterScan(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  VersionCell<DbVersion> cell(big_db(n));
  std::uint64_t matched = 0;
  for (auto _ : state) {
    auto v = cell.load();
    const TableVersion& t = *v->table("things");
    auto f = CompiledFilter::compile(parse_filter_text("hp < 500 && tag = 3").value(), *t.schema())
                 .value();
    matched = f.count(t);
    benchmark::DoNotOptimize(matched);
  }
  if (matched != 1) state.SkipWithError("expected one match");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * kRecordSize));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// The loop of the update benchmarks: each iteration adds 1 to the hp of a random record in a
// transaction of its own and publishes it.
void update_random_hp(benchmark::State& state, VersionCell<DbVersion>& cell, std::uint64_t n) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::uint64_t> pick(1, n);
  const auto hp =
      FieldAccessor<std::int32_t>::resolve(*cell.load()->table("things")->schema(), "hp").value();
  for (auto _ : state) {
    auto cur = cell.load();
    Transaction txn(cur);
    const std::uint64_t id = pick(rng);
    RecordBuffer rec(*txn.get("things", id));
    hp.set(rec.data(), hp.get(rec.data()) + 1);
    if (!txn.update("things", id, rec.bytes()).is_ok()) state.SkipWithError("update failed");
    cell.publish(txn.commit().value());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_UpdateOne(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  // Its own database: once a version is replaced nothing pins its chunks, so they go back
  // to the pool as they would in a running node.
  VersionCell<DbVersion> cell(make_db(n));
  update_random_hp(state, cell, n);
}

void BM_Append(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  constexpr std::uint64_t kBatch = 1000;
  set_chunk_pool_limit(std::size_t{2} << 30);  // keep freed chunks warm between iterations
  std::byte rec[kRecordSize]{};
  // One untimed round first: the pool then holds warm memory, as in a node that has run a
  // while (first touch of fresh memory is 10x slower here).
  for (bool warm_up = true;; warm_up = false) {
    if (!warm_up && !state.KeepRunning()) break;
    if (!warm_up) state.PauseTiming();
    auto cell = std::make_unique<VersionCell<DbVersion>>(make_db(0));
    if (!warm_up) state.ResumeTiming();
    for (std::uint64_t done = 0; done < n; done += kBatch) {
      auto cur = cell->load();
      Transaction txn(cur);
      for (std::uint64_t i = 0; i < kBatch; ++i) {
        store<std::uint32_t>(rec + kTagOffset, static_cast<std::uint32_t>(done + i));
        if (!txn.insert("things", rec).is_ok()) state.SkipWithError("insert failed");
      }
      cell->publish(txn.commit().value());
    }
    if (!warm_up) state.PauseTiming();
    if (cell->load()->table("things")->count() != n) state.SkipWithError("lost records");
    cell.reset();  // frees 10M records into the pool, outside the timing
    if (!warm_up) state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// The reader pins the current version and reads one field of `things`. The writer updates
// records of `written` and publishes a new version each time: `things` itself (the bar's
// workload: the reader keeps meeting chunks the writer has just copied) or another table
// (what loading a version costs while a writer publishes, without sharing the data).
void load_version(benchmark::State& state, bool with_writer, const char* written) {
  auto db = make_db(100000);
  {
    Transaction t(db);
    (void)t.create_table("other", {{"hp", "i32"}, {"pad", "str", 28}});
    for (int i = 0; i < 100000; ++i) (void)t.insert("other", std::vector<std::byte>(32));
    db = t.commit().value();
  }
  VersionCell<DbVersion> cell(db);
  const auto hp =
      FieldAccessor<std::int32_t>::resolve(*cell.load()->table("things")->schema(), "hp").value();
  // The writer's flags live on their own cache lines: sharing a line with the reader's
  // stack would measure false sharing, not the version cell.
  struct alignas(64) Flags {
    std::atomic<bool> stop{false};
    alignas(64) std::atomic<std::uint64_t> published{0};
  };
  auto flags = std::make_unique<Flags>();
  auto& stop = flags->stop;
  auto& published = flags->published;
  std::thread writer;
  if (with_writer) {
    writer = std::thread([&cell, &hp, &stop, &published, written] {
      std::uint64_t id = 1;
      while (!stop.load(std::memory_order_relaxed)) {
        auto cur = cell.load();
        Transaction txn(cur);
        RecordBuffer rec(*txn.get(written, id));
        hp.set(rec.data(), hp.get(rec.data()) + 1);
        (void)txn.update(written, id, rec.bytes());
        cell.publish(txn.commit().value());
        id = id % 100000 + 1;
        published.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::uint64_t id = 1;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto v = cell.pin();  // what a request does: pin the current version, read, let go
    auto r = v->table("things")->get(id);
    benchmark::DoNotOptimize(hp.get(r->data()));
    id = id % 100000 + 1;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop.store(true);
  if (writer.joinable()) writer.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  // items_per_second is per CPU second of the reader; this one is per wall-clock second
  // (they differ when the reader is descheduled: compare this one).
  state.counters["wall_items_per_second"] = static_cast<double>(state.iterations()) / wall;
  state.counters["versions_published"] = static_cast<double>(published.load());
}

// ---- secondary indexes ----

// make_db(n) with indexes made by `fn(txn)` (built from the records, as create_index does).
template <class Fn>
std::shared_ptr<const DbVersion> indexed_db(std::uint64_t n, Fn&& fn) {
  Transaction t(make_db(n));
  fn(t);
  return t.commit().value();
}

IndexDef bench_index(std::string name, std::vector<std::string> fields, IndexType type,
                     bool unique = false) {
  return IndexDef{std::move(name), std::move(fields), type, unique, false};
}

// The indexed databases the benchmarks build once (the runner calls each function several
// times). A write benchmark drops the ones it does not use first: gigabytes of pinned nodes
// of another benchmark slowed BM_UpdateIndexed 3.5x (27.9 us against 7.9 us alone).
std::map<std::string, std::shared_ptr<const DbVersion>>& cached_dbs() {
  static std::map<std::string, std::shared_ptr<const DbVersion>> dbs;
  return dbs;
}
template <class Fn>
const std::shared_ptr<const DbVersion>& cached_db(const std::string& key, Fn&& make) {
  auto& dbs = cached_dbs();
  for (auto it = dbs.begin(); it != dbs.end();)
    it = it->first == key ? std::next(it) : dbs.erase(it);
  auto& db = dbs[key];
  if (!db) db = make();
  return db;
}

// One random `tag` (unique: tag = id - 1) looked up through a hash index: one match.
void BM_HashIndexEq(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto& db = cached_db("hash_tag", [n] {
    return indexed_db(n, [](Transaction& t) {
      (void)t.create_index("things", bench_index("things_tag", {"tag"}, IndexType::hash, true))
          .value();
    });
  });
  const TableIndex* ix = db->table("things")->find_index("things_tag");
  std::mt19937_64 rng(42);
  std::uint64_t found = 0;
  for (auto _ : state) {
    const auto tag = static_cast<std::uint32_t>(rng() % n);
    std::byte raw[4], key[4];
    store<std::uint32_t>(raw, tag);
    encode_part_to(ix->layout().parts()[0].loc.type, raw, key);
    ix->hash().find(key).for_each([&](std::uint64_t id) {
      found += id;
      return true;
    });
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// The engine's part of `GET .../records?filter=owner=<random>&limit=10` (http_bench's
// filter_get): parse the filter, plan it onto a hash index on `owner`, fetch its 4 records
// (owner = i % (n / 4), so they lie far apart) and write the page's JSON.
void BM_QueryHashEq(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const std::uint64_t owners = std::max<std::uint64_t>(1, n / 4);
  const auto& db = cached_db("hash_owner", [n, owners] {
    Transaction t(make_db(0));
    std::byte rec[kRecordSize]{};
    for (std::uint64_t i = 0; i < n; ++i) {
      store<std::uint64_t>(rec + 16, i % owners);
      (void)t.insert("things", rec);
    }
    (void)t.create_index("things", bench_index("things_owner", {"owner"}, IndexType::hash)).value();
    return t.commit().value();
  });
  const TableVersion& t = *db->table("things");
  std::mt19937_64 rng(42);
  std::uint64_t records = 0;
  std::string out;
  for (auto _ : state) {
    QuerySpec q;
    q.filter = parse_filter_text("owner=" + std::to_string(rng() % owners)).value();
    q.limit = 10;
    auto page = run_query(t, q);
    out.clear();
    append_query_page_json(out, *page, q, *t.schema());
    records += page->records.size();
    benchmark::DoNotOptimize(out.data());
  }
  if (records != 4 * static_cast<std::uint64_t>(state.iterations()))
    state.SkipWithError("expected 4 records per query");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// The first 100 entries of `tag >= random` through an ordered index (ids collected).
void BM_OrderedRange(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto& db = cached_db("ordered_tag", [n] {
    return indexed_db(n, [](Transaction& t) {
      (void)t.create_index("things", bench_index("things_tag", {"tag"}, IndexType::ordered))
          .value();
    });
  });
  const TableIndex* ix = db->table("things")->find_index("things_tag");
  const std::uint32_t ks = ix->layout().key_size();
  std::mt19937_64 rng(42);
  std::uint64_t ids[100];
  std::size_t got = 0;
  for (auto _ : state) {
    const auto tag = static_cast<std::uint32_t>(rng() % n);
    std::byte raw[4], key[4];
    store<std::uint32_t>(raw, tag);
    encode_part_to(ix->layout().parts()[0].loc.type, raw, key);
    std::size_t k = 0;
    for (auto c = ix->ordered().lower_bound({key, 4}); c.valid() && k < 100; c.next())
      ids[k++] = decode_id(c.key() + ks - 8);
    got += k;
    benchmark::DoNotOptimize(ids);
  }
  if (got < static_cast<std::size_t>(state.iterations())) state.SkipWithError("empty ranges");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// BM_UpdateOne with two indexes on the updated field (hp): an ordered one and a hash one.
void BM_UpdateIndexed(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  // The indexed base is built once (see cached_db) and handed to one cell that lives across
  // the runner's calls: each call goes on updating where the last one stopped, and a
  // replaced version's chunks and nodes are freed as they are in a running node (as
  // BM_UpdateOne's are). Pinning the base instead made every copy come from fresh memory:
  // 41.7 us per update over the runner's 27k iterations against 16.2 us over 261k, the
  // difference page faults (clear_page 9% of a profile), not the indexes.
  static std::map<std::uint64_t, std::unique_ptr<VersionCell<DbVersion>>> cells;
  auto& cell = cells[n];
  if (!cell) {
    const std::string key = "update_" + std::to_string(n);
    cell = std::make_unique<VersionCell<DbVersion>>(cached_db(key, [n] {
      return indexed_db(n, [](Transaction& t) {
        // TICKDB_BENCH_INDEXES=ordered|hash keeps one of the two (to see what each costs).
        const char* only = std::getenv("TICKDB_BENCH_INDEXES");
        const std::string which = only ? only : "";
        if (which != "hash")
          (void)t.create_index("things", bench_index("things_hp", {"hp"}, IndexType::ordered))
              .value();
        if (which != "ordered")
          (void)t.create_index("things", bench_index("things_hp_hash", {"hp"}, IndexType::hash))
              .value();
      });
    }));
    cached_dbs().erase(key);  // the cell holds the only reference now
  }
  update_random_hp(state, *cell, n);
}

// BM_Append with two ordered indexes: on tag (rising, as ids) and on hp (scattered values).
void BM_InsertIndexed(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  constexpr std::uint64_t kBatch = 1000;
  cached_dbs().clear();
  set_chunk_pool_limit(std::size_t{2} << 30);
  std::byte rec[kRecordSize]{};
  for (bool warm_up = true;; warm_up = false) {
    if (!warm_up && !state.KeepRunning()) break;
    if (!warm_up) state.PauseTiming();
    auto cell = std::make_unique<VersionCell<DbVersion>>(indexed_db(0, [](Transaction& t) {
      (void)t.create_index("things", bench_index("things_tag", {"tag"}, IndexType::ordered))
          .value();
      (void)t.create_index("things", bench_index("things_hp", {"hp"}, IndexType::ordered)).value();
    }));
    if (!warm_up) state.ResumeTiming();
    for (std::uint64_t done = 0; done < n; done += kBatch) {
      auto cur = cell->load();
      Transaction txn(cur);
      for (std::uint64_t i = 0; i < kBatch; ++i) {
        const std::uint64_t k = done + i;
        store<std::uint32_t>(rec + kTagOffset, static_cast<std::uint32_t>(k));
        store<std::int32_t>(rec, static_cast<std::int32_t>((k * 2654435761u) & 0xffff));
        if (!txn.insert("things", rec).is_ok()) state.SkipWithError("insert failed");
      }
      cell->publish(txn.commit().value());
    }
    if (!warm_up) state.PauseTiming();
    const TableVersion* t = cell->load()->table("things");
    if (t->count() != n || t->indexes()[1].entries() != n) state.SkipWithError("lost records");
    cell.reset();
    if (!warm_up) state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// Deleting the root of a chain of n records (each one's parent the one before, cascade):
// every level is found through the relation's index.
void BM_CascadeChain(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  cached_dbs().clear();
  for (auto _ : state) {
    state.PauseTiming();
    std::shared_ptr<const DbVersion> db;
    {
      Transaction t(DbVersion::empty());
      (void)t.create_table("node", {{"parent", "u64"}});
      (void)t.create_relation("node", "parent", "node", OnDelete::cascade).value();
      std::byte rec[8];
      for (std::uint64_t i = 0; i < n; ++i) {
        store<std::uint64_t>(rec, i);
        (void)t.insert("node", rec);
      }
      db = t.commit().value();
    }
    state.ResumeTiming();
    Transaction t(db);
    if (!t.erase("node", 1).is_ok()) state.SkipWithError("erase failed");
    auto v = t.commit().value();
    state.PauseTiming();
    if (v->table("node")->count() != 0) state.SkipWithError("records left");
    v.reset();
    db.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void BM_LoadVersion(benchmark::State& state) {
  load_version(state, state.range(0) != 0, "things");
}
void BM_LoadVersionOtherTable(benchmark::State& state) {
  load_version(state, state.range(0) != 0, "other");
}

// Two versions of an n-record table: `after` changes the tag of `changed` records (all of
// them, or spread at random) and shares nothing else with `before` than what copy-on-write
// leaves shared. The diff counts the changed records (the visitor a subscription hub runs
// is heavier; this measures the walk itself).
void diff_versions(benchmark::State& state, std::uint64_t changed) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  auto before = make_db(n);
  Transaction txn(before);
  if (changed == n) {
    TableVersion* w = txn.writable_table("things").value();
    for (std::size_t k = 0; k < w->used_chunk_count(); ++k) {
      MutableChunkSpan c = w->mutable_chunk_span(k).value();
      for (std::uint32_t i = 0; i < c.count; ++i) {
        std::byte* tag = c.records + std::size_t{i} * kRecordSize + kTagOffset;
        store<std::uint32_t>(tag, load<std::uint32_t>(tag) + 1);
      }
    }
  } else {
    std::mt19937_64 rng(7);
    std::vector<std::uint64_t> ids(n);
    for (std::uint64_t i = 0; i < n; ++i) ids[i] = i + 1;
    std::shuffle(ids.begin(), ids.end(), rng);
    std::byte rec[kRecordSize];
    for (std::uint64_t i = 0; i < changed; ++i) {
      std::memcpy(rec, txn.get("things", ids[i])->data(), kRecordSize);
      store<std::uint32_t>(rec + kTagOffset, load<std::uint32_t>(rec + kTagOffset) + 1);
      if (!txn.update("things", ids[i], rec).is_ok()) state.SkipWithError("update failed");
    }
  }
  auto after = txn.commit().value();
  const TableVersion& b = *before->table("things");
  const TableVersion& a = *after->table("things");
  std::uint64_t seen = 0;
  for (auto _ : state) {
    seen = 0;
    auto st = diff_tables(b, a, [&](std::uint64_t, const std::byte*, const std::byte*) { ++seen; });
    if (!st.is_ok()) state.SkipWithError("diff failed");
    benchmark::DoNotOptimize(seen);
  }
  if (seen != changed) state.SkipWithError("wrong number of changes");
  // Bytes of both versions' records, what a full comparison would read.
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * n * kRecordSize));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// Every record changed (bar: bytes/s over both versions >= 0.5x BM_ScanRaw).
void BM_DiffAll(benchmark::State& state) {
  diff_versions(state, static_cast<std::uint64_t>(state.range(0)));
}
// 1% of the records changed, spread at random (bar: time <= 1/20 of BM_DiffAll).
void BM_DiffOnePercent(benchmark::State& state) {
  diff_versions(state, static_cast<std::uint64_t>(state.range(0)) / 100);
}

}  // namespace

BENCHMARK(BM_ScanRaw)->Arg(10'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScanAccessor)->Arg(10'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScanRecords)->Arg(10'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FilterScan)->Arg(10'000'000)->Unit(benchmark::kMillisecond);
// No UseRealTime()/Iterations(): they would add suffixes to the names the bars refer to.
// Every workload runs on one always-busy thread, so its CPU time is its wall time.
BENCHMARK(BM_UpdateOne)->Arg(10'000)->Arg(10'000'000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Append)->Arg(10'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HashIndexEq)->Arg(10'000'000);
BENCHMARK(BM_OrderedRange)->Arg(10'000'000);
BENCHMARK(BM_QueryHashEq)->Arg(1'000'000);
BENCHMARK(BM_UpdateIndexed)->Arg(10'000)->Arg(10'000'000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_InsertIndexed)->Arg(10'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CascadeChain)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadVersion)->Arg(0)->Arg(1);
BENCHMARK(BM_LoadVersionOtherTable)->Arg(1);
BENCHMARK(BM_DiffAll)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DiffOnePercent)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// The allocator the figures were made with, in the run's context ("allocator": the node's
// jemalloc, tools/bench/CMakeLists.txt; CTest bench-core-allocator checks it): found through
// jemalloc's own mallctl, looked up at run time so that sanitizer builds link without it.
namespace {
std::string allocator_name() {
  using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  auto* mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  const char* version = nullptr;
  std::size_t len = sizeof(version);
  if (!mallctl || mallctl("version", &version, &len, nullptr, 0) != 0 || !version)
    return "libc malloc";
  return std::string("jemalloc ") + version;
}
}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("allocator", allocator_name());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
