// Fuzz target: the snapshot reader (core/snapshot_file.h), read_snapshot and inspect_snapshot.
//
// Input: a snapshot file without its 16-byte trailer. The target writes it twice: as given
// (so the checksum check itself is fuzzed: it must refuse) and with the right trailer
// appended (magic and XXH3 of the input), so that mutations reach the catalog, the table
// sections, the zstd blocks and the record checks behind the checksum. A snapshot that loads
// must write again and load to the same catalog.
//
// Seeds: TICKDB_FUZZ_WRITE_SEEDS=DIR snapshot_fuzz writes snapshots made by write_snapshot
// (trailer cut) into DIR and exits (tests/fuzz/corpus/snapshot was made so).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/snapshot_file.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tickdb;

namespace {

const std::string& scratch() {
  static const std::string p = "/tmp/tickdb-fuzz-snapshot-" + std::to_string(::getpid());
  return p;
}

void write_file(const std::string& path, std::string_view a, std::string_view b = {}) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fuzz::fail("cannot write " + path);
  std::fwrite(a.data(), 1, a.size(), f);
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string trailer(std::string_view body) {
  std::string t("TICKDBE\0", 8);
  const std::uint64_t sum = XXH3_64bits(body.data(), body.size());
  t.append(reinterpret_cast<const char*>(&sum), sizeof sum);
  return t;
}

std::shared_ptr<const DbVersion> seed_db(int records) {
  Transaction txn(fuzz::fixed_db());
  auto ok = [](const Status& s) {
    if (!s) fuzz::fail(s.message());
  };
  ok(txn.create_table("owner", {{"name", "str", 4}}));
  for (int i = 0; i < records; ++i) {
    ok(insert_json(txn, "owner", json{{"name", "o" + std::to_string(i)}}).status());
    ok(insert_json(txn, "t",
                   json{{"b", i % 2 == 1},
                        {"i32", -i},
                        {"u64", i + 1},
                        {"f32", 0.5 * i},
                        {"s", "abc"},
                        {"pos", {{"x", 1.5}, {"y", -2}, {"z", i}}}})
           .status());
  }
  if (records > 2) ok(txn.erase("t", 2));
  ok(txn.create_relation("t", "u64", "owner", OnDelete::cascade).status());
  ok(txn.create_index("t", IndexDef{"t_i32", {"i32"}, IndexType::ordered, false}).status());
  auto v = txn.commit();
  if (!v) fuzz::fail(v.message());
  return *v;
}

void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  int n = 0;
  for (auto db : {DbVersion::empty(), fuzz::fixed_db(), seed_db(3), seed_db(40)}) {
    const std::string path = dir + "/seed-" + std::to_string(n++);
    if (auto w = write_snapshot(*db, path, 1); !w) fuzz::fail(w.message());
    std::string f = read_file(path);
    f.resize(f.size() - 16);
    write_file(path, f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("TICKDB_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  (void)scratch();  // constructed before the handler is registered: destroyed after it runs
  std::atexit([] {
    std::remove(scratch().c_str());
    std::remove((scratch() + ".again").c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  const std::string& path = scratch();

  write_file(path, body);
  (void)inspect_snapshot(path);
  if (auto raw = read_snapshot(path); raw.is_ok()) {
    // Only a file that happens to end in a valid trailer of its own loads as given.
    TICKDB_FUZZ_CHECK(size >= 16 && body.substr(size - 16) == trailer(body.substr(0, size - 16)),
                      "a snapshot without a valid trailer loaded");
  }

  write_file(path, body, trailer(body));
  (void)inspect_snapshot(path);
  auto loaded = read_snapshot(path);
  if (!loaded) return 0;
  const DbVersion& db = *loaded->db;
  const std::string again = path + ".again";
  auto w = write_snapshot(db, again, 1);
  TICKDB_FUZZ_CHECK(w.is_ok(), w.message());
  auto back = read_snapshot(again);
  TICKDB_FUZZ_CHECK(back.is_ok(), back.message());
  TICKDB_FUZZ_CHECK(catalog_to_json(*back->db) == catalog_to_json(db), "catalog differs");
  return 0;
}
