// Snapshot files: what is written loads back exactly (catalog, ids, records, next ids, dead
// slots dropped); every kind of damage is refused with its reason; content that is wrong
// although the checksum holds is refused too; writing is atomic.
#include "test_db.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/snapshot_file.h"

using namespace tickdb;
using tickdb::test::ok;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_all(const std::string& p, const std::string& d) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(d.data(), static_cast<std::streamsize>(d.size()));
}

// Types, a composite, two related tables (one large enough for several blocks), deleted
// records, next ids above the last id, and an empty table.
std::shared_ptr<const DbVersion> rich_db() {
  auto db = test::things_db(100000);
  db = test::commit(db, [](Transaction& t) {
    ok(t.create_table("owners", {{"name", "str", 12}, {"alive", "bool"}}));
    ok(t.create_table("empty", {{"v", "f64"}}));
    ok(t.create_relation("things", "owner", "owners", OnDelete::set_zero));
    RecordBuffer o(*t.table("owners")->schema());
    ok(t.insert("owners", o.bytes(), 7));
    ok(t.insert("owners", o.bytes(), 1000));
    for (std::uint64_t id = 10; id < 100000; id += 7) ok(t.erase("things", id));
    ok(t.erase("owners", 1000));  // next id stays 1001
  });
  return db;
}

}  // namespace

TEST_CASE("a snapshot loads back exactly what was written", "[snapshot]") {
  TempDir dir;
  auto db = rich_db();
  const std::string path = dir.file("s.tds");
  auto w = ok(write_snapshot(*db, path, 1));
  CHECK(w.records == db->table("things")->count() + 1);
  CHECK(w.bytes == fs::file_size(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(w.raw_bytes > w.bytes);  // it compresses

  std::vector<std::uint64_t> seen;
  auto loaded =
      ok(read_snapshot(path, [&](std::uint64_t done, std::uint64_t) { seen.push_back(done); }));
  test::require_same_db(*db, *loaded.db);
  CHECK(loaded.info.checksum_ok);
  CHECK(loaded.info.version == db->version());
  REQUIRE(loaded.info.tables.size() == 3);
  // Ids go on where they were: never reused after a restart.
  auto after = test::commit(loaded.db, [](Transaction& t) {
    RecordBuffer o(*t.table("owners")->schema());
    CHECK(ok(t.insert("owners", o.bytes())) == 1001);
  });
  // Relations came back and still act.
  auto r = test::commit(after, [](Transaction& t) { ok(t.erase("owners", 7)); });
  (void)r;

  auto info = ok(inspect_snapshot(path));
  CHECK(info.checksum_ok);
  CHECK(info.version == db->version());
  CHECK(info.tables.size() == 3);
}

TEST_CASE("a damaged snapshot answers corruption naming the file and the reason", "[snapshot]") {
  TempDir dir;
  auto db = rich_db();
  const std::string path = dir.file("s.tds");
  ok(write_snapshot(*db, path, 3));
  const std::string good = read_all(path);
  auto refused = [&](const std::string& bytes, Errc want, const std::string& reason) {
    write_all(path, bytes);
    auto r = read_snapshot(path);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.code() == want);
    CHECK(r.message().find(path) != std::string::npos);
    CHECK(r.message().find(reason) != std::string::npos);
    return r.message();
  };
  SECTION("one flipped byte anywhere in the body") {
    for (std::size_t at : {std::size_t{60}, good.size() / 3, good.size() / 2, good.size() - 20}) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ 0x40);
      refused(bad, Errc::corruption, "checksum");
      write_all(path, bad);
      CHECK_FALSE(ok(inspect_snapshot(path)).checksum_ok);
    }
  }
  SECTION("cut short") {
    refused(good.substr(0, good.size() / 2), Errc::corruption, "checksum");
    refused(good.substr(0, 10), Errc::corruption, "no snapshot magic");
  }
  SECTION("not a snapshot") {
    refused(std::string(200, 'x'), Errc::corruption, "no snapshot magic");
    CHECK(inspect_snapshot(path).code() == Errc::corruption);
  }
  SECTION("a format version this build does not read") {
    std::string newer = good;
    newer[8] = 3;  // the format field follows the magic
    // Not damage: conflict, so that recovery stops instead of skipping it.
    auto m = refused(newer, Errc::conflict, "format version 3");
    CHECK(m.find("format version 3") != std::string::npos);
    CHECK(m.find("reads versions 1 to 2") != std::string::npos);
  }
  SECTION("a missing file is io_error naming it and the OS error") {
    fs::remove(path);
    for (const auto& r : {read_snapshot(path).status(), inspect_snapshot(path).status()}) {
      CHECK(r.code() == Errc::io_error);
      CHECK(r.message().find(path) != std::string::npos);
      CHECK(r.message().find(std::strerror(ENOENT)) != std::string::npos);
    }
  }
  SECTION("a directory in its place is io_error, not corruption") {
    fs::remove(path);
    fs::create_directory(path);
    auto r = read_snapshot(path);
    CHECK(r.code() == Errc::io_error);
    CHECK(r.message().find(path) != std::string::npos);
  }
}

TEST_CASE("content that is wrong although the checksum holds is refused", "[snapshot]") {
  TempDir dir;
  // A bool field holding 2: impossible through the API, written here behind its back.
  auto db = test::commit(DbVersion::empty(), [](Transaction& t) {
    ok(t.create_table("flags", {{"on", "bool"}}));
    RecordBuffer r(*t.table("flags")->schema());
    ok(t.insert("flags", r.bytes()));
    auto w = ok(t.writable_table("flags"));
    auto p = ok(w->mutable_slot(0));
    *p = std::byte{2};
  });
  const std::string path = dir.file("bad.tds");
  ok(write_snapshot(*db, path, 1));
  auto r = read_snapshot(path);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.code() == Errc::corruption);
  CHECK(r.message().find(path) != std::string::npos);
  CHECK(r.message().find("record 1") != std::string::npos);
  CHECK(ok(inspect_snapshot(path)).checksum_ok);  // the file is whole; its content is not valid
}

TEST_CASE(
    "a snapshot that cannot be written answers io_error naming the path and leaves nothing behind",
    "[snapshot]") {
  TempDir dir;
  auto db = test::things_db(10);
  const std::string missing = dir.file("no/such/dir/s.tds");
  auto r = write_snapshot(*db, missing, 1);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.code() == Errc::io_error);
  CHECK(r.message().find(missing) != std::string::npos);
  CHECK(r.message().find(std::strerror(ENOENT)) != std::string::npos);
  CHECK_FALSE(fs::exists(dir.file("no")));
  // A directory whose parent is a regular file: what fails even for root (chmod does not).
  write_all(dir.file("plain"), "x");
  const std::string under_file = dir.file("plain/s.tds");
  auto r2 = write_snapshot(*db, under_file, 1);
  REQUIRE_FALSE(r2.is_ok());
  CHECK(r2.code() == Errc::io_error);
  CHECK(r2.message().find(under_file) != std::string::npos);
  CHECK(r2.message().find(std::strerror(ENOTDIR)) != std::string::npos);
  CHECK(fsync_dir(dir.file("plain/sub")).code() == Errc::io_error);
  // Over an existing file: replaced whole.
  const std::string path = dir.file("s.tds");
  write_all(path, "old");
  ok(write_snapshot(*db, path, 1));
  test::require_same_db(*db, *ok(read_snapshot(path)).db);
}
