#include "core/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#include "core/json_codec.h"
#include "core/transaction.h"

namespace tickdb {

namespace {

constexpr char kMagic[8] = {'T', 'I', 'C', 'K', 'D', 'B', 'S', '\0'};
constexpr char kEndMagic[8] = {'T', 'I', 'C', 'K', 'D', 'B', 'E', '\0'};
constexpr std::size_t kHeaderSize = 48;
constexpr std::size_t kTrailerSize = 16;
constexpr std::size_t kBlockRaw = std::size_t{1} << 20;  // about 1 MiB of ids and records per frame

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out.append(b, sizeof(T));
}

// Buffered output that hashes what it writes.
class FileOut {
 public:
  FileOut(int fd, std::string path) : fd_(fd), path_(std::move(path)) { XXH3_64bits_reset(&st_); }
  Status write(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.append(c, n);
    if (buf_.size() >= (std::size_t{8} << 20)) return flush();
    return {};
  }
  Status flush() {
    XXH3_64bits_update(&st_, buf_.data(), buf_.size());
    std::size_t off = 0;
    while (off < buf_.size()) {
      ssize_t w = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return make_error(Errc::resource_exhausted, errno_text("cannot write", path_));
      }
      off += static_cast<std::size_t>(w);
    }
    bytes_ += buf_.size();
    buf_.clear();
    return {};
  }
  std::uint64_t digest() { return XXH3_64bits_digest(&st_); }
  std::uint64_t bytes() const { return bytes_ + buf_.size(); }

 private:
  int fd_;
  std::string path_;
  std::string buf_;
  XXH3_state_t st_{};
  std::uint64_t bytes_ = 0;
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::size_t block_records(std::uint32_t record_size) {
  return std::max<std::size_t>(1, kBlockRaw / (record_size + sizeof(std::uint64_t)));
}

}  // namespace

Status fsync_dir(const std::string& dir) {
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return make_error(Errc::resource_exhausted, errno_text("cannot open directory", dir));
  if (::fsync(d.fd) != 0) return make_error(Errc::resource_exhausted, errno_text("cannot fsync directory", dir));
  return {};
}

Result<SnapshotWriteInfo> write_snapshot(const DbVersion& db, const std::string& path, int level) {
  const auto t0 = std::chrono::steady_clock::now();
  SnapshotWriteInfo info;
  info.path = path;
  info.version = db.version();
  const std::string tmp = path + ".tmp";
  Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (f.fd < 0) return make_error(Errc::resource_exhausted, errno_text("cannot create", tmp));
  auto fail = [&](Error e) -> Result<SnapshotWriteInfo> {
    ::unlink(tmp.c_str());
    return e;
  };
  FileOut out(f.fd, tmp);

  const std::string catalog = catalog_to_json(db).dump();
  std::string head(kMagic, sizeof kMagic);
  put<std::uint32_t>(head, kSnapshotFormat);
  put<std::uint32_t>(head, 0);
  put<std::uint64_t>(head, db.version());
  put<std::int64_t>(head, std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
  put<std::uint64_t>(head, catalog.size());
  put<std::uint32_t>(head, static_cast<std::uint32_t>(db.tables().size()));
  put<std::uint32_t>(head, 0);
  if (auto s = out.write(head.data(), head.size()); !s) return fail(s.error());
  if (auto s = out.write(catalog.data(), catalog.size()); !s) return fail(s.error());

  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!cctx) return fail(make_error(Errc::resource_exhausted, "zstd: cannot create a compression context"));
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  std::vector<std::byte> raw;
  std::string comp;

  for (const auto& [name, t] : db.tables()) {
    const std::uint32_t rs = t->record_size();
    const std::size_t per_block = block_records(rs);
    const std::uint64_t count = t->count();
    const std::uint64_t blocks = (count + per_block - 1) / per_block;
    if (blocks > std::numeric_limits<std::uint32_t>::max())
      return fail(make_error(Errc::resource_exhausted, "table '" + name + "' is too large for one snapshot"));
    std::string th;
    put<std::uint32_t>(th, static_cast<std::uint32_t>(name.size()));
    th += name;
    put<std::uint32_t>(th, rs);
    put<std::uint64_t>(th, count);
    put<std::uint32_t>(th, static_cast<std::uint32_t>(blocks));
    if (auto s = out.write(th.data(), th.size()); !s) return fail(s.error());

    // Gather live records per block: ids (as differences) first, then the records.
    std::vector<std::uint64_t> ids;
    std::vector<std::byte> recs;
    ids.reserve(per_block);
    recs.reserve(per_block * rs);
    std::uint64_t prev = 0, written = 0;
    auto emit = [&]() -> Status {
      if (ids.empty()) return {};
      const std::size_t n = ids.size();
      raw.resize(n * sizeof(std::uint64_t) + recs.size());
      std::memcpy(raw.data(), ids.data(), n * sizeof(std::uint64_t));
      if (!recs.empty()) std::memcpy(raw.data() + n * sizeof(std::uint64_t), recs.data(), recs.size());
      comp.resize(ZSTD_compressBound(raw.size()));
      std::size_t c = ZSTD_compress2(cctx.get(), comp.data(), comp.size(), raw.data(), raw.size());
      if (ZSTD_isError(c)) return make_error(Errc::internal, std::string("zstd: ") + ZSTD_getErrorName(c));
      std::string bh;
      put<std::uint32_t>(bh, static_cast<std::uint32_t>(n));
      put<std::uint32_t>(bh, static_cast<std::uint32_t>(raw.size()));
      put<std::uint32_t>(bh, static_cast<std::uint32_t>(c));
      TICKDB_TRY(out.write(bh.data(), bh.size()));
      TICKDB_TRY(out.write(comp.data(), c));
      info.raw_bytes += raw.size();
      written += n;
      ids.clear();
      recs.clear();
      return {};
    };
    for (std::size_t k = 0; k < t->used_chunk_count(); ++k) {
      ChunkSpan s = t->chunk_span(k);
      for (std::uint32_t i = 0; i < s.count; ++i) {
        if (s.alive && !s.alive[i]) continue;
        ids.push_back(s.ids[i] - prev);
        prev = s.ids[i];
        const std::byte* r = s.records + std::size_t{i} * rs;
        recs.insert(recs.end(), r, r + rs);
        if (ids.size() == per_block)
          if (auto st = emit(); !st) return fail(st.error());
      }
    }
    if (auto st = emit(); !st) return fail(st.error());
    if (written != count)
      return fail(make_error(Errc::internal, "table '" + name + "': counted " + std::to_string(count) +
                                                 " live records but found " + std::to_string(written)));
    info.records += count;
  }
  if (auto s = out.flush(); !s) return fail(s.error());
  std::string trailer(kEndMagic, sizeof kEndMagic);
  put<std::uint64_t>(trailer, out.digest());
  // The trailer is not part of what the checksum covers: write it around the hash.
  {
    std::size_t off = 0;
    while (off < trailer.size()) {
      ssize_t w = ::write(f.fd, trailer.data() + off, trailer.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(make_error(Errc::resource_exhausted, errno_text("cannot write", tmp)));
      off += static_cast<std::size_t>(w);
    }
  }
  info.bytes = out.bytes() + trailer.size();
  if (::fsync(f.fd) != 0) return fail(make_error(Errc::resource_exhausted, errno_text("cannot fsync", tmp)));
  ::close(f.fd);
  f.fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(make_error(Errc::resource_exhausted, errno_text("cannot rename to", path)));
  auto dir = std::filesystem::path(path).parent_path().string();
  TICKDB_TRY(fsync_dir(dir.empty() ? "." : dir));
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return info;
}

// ---------------- reading ----------------

namespace {

Result<std::string> read_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return make_error(Errc::not_found, errno_text("cannot open", path));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return make_error(Errc::internal, errno_text("cannot stat", path));
  std::string data;
  data.resize(static_cast<std::size_t>(st.st_size));
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t r = ::read(f.fd, data.data() + off, data.size() - off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return make_error(Errc::internal, errno_text("cannot read", path));
    if (r == 0) break;
    off += static_cast<std::size_t>(r);
  }
  data.resize(off);
  return data;
}

// Bounds-checked reads over the file's bytes.
class In {
 public:
  In(const std::string& d, std::size_t begin, std::size_t end) : d_(d), p_(begin), end_(end) {}
  template <class T>
  bool get(T& v) {
    if (end_ - p_ < sizeof(T)) return false;
    std::memcpy(&v, d_.data() + p_, sizeof(T));
    p_ += sizeof(T);
    return true;
  }
  bool bytes(std::size_t n, const char*& out) {
    if (end_ - p_ < n) return false;
    out = d_.data() + p_;
    p_ += n;
    return true;
  }
  std::size_t pos() const { return p_; }
  bool done() const { return p_ == end_; }

 private:
  const std::string& d_;
  std::size_t p_, end_;
};

struct Header {
  std::uint32_t format = 0;
  std::uint64_t version = 0;
  std::int64_t time_ns = 0;
  std::uint64_t catalog_len = 0;
  std::uint32_t tables = 0;
};

Status read_header(const std::string& d, const std::string& path, Header& h, SnapshotError* why) {
  auto problem = [&](SnapshotProblem p, std::string m) -> Status {
    if (why) *why = {p, m};
    return make_error(Errc::invalid_argument, std::move(m));
  };
  if (d.size() < kHeaderSize + kTrailerSize || std::memcmp(d.data(), kMagic, sizeof kMagic) != 0)
    return problem(SnapshotProblem::bad_magic, "'" + path + "' is not a tickdb snapshot (no snapshot magic)");
  In in(d, sizeof kMagic, kHeaderSize);
  std::uint32_t flags = 0, zero = 0;
  in.get(h.format);
  in.get(flags);
  in.get(h.version);
  in.get(h.time_ns);
  in.get(h.catalog_len);
  in.get(h.tables);
  in.get(zero);
  if (h.format != kSnapshotFormat)
    return problem(SnapshotProblem::unknown_format,
                   "'" + path + "' has snapshot format version " + std::to_string(h.format) + "; this build reads version " +
                       std::to_string(kSnapshotFormat) + " only");
  return {};
}

bool checksum_holds(const std::string& d) {
  const std::size_t body = d.size() - kTrailerSize;
  if (std::memcmp(d.data() + body, kEndMagic, sizeof kEndMagic) != 0) return false;
  std::uint64_t want = 0;
  std::memcpy(&want, d.data() + body + sizeof kEndMagic, sizeof want);
  return XXH3_64bits(d.data(), body) == want;
}

}  // namespace

Result<SnapshotLoad> read_snapshot(const std::string& path, SnapshotError* why,
                                   const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  auto problem = [&](SnapshotProblem p, std::string m) -> Error {
    if (why) *why = {p, m};
    return make_error(Errc::invalid_argument, std::move(m));
  };
  auto data = read_file(path);
  if (!data) return problem(SnapshotProblem::unreadable, data.message());
  const std::string& d = *data;
  Header h;
  TICKDB_TRY(read_header(d, path, h, why));
  if (!checksum_holds(d))
    return problem(SnapshotProblem::bad_checksum, "'" + path + "': the checksum does not match (the file is damaged or cut short)");
  auto bad = [&](const std::string& m) { return problem(SnapshotProblem::bad_content, "'" + path + "': " + m); };

  In in(d, kHeaderSize, d.size() - kTrailerSize);
  const char* cat = nullptr;
  if (h.catalog_len > d.size() || !in.bytes(h.catalog_len, cat)) return bad("the catalog runs past the end");
  auto cj = parse_json(std::string_view(cat, h.catalog_len), 256);
  if (!cj) return bad("catalog: " + cj.message());
  auto base = catalog_from_json(*cj);
  if (!base) return bad("catalog: " + base.message());
  if ((*base)->version() != h.version) return bad("the catalog's version differs from the header's");
  if ((*base)->tables().size() != h.tables) return bad("the header's table count differs from the catalog's");

  Transaction txn(*base);
  SnapshotLoad out;
  out.info.format = h.format;
  out.info.version = h.version;
  out.info.time_ns = h.time_ns;
  out.info.bytes = d.size();
  out.info.checksum_ok = true;
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) return make_error(Errc::resource_exhausted, "zstd: cannot create a decompression context");
  std::vector<std::byte> raw;
  std::vector<std::uint64_t> ids;
  std::uint64_t raw_done = 0;
  const std::uint64_t total = d.size();
  std::uint64_t next_report = 64u << 20;
  std::set<std::string, std::less<>> seen;

  for (std::uint32_t ti = 0; ti < h.tables; ++ti) {
    std::uint32_t name_len = 0, rs = 0, blocks = 0;
    std::uint64_t count = 0;
    const char* name_p = nullptr;
    if (!in.get(name_len) || name_len > 256 || !in.bytes(name_len, name_p) || !in.get(rs) || !in.get(count) ||
        !in.get(blocks))
      return bad("table section " + std::to_string(ti) + " is cut short");
    std::string name(name_p, name_len);
    if (!seen.insert(name).second) return bad("table '" + name.substr(0, 80) + "' appears twice");
    auto w = txn.writable_table(name);
    if (!w) return bad("table '" + name.substr(0, 80) + "' is not in the catalog");
    TableVersion& t = **w;
    if (t.record_size() != rs) return bad("table '" + name + "': record size differs from the catalog's");
    const std::uint64_t want_next = t.next_id();
    const auto& fields = t.schema()->fields();
    std::uint64_t loaded = 0, prev = 0;
    for (std::uint32_t b = 0; b < blocks; ++b) {
      std::uint32_t n = 0, raw_len = 0, comp_len = 0;
      const char* comp = nullptr;
      if (!in.get(n) || !in.get(raw_len) || !in.get(comp_len) || !in.bytes(comp_len, comp))
        return bad("table '" + name + "': block " + std::to_string(b) + " is cut short");
      if (n == 0 || std::uint64_t{raw_len} != std::uint64_t{n} * (sizeof(std::uint64_t) + rs))
        return bad("table '" + name + "': block " + std::to_string(b) + " has inconsistent lengths");
      raw.resize(raw_len);
      std::size_t got = ZSTD_decompressDCtx(dctx.get(), raw.data(), raw.size(), comp, comp_len);
      if (ZSTD_isError(got) || got != raw_len)
        return bad("table '" + name + "': block " + std::to_string(b) + " does not decompress" +
                   (ZSTD_isError(got) ? std::string(": ") + ZSTD_getErrorName(got) : std::string()));
      ids.resize(n);
      std::memcpy(ids.data(), raw.data(), n * sizeof(std::uint64_t));
      for (auto& id : ids) {
        if (id == 0 || id > std::numeric_limits<std::uint64_t>::max() - prev)
          return bad("table '" + name + "': ids do not rise");
        id += prev;
        prev = id;
      }
      const std::byte* recs = raw.data() + n * sizeof(std::uint64_t);
      for (std::uint32_t i = 0; i < n; ++i)
        if (auto s = validate_record_bytes(fields, {recs + std::size_t{i} * rs, rs}); !s)
          return bad("table '" + name + "', record " + std::to_string(ids[i]) + ": " + s.message());
      if (auto s = t.load_append(recs, ids.data(), n); !s) {
        if (s.code() == Errc::resource_exhausted) return s.error();
        return bad(s.message());
      }
      loaded += n;
      raw_done = in.pos();
      if (progress && raw_done >= next_report) {
        progress(raw_done, total);
        next_report = raw_done + (64u << 20);
      }
    }
    if (loaded != count) return bad("table '" + name + "': " + std::to_string(loaded) + " records, the header says " + std::to_string(count));
    if (t.next_id() != want_next)
      return bad("table '" + name + "': id " + std::to_string(prev) + " is not below the table's next id " + std::to_string(want_next));
    out.info.tables.push_back({name, count, rs});
  }
  if (!in.done()) return bad("bytes after the last table");
  if (seen.size() != (*base)->tables().size()) return bad("a table of the catalog has no section");
  auto v = txn.commit();
  if (!v) return v.error();
  out.db = DbVersion::with_version(*v, h.version);
  if (progress) progress(total, total);
  return out;
}

Result<SnapshotFileInfo> inspect_snapshot(const std::string& path) {
  auto data = read_file(path);
  if (!data) return data.error();
  const std::string& d = *data;
  Header h;
  TICKDB_TRY(read_header(d, path, h, nullptr));
  SnapshotFileInfo info;
  info.format = h.format;
  info.version = h.version;
  info.time_ns = h.time_ns;
  info.bytes = d.size();
  info.checksum_ok = checksum_holds(d);
  In in(d, kHeaderSize, d.size() - kTrailerSize);
  const char* cat = nullptr;
  if (h.catalog_len > d.size() || !in.bytes(h.catalog_len, cat)) return info;
  for (std::uint32_t ti = 0; ti < h.tables; ++ti) {
    std::uint32_t name_len = 0, rs = 0, blocks = 0;
    std::uint64_t count = 0;
    const char* name_p = nullptr;
    if (!in.get(name_len) || name_len > 256 || !in.bytes(name_len, name_p) || !in.get(rs) || !in.get(count) ||
        !in.get(blocks))
      break;
    info.tables.push_back({std::string(name_p, name_len), count, rs});
    bool ok = true;
    for (std::uint32_t b = 0; b < blocks && ok; ++b) {
      std::uint32_t n = 0, raw_len = 0, comp_len = 0;
      const char* comp = nullptr;
      ok = in.get(n) && in.get(raw_len) && in.get(comp_len) && in.bytes(comp_len, comp);
    }
    if (!ok) break;
  }
  return info;
}

}  // namespace tickdb
