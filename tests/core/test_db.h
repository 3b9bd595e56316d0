// Helpers shared by the core tests: build a database through a transaction in one line.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "core/json_codec.h"
#include "core/transaction.h"

namespace tickdb::test {

// Commits `fn(txn)` over `base` and returns the new version; fails the test on any error.
template <class Fn>
std::shared_ptr<const DbVersion> commit(std::shared_ptr<const DbVersion> base, Fn&& fn) {
  Transaction txn(std::move(base));
  fn(txn);
  auto v = txn.commit();
  REQUIRE(v.is_ok());
  return *v;
}

inline void ok(const Status& s) {
  INFO(s.message());
  REQUIRE(s.is_ok());
}
template <class T>
T ok(Result<T> r) {
  INFO((r.is_ok() ? std::string() : r.message()));
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

// A 32-byte `things` record (see things_db) with the given hp and every other field zero.
inline std::vector<std::byte> rec32(std::int32_t hp) {
  std::vector<std::byte> r(32, std::byte{0});
  store<std::int32_t>(r.data(), hp);
  return r;
}

// vec3 {x,y,z f32} and a 32-byte `things` table: hp i32, pos vec3, owner u64, tag u32,
// speed f32 -> 4+12+8+4+4 = 32 bytes.
inline std::shared_ptr<const DbVersion> things_db(std::uint64_t n = 0) {
  return commit(DbVersion::empty(), [&](Transaction& t) {
    ok(t.create_type("vec3", {{"x", "f32"}, {"y", "f32"}, {"z", "f32"}}));
    ok(t.create_table("things", {{"hp", "i32"}, {"pos", "vec3"}, {"owner", "u64"}, {"tag", "u32"}, {"speed", "f32"}}));
    auto hp = FieldAccessor<std::int32_t>::resolve(*t.table("things")->schema(), "hp").value();
    for (std::uint64_t i = 0; i < n; ++i) {
      RecordBuffer rec(*t.table("things")->schema());
      hp.set(rec.data(), static_cast<std::int32_t>(i));
      ok(t.insert("things", rec.bytes()));
    }
  });
}

// A fresh directory under the system's temp dir, removed with everything in it at the end.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "tickdb-test-") {
    path = std::filesystem::temp_directory_path() /
           (prefix + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The same database: version, catalog, and every table's records (ids and bytes) and next id.
inline void require_same_db(const DbVersion& a, const DbVersion& b) {
  CHECK(a.version() == b.version());
  CHECK(catalog_to_json(a) == catalog_to_json(b));
  REQUIRE(a.tables().size() == b.tables().size());
  for (const auto& [name, t] : a.tables()) {
    const TableVersion* u = b.table(name);
    REQUIRE(u);
    INFO("table " << name);
    CHECK(t->count() == u->count());
    CHECK(t->next_id() == u->next_id());
    auto i = t->begin();
    auto j = u->begin();
    for (; i != t->end() && j != u->end(); ++i, ++j) {
      REQUIRE((*i).id() == (*j).id());
      REQUIRE(std::memcmp((*i).data(), (*j).data(), t->record_size()) == 0);
    }
    CHECK((i == t->end()));
    CHECK((j == u->end()));
  }
}

}  // namespace tickdb::test
