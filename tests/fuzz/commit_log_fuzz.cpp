// Fuzz target: the commit log's reader and its replay (core/commit_log.h, Runtime::replay), as
// recovery runs them: read_log_file on a segment, then every entry replayed in order over the
// database (one Runtime, started once without ticks; reset to the fixed database before each
// input by publishing it again, which is safe here because nothing else writes).
//
// Input: a log segment. The target reads it as given (so the checksums themselves are
// fuzzed) and again with every whole entry's checksum set right, so that mutations reach the
// payload decoder and the calls' replay. The reader never fails on content: its whole entries
// end at valid_bytes, within the file.
//
// Seeds: TICKDB_FUZZ_WRITE_SEEDS=DIR commit_log_fuzz writes segments of the built-in calls
// (seed-3: calls made under Idempotency-Keys, which replay records in the ledger).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "actors/runtime.h"
#include "core/commit_log.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tickdb;

namespace {

Runtime* runtime = nullptr;  // never destroyed: its threads outlive the fuzzing loop
std::shared_ptr<const DbVersion> initial;

const std::string& scratch() {
  static const std::string p = "/tmp/tickdb-fuzz-log-" + std::to_string(::getpid()) + ".tdl";
  return p;
}

void write_file(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fuzz::fail("cannot write " + path);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

// Sets the checksum of every whole entry with the right magic (see commit_log.h).
std::string fix_checksums(std::string_view in) {
  std::string out(in);
  std::size_t at = 0;
  while (out.size() - at >= 32) {
    std::uint32_t magic = 0, len = 0;
    std::memcpy(&magic, out.data() + at, 4);
    std::memcpy(&len, out.data() + at + 12, 4);
    if (magic != 0x454c4b54u || len > out.size() - at - 32 || len < 4) break;
    const std::size_t covered = 4 + 8 + 8 + len;
    const std::uint64_t sum = XXH3_64bits(out.data() + at + 12, covered);
    std::memcpy(out.data() + at + 4, &sum, 8);
    at += 12 + covered;
  }
  return out;
}

void replay(const std::string& path) {
  auto r = read_log_file(path);
  TICKDB_FUZZ_CHECK(r.is_ok(), r.message());
  TICKDB_FUZZ_CHECK(r->valid_bytes <= r->file_bytes, "valid_bytes past the end");
  runtime->versions().publish(initial);
  for (const auto& e : r->entries) {
    if (!runtime->replay(e)) break;
    TICKDB_FUZZ_CHECK(runtime->current()->version() == e.version, "replayed to another version");
  }
}

void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  struct Call {
    const char* name;
    const char* params;
    const char* key = nullptr;  // made under an Idempotency-Key
  };
  const std::vector<std::vector<std::vector<Call>>> segments = {
      {{{"db.insert", R"({"table":"t","values":{"i32":5,"s":"ab","pos":{"x":1}}})"}},
       {{"db.update", R"({"table":"t","id":1,"values":{"u64":7}})"},
        {"db.insert", R"({"table":"t","values":{"b":true}})"}},
       {{"db.delete", R"({"table":"t","id":2})"}}},
      {{{"db.create_table", R"({"name":"p","fields":[{"name":"hp","type":"i32"}]})"}},
       {{"db.add_field", R"({"table":"p","field":{"name":"o","type":"u64"}})"},
        {"db.create_relation", R"({"from_table":"p","from_field":"o","to_table":"t"})"}},
       {{"db.transaction",
         R"({"ops":[{"method":"db.insert","params":{"table":"t","values":{}}},{"method":"db.insert","params":{"table":"p","values":{"o":1}}}]})"}},
       {{"db.create_index", R"({"table":"p","name":"p_hp","fields":["hp"],"unique":true})"},
        {"db.remove_field", R"({"table":"t","field":"tag"})"}}},
      {{{"db.create_type", R"({"name":"v2","fields":[{"name":"a","type":"f64"}]})"},
        {"db.drop_type", R"({"name":"v2"})"},
        {"db.nope", R"({})"}}},
      {{{"db.insert", R"({"table":"t","values":{"i32":9}})", "order-1"},
        {"db.update", R"({"table":"t","id":1,"values":{"i32":10}})", "order-1#1"}},
       {{"db.insert", R"({"table":"t","values":{}})"},
        {"db.delete", R"({"table":"t","id":1})", "fwd-00000000000000ff-2"}}},
  };
  int n = 0;
  for (const auto& seg : segments) {
    std::string out;
    std::uint64_t v = initial->version();
    for (const auto& entry : seg) {
      std::string payload;
      for (const auto& c : entry) {
        const CallKey key{c.key ? c.key : "", 0x5eed, 1764633600000ull};
        append_logged_call(payload, c.name, c.params, 7, 1.0 / 60, &key);
      }
      append_entry(out, v + 1, v, static_cast<std::uint32_t>(entry.size()), payload);
      ++v;
    }
    write_file(dir + "/seed-" + std::to_string(n++), out);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  initial = fuzz::fixed_db();
  if (const char* dir = std::getenv("TICKDB_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  RuntimeConfig rc;
  rc.start_ticks = false;
  rc.workers = 1;
  auto rt = Runtime::start(rc, initial);
  if (!rt) fuzz::fail("runtime: " + rt.message());
  runtime = rt->release();
  (void)scratch();  // constructed before the handler is registered: destroyed after it runs
  std::atexit([] { std::remove(scratch().c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  write_file(scratch(), in);
  replay(scratch());
  write_file(scratch(), fix_checksums(in));
  replay(scratch());
  return 0;
}
