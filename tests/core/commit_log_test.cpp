// The commit log format: entries read back as written; a torn tail (cut at any byte) or a
// damaged entry ends the entries at the last whole one, and says where.
#include "test_db.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "core/commit_log.h"

using namespace tickdb;
using tickdb::test::ok;
namespace fs = std::filesystem;

namespace {

struct TempFile {
  std::string path =
      (fs::temp_directory_path() / ("tickdb-log-" + std::to_string(::getpid()) + "-" +
                                    std::to_string(std::random_device{}()) + ".tdl"))
          .string();
  ~TempFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

std::string entries_text(int n, std::vector<std::size_t>* ends = nullptr) {
  std::string out;
  std::uint64_t prev = 0;
  for (int i = 1; i <= n; ++i) {
    std::string calls;
    append_logged_call(calls, "db.insert",
                       R"({"table":"t","values":{"hp":)" + std::to_string(i) + "}}", 0, 0.0);
    append_logged_call(calls, "step", R"({"dt":0.016})", static_cast<std::uint64_t>(i) * 3,
                       1.0 / 60);
    const std::uint64_t v =
        prev + 1 + static_cast<std::uint64_t>(i % 3);  // versions rise, not always by one
    append_entry(out, v, prev, 2, calls);
    prev = v;
    if (ends) ends->push_back(out.size());
  }
  return out;
}

// Whether any block of [from, to) of the file is an unwritten (allocated, never written)
// extent, after the file's dirty pages are flushed; nullopt where the filesystem does not say.
std::optional<bool> has_unwritten(const std::string& path, std::uint64_t from, std::uint64_t to) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  constexpr unsigned kMax = 256;
  std::vector<char> buf(sizeof(fiemap) + kMax * sizeof(fiemap_extent));
  auto* fm = reinterpret_cast<fiemap*>(buf.data());
  fm->fm_start = from;
  fm->fm_length = to - from;
  fm->fm_flags = FIEMAP_FLAG_SYNC;
  fm->fm_extent_count = kMax;
  const int rc = ::ioctl(fd, FS_IOC_FIEMAP, fm);
  ::close(fd);
  if (rc != 0) return std::nullopt;
  for (unsigned i = 0; i < fm->fm_mapped_extents; ++i)
    if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN) return true;
  return false;
}

void write_file(const std::string& path, const std::string& d) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(d.data(), static_cast<std::streamsize>(d.size()));
}

}  // namespace

TEST_CASE("log entries read back as written", "[commit-log]") {
  TempFile f;
  std::uint64_t written = 0;
  {
    LogFile log;
    ok(log.open(f.path));
    ok(log.write(entries_text(5)));
    ok(log.sync());
    written = log.bytes();
    CHECK(written == entries_text(5).size());
    CHECK(fs::file_size(f.path) >= kLogPreallocBytes);  // preallocated ahead of the writes
  }
  auto r = ok(read_log_file(f.path));
  CHECK(r.damage.is_ok());  // the zeros after the entries are a clean end
  REQUIRE(r.entries.size() == 5);
  CHECK(r.valid_bytes == written);
  CHECK(r.file_bytes == fs::file_size(f.path));
  std::uint64_t prev = 0;
  for (int i = 0; i < 5; ++i) {
    const auto& e = r.entries[static_cast<std::size_t>(i)];
    CHECK(e.prev_version == prev);
    CHECK(e.version > prev);
    prev = e.version;
    REQUIRE(e.calls.size() == 2);
    CHECK(e.calls[0].name == "db.insert");
    CHECK(e.calls[0].params == R"({"table":"t","values":{"hp":)" + std::to_string(i + 1) + "}}");
    CHECK(e.calls[1].name == "step");
    CHECK(e.calls[1].tick == static_cast<std::uint64_t>(i + 1) * 3);
    CHECK(e.calls[1].tick_dt == 1.0 / 60);
  }
  // Appending to an existing segment goes on after its last entry, not after its zeros.
  {
    LogFile log;
    ok(log.open(f.path));
    CHECK(log.bytes() == written);
    ok(log.write(entries_text(6).substr(written)));
    ok(log.sync());
  }
  auto again = ok(read_log_file(f.path));
  CHECK(again.damage.is_ok());
  CHECK(again.entries.size() == 6);
  CHECK(log_file_name(42) == "log-00000000000000000042.tdl");
  CHECK(parse_log_file_name("log-00000000000000000042.tdl") == std::optional<std::uint64_t>(42));
  CHECK_FALSE(parse_log_file_name("log-42.tdl"));
  CHECK_FALSE(parse_log_file_name("log-0000000000000000004x.tdl"));
}

TEST_CASE("a torn log tail ends at the last whole entry, wherever it is cut", "[commit-log]") {
  TempFile f;
  std::vector<std::size_t> ends;
  const std::string all = entries_text(4, &ends);
  for (std::size_t cut = ends[2] + 1; cut < all.size(); ++cut) {
    write_file(f.path, all.substr(0, cut));
    auto r = ok(read_log_file(f.path));
    INFO("cut at " << cut);
    REQUIRE(r.entries.size() == 3);
    CHECK(r.valid_bytes == ends[2]);
    CHECK(r.damage.code() == Errc::corruption);
    CHECK(r.damage.message().find(f.path) != std::string::npos);
    CHECK(r.damage.message().find("at byte " + std::to_string(ends[2])) != std::string::npos);
  }
  // Cutting the file there leaves a clean log.
  write_file(f.path, all.substr(0, ends[2] + 7));
  ok(truncate_log_file(f.path, ends[2]));
  auto r = ok(read_log_file(f.path));
  CHECK(r.damage.is_ok());
  CHECK(r.entries.size() == 3);
}

TEST_CASE("a damaged log entry ends the entries before it", "[commit-log]") {
  TempFile f;
  std::vector<std::size_t> ends;
  const std::string all = entries_text(5, &ends);
  for (std::size_t at = ends[1]; at < ends[2]; at += 3) {
    std::string bad = all;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    write_file(f.path, bad);
    auto r = ok(read_log_file(f.path));
    INFO("byte " << at);
    CHECK(r.entries.size() == 2);
    CHECK(r.valid_bytes == ends[1]);
    CHECK(r.damage.code() == Errc::corruption);
  }
}

TEST_CASE("a log file that cannot be opened, read or written answers io_error naming it",
          "[commit-log]") {
  TempFile f;
  const std::string missing = f.path + ".missing";
  auto r = read_log_file(missing);
  CHECK(r.code() == Errc::io_error);
  CHECK(r.message().find(missing) != std::string::npos);
  CHECK(r.message().find(std::strerror(ENOENT)) != std::string::npos);
  CHECK(truncate_log_file(missing, 0).code() == Errc::io_error);
  // A directory in the file's place: open for reading succeeds, read() fails with EISDIR.
  const std::string dir = f.path + ".d";
  std::filesystem::create_directory(dir);
  auto d = read_log_file(dir);
  CHECK(d.code() == Errc::io_error);
  CHECK(d.message().find(dir) != std::string::npos);
  std::filesystem::remove(dir);
  // A segment under a regular file (fails for root too, unlike chmod).
  write_file(f.path, "x");
  LogFile lf;
  auto st = lf.open(f.path + "/log-00000000000000000001.tdl");
  CHECK(st.code() == Errc::io_error);
  CHECK(st.message().find(std::strerror(ENOTDIR)) != std::string::npos);
}

TEST_CASE("a preallocated zero tail is a clean end, anything else after the entries is damage",
          "[commit-log]") {
  TempFile f;
  std::vector<std::size_t> ends;
  const std::string all = entries_text(3, &ends);
  write_file(f.path, all + std::string(4096, '\0'));
  auto clean = ok(read_log_file(f.path));
  CHECK(clean.damage.is_ok());
  CHECK(clean.entries.size() == 3);
  CHECK(clean.valid_bytes == all.size());
  // One byte that is not zero in the tail: damage at the end of the last whole entry.
  std::string tail(4096, '\0');
  tail[1000] = 'x';
  write_file(f.path, all + tail);
  auto bad = ok(read_log_file(f.path));
  CHECK(bad.entries.size() == 3);
  CHECK(bad.valid_bytes == all.size());
  CHECK(bad.damage.code() == Errc::corruption);
  // A half-written entry followed by zeros is damage too, not a clean end.
  write_file(f.path, all.substr(0, ends[1] + 10) + std::string(100, '\0'));
  auto torn = ok(read_log_file(f.path));
  CHECK(torn.entries.size() == 2);
  CHECK(torn.damage.code() == Errc::corruption);
}

TEST_CASE("the log writes zeros ahead of its entries, so an fdatasync finds their blocks written",
          "[commit-log]") {
  TempFile f;
  LogFile log;
  ok(log.open(f.path));
  // 3 MiB of entries in small appends, as a stream of single POSTs makes them.
  std::string text;
  std::uint64_t prev = 0;
  while (text.size() < 3 * kLogZeroStep) {
    std::string calls;
    append_logged_call(calls, "db.insert", std::string(1500, 'p'), 0, 0.0);
    append_entry(text, prev + 1, prev, 1, calls);
    ++prev;
  }
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t n = std::min<std::size_t>(1531, text.size() - at);
    ok(log.write(std::string_view(text).substr(at, n)));
    at += n;
    if (at % (7 * 1531) == 0) ok(log.sync());
    REQUIRE(log.bytes() == at);
  }
  ok(log.sync());
  const std::uint64_t end = log.bytes();
  {
    std::ifstream in(f.path, std::ios::binary);
    std::string got(end + kLogZeroStep / 2, 'x');
    in.read(got.data(), static_cast<std::streamsize>(got.size()));
    CHECK(got.substr(0, end) == text);
    // Half a step past the last write is zeros, written (the extents are checked below).
    CHECK(got.substr(end) == std::string(kLogZeroStep / 2, '\0'));
  }
  auto r = ok(read_log_file(f.path));
  CHECK(r.damage.is_ok());
  CHECK(r.valid_bytes == end);
  CHECK(r.entries.size() == prev);
  const auto near = has_unwritten(f.path, 0, end + kLogZeroStep / 2);
  const auto far = has_unwritten(f.path, end + 4 * kLogZeroStep, kLogPreallocBytes);
  if (!near || !far || !*far) {
    WARN("this filesystem does not report unwritten extents; the block check is skipped");
    return;
  }
  CHECK_FALSE(*near);  // entries and the zeros ahead of them: written blocks
  CHECK(*far);         // preallocated further on, not yet written
}

TEST_CASE("entries_through finds the whole entries up to a version", "[commit-log]") {
  std::vector<std::size_t> ends;
  const std::string text = entries_text(6, &ends);
  TempFile f;
  write_file(f.path, text);
  auto entries = ok(read_log_file(f.path)).entries;
  REQUIRE(entries.size() == 6);
  std::uint64_t count = 99;
  CHECK(entries_through(text, 0, count) == 0);
  CHECK(count == 0);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    CHECK(entries_through(text, entries[i].version, count) == ends[i]);
    CHECK(count == i + 1);
    // A version between two entries' holds the earlier ones only.
    if (i + 1 < entries.size() && entries[i + 1].version > entries[i].version + 1) {
      CHECK(entries_through(text, entries[i].version + 1, count) == ends[i]);
      CHECK(count == i + 1);
    }
  }
  CHECK(entries_through(text, ~0ull, count) == text.size());
  CHECK(count == 6);
  // A cut entry at the end is not counted.
  CHECK(entries_through(std::string_view(text).substr(0, text.size() - 1), ~0ull, count) ==
        ends[4]);
  CHECK(count == 5);
}

TEST_CASE("a keyed call reads back with its key; an entry without keys is as before keys",
          "[commit-log][idempotency]") {
  std::string plain, keyed_calls;
  append_logged_call(plain, "db.insert", R"({"table":"t"})", 5, 0.5);
  std::string plain_with_null_key;
  append_logged_call(plain_with_null_key, "db.insert", R"({"table":"t"})", 5, 0.5, nullptr);
  CallKey empty;
  std::string plain_with_empty_key;
  append_logged_call(plain_with_empty_key, "db.insert", R"({"table":"t"})", 5, 0.5, &empty);
  CHECK(plain == plain_with_null_key);
  CHECK(plain == plain_with_empty_key);
  // The bytes of an unkeyed call: tick, dt, name length, name, params length, params.
  CHECK(plain.size() == 8 + 8 + 2 + 9 + 4 + 13);

  const CallKey k{"order-17#1", 0x1234567890abcdefull, 1764633600123ull};
  append_logged_call(keyed_calls, "db.insert", R"({"table":"t"})", 0, 0.0, &k);
  append_logged_call(keyed_calls, "step", R"({})", 3, 0.25);
  std::string out;
  append_entry(out, 7, 6, 2, keyed_calls);
  TempFile f;
  write_file(f.path, out);
  auto r = ok(read_log_file(f.path));
  CHECK(r.damage.is_ok());
  REQUIRE(r.entries.size() == 1);
  REQUIRE(r.entries[0].calls.size() == 2);
  const auto& c = r.entries[0].calls[0];
  CHECK(c.name == "db.insert");
  CHECK(c.params == R"({"table":"t"})");
  CHECK(c.key.key == "order-17#1");
  CHECK(c.key.fingerprint == 0x1234567890abcdefull);
  CHECK(c.key.unix_ms == 1764633600123ull);
  CHECK(r.entries[0].calls[1].name == "step");
  CHECK(r.entries[0].calls[1].key.key.empty());

  // A keyed call cut inside its key is damage, not a call without a key.
  std::string cut_calls;
  append_logged_call(cut_calls, "db.insert", "{}", 0, 0.0, &k);
  cut_calls.resize(cut_calls.size() - 12);
  std::string cut;
  append_entry(cut, 1, 0, 1, cut_calls);
  write_file(f.path, cut);
  auto d = ok(read_log_file(f.path));
  CHECK(d.entries.empty());
  CHECK_FALSE(d.damage.is_ok());
}
