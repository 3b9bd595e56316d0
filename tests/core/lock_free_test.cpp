// Lock-free reads: loading the current version takes no mutex and never waits for a writer;
// readers only ever see whole versions. Run under ThreadSanitizer by tools/test.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "core/version_cell.h"
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;
using namespace std::chrono_literals;

TEST_CASE("readers only ever see whole versions while a writer changes two tables", "[lock-free][atomic]") {
  auto db0 = commit(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("a", {{"x", "i64"}}));
    ok(t.create_table("b", {{"x", "i64"}}));
    RecordBuffer r(*t.table("a")->schema());
    ok(r.set<std::int64_t>("x", 1000000));
    ok(t.insert("a", r.bytes()).status());
    ok(r.set<std::int64_t>("x", 0));
    ok(t.insert("b", r.bytes()).status());
  });
  VersionCell<DbVersion> cell(db0);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, torn{0}, versions_seen{0};
  constexpr int kWrites = 3000;

  auto reader = [&] {
    std::uint64_t last = 0;
    while (!stop.load(std::memory_order_acquire)) {
      auto v = cell.load();
      const TableVersion* a = v->table("a");
      const TableVersion* b = v->table("b");
      std::int64_t sum = a->get(1)->get<std::int64_t>("x").value() + b->get(1)->get<std::int64_t>("x").value();
      // every write moves 1 from a to b and appends one record to each table
      bool whole = sum == 1000000 && a->count() == b->count() &&
                   static_cast<std::uint64_t>(b->get(1)->get<std::int64_t>("x").value()) == a->count() - 1;
      if (!whole) torn.fetch_add(1);
      if (v->version() != last) versions_seen.fetch_add(1);
      last = v->version();
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread r1(reader), r2(reader);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int written = 0;
  for (; written < kWrites && std::chrono::steady_clock::now() < deadline; ++written) {
    auto cur = cell.load();
    Transaction t(cur);
    RecordBuffer a(*t.get("a", 1)), b(*t.get("b", 1));
    ok(a.set<std::int64_t>("x", t.get("a", 1)->get<std::int64_t>("x").value() - 1));
    ok(b.set<std::int64_t>("x", t.get("b", 1)->get<std::int64_t>("x").value() + 1));
    ok(t.update("a", 1, a.bytes()));
    ok(t.update("b", 1, b.bytes()));
    ok(t.insert("a", a.bytes()).status());
    ok(t.insert("b", b.bytes()).status());
    REQUIRE(cell.publish_if(cur.get(), t.commit().value()));
  }
  // let the readers see the last version too
  const auto seen_deadline = std::chrono::steady_clock::now() + 5s;
  while (reads.load() < 1000 && std::chrono::steady_clock::now() < seen_deadline) std::this_thread::sleep_for(1ms);
  stop.store(true, std::memory_order_release);
  r1.join();
  r2.join();
  CHECK(written > 100);
  CHECK(torn.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(versions_seen.load() > 1);
  auto last = cell.load();
  CHECK(last->table("a")->count() == static_cast<std::uint64_t>(written) + 1);
  CHECK(last->table("b")->get(1)->get<std::int64_t>("x").value() == written);
}

namespace {
// A version whose destruction blocks until released: destroying it holds the writer inside
// publish(), which is exactly when a reader must not have to wait.
struct Blocker {
  Blocker(int v, std::mutex* m, std::condition_variable* c, bool* r, std::atomic<bool>* d)
      : value(v), mu(m), cv(c), release(r), destroying(d) {}
  Blocker(const Blocker&) = delete;
  int value;
  std::mutex* mu;
  std::condition_variable* cv;
  bool* release;
  std::atomic<bool>* destroying;
  ~Blocker() {
    if (!mu) return;
    destroying->store(true);
    std::unique_lock<std::mutex> l(*mu);
    cv->wait(l, [&] { return *release; });
  }
};
}  // namespace

TEST_CASE("a reader never waits for a writer that is stuck inside publish", "[lock-free]") {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<bool> destroying{false};
  auto* cell = new VersionCell<Blocker>(
      std::make_shared<const Blocker>(1, &mu, &cv, &release, &destroying));
  std::thread writer([&] {
    // Retiring version 1 runs its destructor inside publish(), under the writers' lock.
    cell->publish(std::make_shared<const Blocker>(2, nullptr, nullptr, nullptr, nullptr));
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!destroying.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  REQUIRE(destroying.load());
  // The writer is blocked holding its lock; loads still complete, and see the new version.
  for (int i = 0; i < 1000; ++i) REQUIRE(cell->load()->value == 2);
  {
    std::lock_guard<std::mutex> l(mu);
    release = true;
  }
  cv.notify_all();
  writer.join();
  delete cell;
}

TEST_CASE("an old version held by a reader outlives any number of publishes", "[lock-free][cow]") {
  VersionCell<DbVersion> cell(things_db(100));
  auto held = cell.load();
  for (int i = 0; i < 100; ++i) {
    auto cur = cell.load();
    Transaction t(cur);
    ok(t.erase("things", static_cast<std::uint64_t>(i) + 1));
    REQUIRE(cell.publish_if(cur.get(), t.commit().value()));
  }
  CHECK(held->table("things")->count() == 100);
  CHECK(cell.load()->table("things")->count() == 0);
  CHECK(cell.retired_count() == 0);  // nobody protects an old box: all freed
}

TEST_CASE("a pinned version stays readable while newer ones are published", "[lock-free]") {
  VersionCell<DbVersion> cell(things_db(10));
  auto pin = cell.pin();
  const DbVersion* pinned = pin.get();
  for (int i = 0; i < 50; ++i) {
    auto cur = cell.load();
    Transaction t(cur);
    RecordBuffer r(*t.get("things", 1));
    ok(r.set<std::int32_t>("hp", 1000 + i));
    ok(t.update("things", 1, r.bytes()));
    REQUIRE(cell.publish_if(cur.get(), t.commit().value()));
  }
  // The pinned version's box is still protected: the version is intact and unchanged.
  CHECK(pin->table("things")->get(1)->get<std::int32_t>("hp").value() == 0);
  CHECK(pin.get() == pinned);
  CHECK(cell.retired_count() == 1);  // exactly the pinned box waits
  CHECK(cell.pin()->table("things")->get(1)->get<std::int32_t>("hp").value() == 1049);
}

TEST_CASE("more pins than hazard slots fall back to references and stay correct", "[lock-free]") {
  VersionCell<DbVersion> cell(things_db(1));
  std::vector<VersionCell<DbVersion>::Pin> pins;
  for (int i = 0; i < 10; ++i) pins.push_back(cell.pin());
  auto loaded = cell.load();  // with every slot taken, load() still protects its read
  for (int i = 0; i < 5; ++i) {
    auto cur = cell.load();
    Transaction t(cur);
    ok(t.insert("things", std::vector<std::byte>(32)).status());
    REQUIRE(cell.publish_if(cur.get(), t.commit().value()));
  }
  for (const auto& p : pins) CHECK(p->table("things")->count() == 1);
  CHECK(loaded->table("things")->count() == 1);
  pins.clear();
  CHECK(cell.pin()->table("things")->count() == 6);
  // With the pins gone, the next publish frees every waiting box.
  cell.publish(cell.load());
  CHECK(cell.retired_count() == 0);
}

TEST_CASE("pins from many threads during publishes see whole versions", "[lock-free]") {
  VersionCell<DbVersion> cell(things_db(1));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, reads{0};
  auto reader = [&] {
    while (!stop.load()) {
      auto p = cell.pin();
      const TableVersion* t = p->table("things");
      // every version has hp of record 1 == count - 1 (the writer keeps it so)
      if (static_cast<std::uint64_t>(t->get(1)->get<std::int32_t>("hp").value()) + 1 != t->count()) bad.fetch_add(1);
      reads.fetch_add(1);
    }
  };
  std::thread a(reader), b(reader);
  for (int i = 0; i < 500; ++i) {
    auto cur = cell.load();
    Transaction t(cur);
    ok(t.insert("things", std::vector<std::byte>(32)).status());
    RecordBuffer r(*t.get("things", 1));
    ok(r.set<std::int32_t>("hp", static_cast<std::int32_t>(t.table("things")->count() - 1)));
    ok(t.update("things", 1, r.bytes()));
    REQUIRE(cell.publish_if(cur.get(), t.commit().value()));
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (reads.load() < 100 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  stop = true;
  a.join();
  b.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
}
