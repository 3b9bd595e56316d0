// Persistence with the runtime: recovery from a crash image (the data directory copied while
// the node runs, nothing flushed on purpose) rebuilds exactly what was committed, ticks and
// parallel procedures included; damaged snapshots and log tails fall back as documented; sync
// durability answers only what is in the log file.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "../core/test_db.h"
#include "actors/persistence.h"
#include "runtime_util.h"

using namespace tickdb;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using tickdb::test::code_of;
using tickdb::test::ok;

namespace {

using test::TempDir;

// A node as tickdb-server runs it: open, recover, start the runtime, replay, start.
struct Node {
  std::unique_ptr<Persistence> store;
  std::unique_ptr<Runtime> rt;
  Persistence::Recovered recovered;
  std::vector<std::string> messages;
  std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();

  Node(const std::string& dir, Durability durability = Durability::sync, bool game = false,
       bool ticks = false, double async_flush_s = 0.05, bool durable_reads = true) {
    PersistenceOptions po;
    po.data_dir = dir;
    po.durability = durability;
    po.async_flush_s = async_flush_s;
    po.durable_reads = durable_reads;
    po.snapshot_interval_s = 0;
    po.snapshot_keep = 3;
    auto msgs = &messages;
    auto m = mu;
    po.log = [msgs, m](int, const std::string& s) {
      std::lock_guard lk(*m);
      msgs->push_back(s);
    };
    store = ok(Persistence::open(po));
    recovered = ok(store->recover());
    RuntimeConfig rc = test::no_ticks(2);
    if (game) {
      rc.modules = {TICKDB_GAME_MODULE};
      rc.tick_rate_hz = 120;
      rc.tick_procedures = {{"step", 1, json::object()}};
    }
    Persistence* p = store.get();
    rc.snapshot = [p](std::function<void(Result<json>)> done) {
      p->snapshot_async([done](Result<SnapshotWriteInfo> r) {
        if (!r) return done(Result<json>(r.error()));
        done(Result<json>(json{{"path", r->path}, {"bytes", r->bytes}}));
      });
    };
    rt = ok(Runtime::start(rc, recovered.db));
    rt->idempotency_ledger().load(recovered.keys);
    for (const auto& e : recovered.entries) ok(rt->replay(e));
    ok(store->start(*rt));
    if (ticks) rt->start_ticks();
  }
  ~Node() {
    if (rt) rt->stop();
    if (store) store->stop();
    store.reset();
    rt.reset();
  }
  // Stops the writers and waits until the log holds everything they committed.
  void quiesce() {
    rt->stop();
    REQUIRE(test::wait_until([&] { return store->figures().log.pending_entries == 0; }));
  }
  bool said(const std::string& part) {
    std::lock_guard lk(*mu);
    for (const auto& m : messages)
      if (m.find(part) != std::string::npos) return true;
    return false;
  }
};

// The crash image: the files as they are on disk now.
void copy_dir(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from))
    if (e.is_regular_file() && e.path().filename() != "LOCK")
      fs::copy_file(e.path(), fs::path(to) / e.path().filename());
}

std::map<std::uint64_t, std::string> files_of(const std::string& dir, const std::string& prefix) {
  std::map<std::uint64_t, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0)
      out[std::stoull(name.substr(prefix.size(), 20))] = e.path().string();
  }
  return out;
}

template <class T>
Errc code_of_status(const Result<T>& r) {
  return r.is_ok() ? Errc::ok : r.code();
}

std::uint64_t add(Runtime& rt, const std::string& table, json values) {
  return test::ok(rt.call("db.insert", {{"table", table}, {"values", std::move(values)}}))["id"];
}

// A workload touching every kind of write: schema changes, single writes, a transaction,
// procedures with parallel updates and deletes, relations cascading.
void game_writes(Runtime& rt, int round) {
  auto ana = add(rt, "players", {{"name", "ana" + std::to_string(round)}, {"score", 10 * round}});
  auto bo = add(rt, "players", {{"name", "bo" + std::to_string(round)}, {"score", 20}});
  test::ok(rt.call("spawn", {{"owner", ana}, {"n", 1500}}));
  test::ok(rt.call("spawn", {{"owner", bo}, {"n", 700}}));
  test::ok(rt.call("step", {{"dt", 0.25}}));
  test::ok(rt.call(
      "damage_area",
      {{"center", {{"x", 10.0}, {"y", 10.0}, {"z", 10.0}}}, {"radius", 400.0}, {"amount", 60}}));
  test::ok(
      rt.call("db.transaction",
              {{"ops",
                {{{"method", "db.update"},
                  {"params", {{"table", "players"}, {"id", ana}, {"values", {{"score", 99}}}}}},
                 {{"method", "db.insert"},
                  {"params", {{"table", "players"}, {"values", {{"name", "tx"}}}}}}}}}));
  test::ok(rt.call("db.delete", {{"table", "players"}, {"id", bo}}));  // cascades to bo's entities
}

}  // namespace

TEST_CASE("recovery from a crash image rebuilds exactly what was committed, ticks included",
          "[persistence]") {
  TempDir dir, image;
  std::shared_ptr<const DbVersion> live;
  {
    Node n(dir.str(), Durability::sync, true, true);
    test::ok(n.rt->call("setup", json::object()));
    game_writes(*n.rt, 1);
    test::ok(n.rt->call("db.snapshot", json::object()));  // a snapshot in the middle
    game_writes(*n.rt, 2);
    test::ok(n.rt->call("db.add_field",
                        {{"table", "players"}, {"field", {{"name", "level"}, {"type", "u8"}}}}));
    game_writes(*n.rt, 3);
    REQUIRE(
        test::wait_until([&] { return n.rt->ticks() > 20; }));  // `step` ran as a tick procedure
    n.quiesce();
    live = n.rt->head();               // everything committed, on disk or not
    copy_dir(dir.str(), image.str());  // before the last snapshot a graceful stop would write
    auto st = n.store->figures();
    CHECK(st.log.fsyncs > 0);
    CHECK(st.snapshot.count == 1);
  }
  Node back(image.str(), Durability::sync, true);
  CHECK_FALSE(back.recovered.snapshot.empty());
  CHECK_FALSE(back.recovered.entries.empty());
  test::require_same_db(*live, *back.rt->current());
  // Ids go on after the recovered ones.
  auto next = live->table("players")->next_id();
  CHECK(add(*back.rt, "players", {{"name", "new"}}) == next);
}

TEST_CASE("a damaged newest snapshot falls back to an older one and the log after it",
          "[persistence]") {
  TempDir dir, image;
  std::shared_ptr<const DbVersion> live;
  {
    Node n(dir.str(), Durability::sync, true);
    test::ok(n.rt->call("setup", json::object()));
    game_writes(*n.rt, 1);
    test::ok(n.rt->call("db.snapshot", json::object()));
    game_writes(*n.rt, 2);
    test::ok(n.rt->call("db.snapshot", json::object()));
    game_writes(*n.rt, 3);
    n.quiesce();
    live = n.rt->head();  // everything committed, on disk or not
    copy_dir(dir.str(), image.str());
  }
  auto snaps = files_of(image.str(), "snapshot-");
  REQUIRE(snaps.size() == 2);
  {
    std::fstream f(snaps.rbegin()->second, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  Node back(image.str(), Durability::sync, true);
  CHECK(back.said("skipping snapshot " + snaps.rbegin()->second + " (corruption)"));
  CHECK(back.recovered.snapshot == snaps.begin()->second);
  CHECK(back.recovered.skipped_snapshots == 1);
  test::require_same_db(*live, *back.rt->current());
}

TEST_CASE("a snapshot the disk refuses answers io_error naming the file, and the node goes on",
          "[persistence]") {
  TempDir dir;
  Node n(dir.str(), Durability::snapshot);
  test::ok(n.rt->call("db.create_table",
                      {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
  // The data dir replaced by a regular file: creating the .tmp fails with ENOTDIR, even for
  // root (a read-only mode would not stop root).
  fs::remove_all(dir.str());
  std::ofstream(dir.str()) << "x";
  auto r = n.rt->call("db.snapshot", json::object());
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.error().code == Errc::io_error);
  CHECK_THAT(r.error().message, Catch::Matchers::Contains(dir.str() + "/snapshot-"));
  CHECK_THAT(r.error().message, Catch::Matchers::Contains(std::strerror(ENOTDIR)));
  CHECK(n.store->figures().snapshot.failures == 1);
  add(*n.rt, "t", {{"v", 1}});  // writes go on (no log in this mode)
  fs::remove(dir.str());
  fs::create_directory(dir.str());  // for the last snapshot at stop
  test::ok(n.rt->call("db.snapshot", json::object()));
}

TEST_CASE("a torn log tail is cut: the database is what the whole entries say", "[persistence]") {
  TempDir dir, image;
  std::shared_ptr<const DbVersion> before_last;
  {
    Node n(dir.str());
    test::ok(n.rt->call("db.create_table",
                        {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
    for (int i = 0; i < 50; ++i) add(*n.rt, "t", {{"v", i}});
    before_last = n.rt->head();  // everything committed, on disk or not
    add(*n.rt, "t", {{"v", 1000}});
    n.quiesce();
    copy_dir(dir.str(), image.str());
  }
  auto segs = files_of(image.str(), "log-");
  REQUIRE(segs.size() == 1);
  const std::string seg = segs.begin()->second;
  // The segment is preallocated: its entries end before its zeros do.
  const auto full = ok(read_log_file(seg)).valid_bytes;
  REQUIRE(fs::file_size(seg) > full);
  fs::resize_file(seg, full - 3);  // the last entry loses its end
  Node back(image.str());
  CHECK(back.said("cut after the last whole entry"));
  CHECK(back.recovered.cut_bytes > 0);
  test::require_same_db(*before_last, *back.rt->current());
  CHECK(fs::file_size(seg) < full - 3);  // cut on disk too
}

TEST_CASE("sync durability answers a write only once its entry is in the log file",
          "[persistence]") {
  TempDir dir;
  Node n(dir.str(), Durability::sync);
  test::ok(n.rt->call("db.create_table",
                      {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
  for (int i = 1; i <= 20; ++i) {
    add(*n.rt, "t", {{"v", i * 7}});
    auto segs = files_of(dir.str(), "log-");
    REQUIRE_FALSE(segs.empty());
    auto r = ok(read_log_file(segs.rbegin()->second));
    REQUIRE_FALSE(r.entries.empty());
    const auto& last = r.entries.back();
    CHECK(last.version == n.rt->current()->version());
    REQUIRE(last.calls.size() == 1);
    CHECK(last.calls[0].params.find(std::to_string(i * 7)) != std::string::npos);
  }
  auto st = n.store->figures().log;
  CHECK(st.fsyncs >= 21);
  CHECK(st.durability == "sync");
}

// Async durability answers a write at once and writes the log once a second here: a long
// window in which the write is published but not on disk.
TEST_CASE("durable reads: readers see a version only once its log entry is on disk",
          "[persistence]") {
  TempDir dir;
  Node n(dir.str(), Durability::async, false, false, 1.0);
  CHECK(n.rt->durable_reads());
  CHECK(n.store->figures().log.read_visibility == "durable");
  test::ok(n.rt->call("db.create_table",
                      {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
  REQUIRE(test::wait_until([&] { return n.rt->current()->table("t") != nullptr; }));
  const auto id = add(*n.rt, "t", {{"v", 5}});  // answered at once: async
  REQUIRE(n.rt->head()->table("t")->get(id));
  // A read-only call on the executor read the new version: its answer waits for the log too.
  std::atomic<bool> read_answered{false}, read_saw_durable{false};
  n.rt->call_async("db.transaction",
                   {{"ops", {{{"method", "db.get"}, {"params", {{"table", "t"}, {"id", id}}}}}}},
                   [&](Result<json> r) {
                     // By the time it is answered, what it read is readable (on disk).
                     read_saw_durable = r.is_ok() && n.rt->current()->table("t")->get(id);
                     read_answered = true;
                   });
  // Every look: the record is readable only once the log on disk holds its version.
  bool lagged = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto v = n.rt->current();
    if (!v->table("t")->get(id)) {
      lagged = true;
      CHECK(code_of(n.rt->call("db.get", {{"table", "t"}, {"id", id}})) == Errc::not_found);
      std::this_thread::sleep_for(5ms);
      continue;
    }
    auto segs = files_of(dir.str(), "log-");
    REQUIRE_FALSE(segs.empty());
    auto log = ok(read_log_file(segs.rbegin()->second));
    REQUIRE_FALSE(log.entries.empty());
    CHECK(log.entries.back().version >= v->version());
    break;
  }
  CHECK(lagged);  // the flush is a second away: readers waited for it
  CHECK(n.rt->current()->table("t")->get(id));
  REQUIRE(test::wait_until([&] { return read_answered.load(); }));
  CHECK(read_saw_durable);
  CHECK(test::ok(n.rt->call("db.get", {{"table", "t"}, {"id", id}}))["v"] == 5);
}

TEST_CASE("immediate reads see a version as soon as it is published", "[persistence]") {
  TempDir dir;
  Node n(dir.str(), Durability::async, false, false, 1.0, false);
  CHECK_FALSE(n.rt->durable_reads());
  CHECK(n.store->figures().log.read_visibility == "immediate");
  test::ok(n.rt->call("db.create_table",
                      {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
  const auto id = add(*n.rt, "t", {{"v", 5}});
  CHECK(n.rt->current()->table("t")->get(id));  // before any flush
  CHECK(n.store->figures().log.pending_entries > 0);
}

TEST_CASE("concurrent writes share fsyncs (group commit) and all of them recover",
          "[persistence]") {
  TempDir dir, image;
  std::shared_ptr<const DbVersion> live;
  {
    Node n(dir.str(), Durability::sync);
    test::ok(n.rt->call("db.create_table",
                        {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
    std::atomic<int> answered{0};
    for (int i = 0; i < 2000; ++i)
      n.rt->call_async("db.insert", {{"table", "t"}, {"values", {{"v", i}}}}, [&](Result<json> r) {
        if (r.is_ok()) answered.fetch_add(1);
      });
    REQUIRE(test::wait_until([&] { return answered.load() == 2000; }));
    auto st = n.store->figures().log;
    CHECK(st.fsyncs < 200);  // 2000 acknowledged writes, far fewer fsyncs
    n.quiesce();
    live = n.rt->head();  // everything committed, on disk or not
    copy_dir(dir.str(), image.str());
  }
  Node back(image.str());
  CHECK(back.rt->current()->table("t")->count() == 2000);
  test::require_same_db(*live, *back.rt->current());
}

TEST_CASE("async and snapshot durability keep everything over a graceful stop", "[persistence]") {
  for (Durability mode : {Durability::async, Durability::snapshot}) {
    INFO(to_string(mode));
    TempDir dir;
    std::shared_ptr<const DbVersion> live;
    {
      Node n(dir.str(), mode);
      test::ok(n.rt->call("db.create_table",
                          {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
      for (int i = 0; i < 30; ++i) add(*n.rt, "t", {{"v", i}});
      live = n.rt->head();  // everything committed, on disk or not
    }                       // graceful: log written, last snapshot taken
    CHECK(files_of(dir.str(), "log-").empty() == (mode == Durability::snapshot));
    Node back(dir.str(), mode);
    CHECK(back.recovered.entries.empty());  // the last snapshot holds it all
    test::require_same_db(*live, *back.rt->current());
  }
}

TEST_CASE("recovery refuses what it cannot trust, saying why", "[persistence]") {
  TempDir dir;
  {
    Node n(dir.str());
    test::ok(n.rt->call("db.create_table",
                        {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
    add(*n.rt, "t", {{"v", 1}});
    test::ok(n.rt->call("db.snapshot", json::object()));
    add(*n.rt, "t", {{"v", 2}});
    // A second node on the same directory is refused.
    PersistenceOptions po;
    po.data_dir = dir.str();
    auto second = Persistence::open(po);
    REQUIRE_FALSE(second.is_ok());
    CHECK(second.code() == Errc::conflict);
  }
  SECTION("a snapshot of a newer format version stops the start") {
    auto snaps = files_of(dir.str(), "snapshot-");
    REQUIRE_FALSE(snaps.empty());
    {
      std::fstream f(snaps.rbegin()->second, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(8);
      f.put('\x03');
    }
    PersistenceOptions po;
    po.data_dir = dir.str();
    auto p = ok(Persistence::open(po));
    auto r = p->recover();
    REQUIRE_FALSE(r.is_ok());
    CHECK_THAT(r.message(), Catch::Matchers::Contains("format version 3") &&
                                Catch::Matchers::Contains("refusing to start"));
  }
  SECTION("a log that does not follow the snapshot is refused at replay") {
    // The snapshots are gone; the log kept only covers what came after the oldest of them.
    for (const auto& [v, path] : files_of(dir.str(), "snapshot-")) fs::remove(path);
    auto segs = files_of(dir.str(), "log-");
    REQUIRE_FALSE(segs.empty());
    REQUIRE(segs.begin()->first > 1);
    PersistenceOptions po;
    po.data_dir = dir.str();
    auto p = ok(Persistence::open(po));
    auto rec = ok(p->recover());
    REQUIRE_FALSE(rec.entries.empty());
    auto rt = ok(Runtime::start(test::no_ticks(1), rec.db));
    auto st = rt->replay(rec.entries.front());
    REQUIRE_FALSE(st.is_ok());
    CHECK_THAT(st.message(), Catch::Matchers::Contains("a log segment is missing"));
  }
  SECTION("bad options") {
    PersistenceOptions po;
    po.data_dir = dir.str() + "/other";
    po.snapshot_keep = 0;
    CHECK(code_of_status(Persistence::open(po)) == Errc::invalid_argument);
  }
  SECTION("a data dir that cannot be made is io_error naming it") {
    std::ofstream(dir.str() + "/plain") << "x";  // a regular file as the parent: fails for root too
    PersistenceOptions po;
    po.data_dir = dir.str() + "/plain/data";
    auto r = Persistence::open(po);
    CHECK(code_of_status(r) == Errc::io_error);
    if (!r) CHECK_THAT(r.message(), Catch::Matchers::Contains(po.data_dir));
  }
}

TEST_CASE("a segment that chains on after a torn one is replayed, not moved aside",
          "[persistence]") {
  // What a repaired write failure leaves (Impl::repair): the segment after an older snapshot
  // ends torn, a newer snapshot holds everything, and the log goes on after it.
  TempDir dir, image;
  std::shared_ptr<const DbVersion> last;
  {
    Node n(dir.str());
    test::ok(n.rt->call("db.create_table",
                        {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
    for (int i = 0; i < 10; ++i) add(*n.rt, "t", {{"v", i}});
    test::ok(n.rt->call("db.snapshot", json::object()));
    for (int i = 10; i < 20; ++i) add(*n.rt, "t", {{"v", i}});
    test::ok(n.rt->call("db.snapshot", json::object()));
    for (int i = 20; i < 30; ++i) add(*n.rt, "t", {{"v", i}});
    last = n.rt->head();  // everything committed, on disk or not
    n.quiesce();
    copy_dir(dir.str(), image.str());
  }
  auto segs = files_of(image.str(), "log-");
  REQUIRE(segs.size() == 2);  // the one after each snapshot (the one before them is pruned)
  const std::string torn = segs.begin()->second;
  const auto full = ok(read_log_file(torn)).valid_bytes;
  fs::resize_file(torn, full - 3);
  Node back(image.str());
  CHECK(back.said("cut after the last whole entry"));
  CHECK(back.said("read after the damaged one"));
  CHECK(files_of(image.str(), "log-").size() == 2);  // nothing moved aside
  test::require_same_db(*last, *back.rt->current());
}

// A call made under an Idempotency-Key, as the router makes it; `replayed` says whether the
// ledger answered it.
static Result<json> keyed_call(Runtime& rt, const std::string& key, std::uint64_t fingerprint,
                               const std::string& method, json params, bool* replayed = nullptr) {
  auto flag = std::make_shared<std::atomic<bool>>(false);
  IdempotencyScope scope(key, fingerprint, flag);
  auto r = rt.call(method, std::move(params));
  if (replayed) *replayed = flag->load();
  return r;
}

TEST_CASE("a write retried with its Idempotency-Key after a crash is answered, not applied again",
          "[persistence][idempotency]") {
  TempDir dir, image;
  json first_a, first_b, first_c0, first_c1;
  {
    Node n(dir.str());
    test::ok(n.rt->call("db.create_table",
                        {{"name", "t"}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}));
    first_a = test::ok(
        keyed_call(*n.rt, "order-a", 11, "db.insert", {{"table", "t"}, {"values", {{"v", 1}}}}));
    // "order-a" is then only in the snapshot's key file: its log segment may go.
    test::ok(n.rt->call("db.snapshot", json::object()));
    first_b = test::ok(
        keyed_call(*n.rt, "order-b", 12, "db.insert", {{"table", "t"}, {"values", {{"v", 2}}}}));
    {
      // Two calls under one key, as a JSON-RPC batch makes them: "order-c" and "order-c#1".
      IdempotencyScope scope("order-c", 13);
      first_c0 = test::ok(n.rt->call("db.insert", {{"table", "t"}, {"values", {{"v", 3}}}}));
      first_c1 = test::ok(n.rt->call(
          "db.update", {{"table", "t"}, {"id", first_a["id"]}, {"values", {{"v", 100}}}}));
    }
    n.quiesce();
    copy_dir(dir.str(), image.str());  // a crash: no last snapshot
  }
  CHECK(files_of(image.str(), "keys-").size() == 1);
  bool replayed = false;
  {
    Node back(image.str());
    REQUIRE(back.rt->current()->table("t")->count() == 3);
    // From the snapshot's key file.
    CHECK(test::ok(keyed_call(*back.rt, "order-a", 11, "db.insert",
                              {{"table", "t"}, {"values", {{"v", 1}}}}, &replayed)) == first_a);
    CHECK(replayed);
    // From the log replayed after it.
    CHECK(test::ok(keyed_call(*back.rt, "order-b", 12, "db.insert",
                              {{"table", "t"}, {"values", {{"v", 2}}}}, &replayed)) == first_b);
    CHECK(replayed);
    {
      IdempotencyScope scope("order-c", 13);
      CHECK(test::ok(back.rt->call("db.insert", {{"table", "t"}, {"values", {{"v", 3}}}})) ==
            first_c0);
      CHECK(test::ok(back.rt->call(
                "db.update", {{"table", "t"}, {"id", first_a["id"]}, {"values", {{"v", 100}}}})) ==
            first_c1);
    }
    CHECK(back.rt->current()->table("t")->count() == 3);  // nothing applied twice
    // The same key with another request is refused; a new key is applied.
    auto other = keyed_call(*back.rt, "order-a", 99, "db.insert",
                            {{"table", "t"}, {"values", {{"v", 7}}}}, &replayed);
    CHECK(test::code_of(other) == Errc::conflict);
    CHECK_FALSE(replayed);
    test::ok(keyed_call(*back.rt, "order-d", 14, "db.insert",
                        {{"table", "t"}, {"values", {{"v", 4}}}}, &replayed));
    CHECK_FALSE(replayed);
    CHECK(back.rt->current()->table("t")->count() == 4);
  }
  // A graceful stop's last snapshot carries every key on: after it, still answered.
  Node again(image.str());
  CHECK(again.recovered.entries.empty());
  CHECK(test::ok(keyed_call(*again.rt, "order-b", 12, "db.insert",
                            {{"table", "t"}, {"values", {{"v", 2}}}}, &replayed)) == first_b);
  CHECK(replayed);
  CHECK(again.rt->current()->table("t")->count() == 4);
}
