// The key file beside a snapshot: records read back as written; a damaged or cut file is
// corruption naming it, never a shorter list of keys.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/key_file.h"
#include "test_db.h"

using namespace tickdb;
using tickdb::test::ok;
namespace fs = std::filesystem;

namespace {
std::string temp_path() {
  return (fs::temp_directory_path() / ("tickdb-keys-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(std::random_device{}()) + ".tdk"))
      .string();
}
}  // namespace

TEST_CASE("a key file reads back as written", "[key-file][idempotency]") {
  const std::string path = temp_path();
  std::vector<KeyRecord> in{{"order-1", 1, 10, 1764633600000ull, R"({"id":1,"v":5})"},
                            {"order-1#1", 2, 11, 1764633600001ull, "null"},
                            {std::string(255, 'k'), ~0ull, 12, 3, std::string(70000, 'x')}};
  ok(write_key_file(path, in));
  CHECK_FALSE(fs::exists(path + ".tmp"));
  auto out = ok(read_key_file(path));
  REQUIRE(out.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    CHECK(out[i].key == in[i].key);
    CHECK(out[i].fingerprint == in[i].fingerprint);
    CHECK(out[i].version == in[i].version);
    CHECK(out[i].unix_ms == in[i].unix_ms);
    CHECK(out[i].result == in[i].result);
  }
  ok(write_key_file(path, std::vector<KeyRecord>{}));
  CHECK(ok(read_key_file(path)).empty());
  fs::remove(path);
}

TEST_CASE("a damaged or cut key file is corruption naming it", "[key-file][idempotency]") {
  const std::string bytes = encode_key_file({{"a", 1, 2, 3, "{}"}, {"b", 4, 5, 6, "[1]"}});
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    auto r = decode_key_file(std::string_view(bytes).substr(0, cut), "f.tdk");
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.error().code == Errc::corruption);
    CHECK_THAT(r.error().message, Catch::Matchers::Contains("'f.tdk'"));
  }
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    CHECK(decode_key_file(bad, "f.tdk").error().code == Errc::corruption);
  }
  CHECK(read_key_file("/nonexistent-dir/keys.tdk").error().code == Errc::io_error);
}

TEST_CASE("key file names carry the snapshot's version", "[key-file]") {
  CHECK(key_file_name(42) == "keys-00000000000000000042.tdk");
  CHECK(parse_key_file_name(key_file_name(42)) == 42u);
  CHECK(parse_key_file_name(key_file_name(~0ull)) == ~0ull);
  CHECK_FALSE(parse_key_file_name("keys-0000000000000000004x.tdk"));
  CHECK_FALSE(parse_key_file_name("snapshot-00000000000000000042.tdb"));
  CHECK_FALSE(parse_key_file_name("keys-00000000000000000042.tdk.tmp"));
}
