#include "core/snapshot_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#include "core/file_io.h"
#include "core/json_codec.h"
#include "core/transaction.h"

namespace tickdb {

namespace {

constexpr char kMagic[8] = {'T', 'I', 'C', 'K', 'D', 'B', 'S', '\0'};
constexpr char kEndMagic[8] = {'T', 'I', 'C', 'K', 'D', 'B', 'E', '\0'};
constexpr std::size_t kHeaderSize = 48;
constexpr std::size_t kTrailerSize = 16;
constexpr std::size_t kBlockRaw = kSnapshotBlockRaw;

using fileio::Fd;
using fileio::os_error;
using fileio::put;

// Buffered output that hashes what it writes. It writes in small pieces and starts the
// kernel's writeback of each few MiB at once (sync_file_range), so the data goes to disk
// while the snapshot is written rather than in one burst at the fsync, and no single system
// call holds a CPU for long (the kernel here does not preempt system calls).
class FileOut {
 public:
  FileOut(int fd, std::string path) : fd_(fd), path_(std::move(path)) { XXH3_64bits_reset(&st_); }
  Status write(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.append(c, n);
    if (buf_.size() >= kPiece) return flush();
    return {};
  }
  Status flush() {
    XXH3_64bits_update(&st_, buf_.data(), buf_.size());
    std::size_t off = 0;
    while (off < buf_.size()) {
      ssize_t w = ::write(fd_, buf_.data() + off, std::min(buf_.size() - off, kPiece));
      if (w < 0) {
        if (errno == EINTR) continue;
        return os_error("cannot write", path_);
      }
      off += static_cast<std::size_t>(w);
    }
    bytes_ += buf_.size();
    buf_.clear();
    if (bytes_ - started_ >= kWriteback) {
      // Start writing this range back, and wait for the one before it: dirty pages stay
      // bounded and the final fsync has little left to do.
      ::sync_file_range(fd_, static_cast<off_t>(started_), static_cast<off_t>(bytes_ - started_),
                        SYNC_FILE_RANGE_WRITE);
      if (started_ > 0)
        ::sync_file_range(
            fd_, static_cast<off_t>(waited_), static_cast<off_t>(started_ - waited_),
            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      waited_ = started_;
      started_ = bytes_;
    }
    return {};
  }
  std::uint64_t digest() { return XXH3_64bits_digest(&st_); }
  std::uint64_t bytes() const { return bytes_ + buf_.size(); }

 private:
  static constexpr std::size_t kPiece = std::size_t{1} << 20;
  static constexpr std::uint64_t kWriteback = std::uint64_t{8} << 20;
  int fd_;
  std::string path_;
  std::string buf_;
  XXH3_state_t st_{};
  std::uint64_t bytes_ = 0;
  std::uint64_t started_ = 0;  // writeback started up to here
  std::uint64_t waited_ = 0;   // and finished up to here
};

std::size_t block_records(std::uint32_t record_size) {
  return std::max<std::size_t>(1, kBlockRaw / (record_size + sizeof(std::uint64_t)));
}

}  // namespace

Status fsync_dir(const std::string& dir) {
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return os_error("cannot open directory", dir);
  if (::fsync(d.fd) != 0) return os_error("cannot fsync directory", dir);
  return {};
}

Result<SnapshotWriteInfo> write_snapshot(const DbVersion& db, const std::string& path, int level,
                                         const std::function<void()>& between_blocks) {
  const auto t0 = std::chrono::steady_clock::now();
  SnapshotWriteInfo info;
  info.path = path;
  info.version = db.version();
  const std::string tmp = path + ".tmp";
  Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (f.fd < 0) return os_error("cannot create", tmp);
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
  if (!cctx)
    return fail(make_error(Errc::resource_exhausted, "zstd: cannot create a compression context"));
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  std::vector<std::byte> raw;
  std::string comp;

  for (const auto& [name, t] : db.tables()) {
    const std::uint32_t rs = t->record_size();
    const std::size_t per_block = block_records(rs);
    const std::uint64_t count = t->count();
    const std::uint64_t blocks = (count + per_block - 1) / per_block;
    if (blocks > std::numeric_limits<std::uint32_t>::max())
      return fail(make_error(Errc::resource_exhausted,
                             "table '" + name + "' is too large for one snapshot"));
    std::string th;
    put<std::uint32_t>(th, static_cast<std::uint32_t>(name.size()));
    th += name;
    put<std::uint32_t>(th, rs);
    put<std::uint64_t>(th, count);
    put<std::uint32_t>(th, static_cast<std::uint32_t>(blocks));
    if (auto s = out.write(th.data(), th.size()); !s) return fail(s.error());

    // Gather live records straight into the block: ids (as differences) at the front, the
    // records behind room for a whole block of ids; a short last block moves them up.
    raw.resize(per_block * (sizeof(std::uint64_t) + rs));
    std::byte* const id_area = raw.data();
    std::byte* const rec_area = raw.data() + per_block * sizeof(std::uint64_t);
    std::size_t n = 0;
    std::uint64_t prev = 0, written = 0;
    auto emit = [&]() -> Status {
      if (n == 0) return {};
      const std::size_t ids_bytes = n * sizeof(std::uint64_t);
      if (n < per_block && rs) std::memmove(raw.data() + ids_bytes, rec_area, n * rs);
      const std::size_t raw_len = ids_bytes + n * rs;
      comp.resize(ZSTD_compressBound(raw_len));
      std::size_t c = ZSTD_compress2(cctx.get(), comp.data(), comp.size(), raw.data(), raw_len);
      if (ZSTD_isError(c))
        return make_error(Errc::internal, std::string("zstd: ") + ZSTD_getErrorName(c));
      std::string bh;
      put<std::uint32_t>(bh, static_cast<std::uint32_t>(n));
      put<std::uint32_t>(bh, static_cast<std::uint32_t>(raw_len));
      put<std::uint32_t>(bh, static_cast<std::uint32_t>(c));
      TICKDB_TRY(out.write(bh.data(), bh.size()));
      TICKDB_TRY(out.write(comp.data(), c));
      info.raw_bytes += raw_len;
      written += n;
      n = 0;
      if (between_blocks) between_blocks();
      return {};
    };
    for (std::size_t k = 0; k < t->used_chunk_count(); ++k) {
      ChunkSpan s = t->chunk_span(k);
      std::uint32_t i = 0;
      while (i < s.count) {
        if (s.alive && !s.alive[i]) {
          ++i;
          continue;
        }
        // A run of live records, as long as the block has room.
        std::uint32_t end = i + 1;
        const std::uint32_t limit =
            static_cast<std::uint32_t>(std::min<std::size_t>(s.count, i + (per_block - n)));
        while (end < limit && (!s.alive || s.alive[end])) ++end;
        for (std::uint32_t j = i; j < end; ++j) {
          const std::uint64_t d = s.ids[j] - prev;
          std::memcpy(id_area + (n + (j - i)) * sizeof(std::uint64_t), &d, sizeof d);
          prev = s.ids[j];
        }
        if (rs)
          std::memcpy(rec_area + n * rs, s.records + std::size_t{i} * rs,
                      std::size_t{end - i} * rs);
        n += end - i;
        i = end;
        if (n == per_block)
          if (auto st = emit(); !st) return fail(st.error());
      }
    }
    if (auto st = emit(); !st) return fail(st.error());
    if (written != count)
      return fail(
          make_error(Errc::internal, "table '" + name + "': counted " + std::to_string(count) +
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
      if (w < 0) return fail(os_error("cannot write", tmp));
      off += static_cast<std::size_t>(w);
    }
  }
  info.bytes = out.bytes() + trailer.size();
  if (::fsync(f.fd) != 0) return fail(os_error("cannot fsync", tmp));
  f.close();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(os_error("cannot rename to", path));
  auto dir = std::filesystem::path(path).parent_path().string();
  TICKDB_TRY(fsync_dir(dir.empty() ? "." : dir));
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return info;
}

// ---------------- reading ----------------

namespace {

// The file, mapped read-only (no copy; the page cache serves it).
class Mapped {
 public:
  Mapped() = default;
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  ~Mapped() {
    if (p_ && p_ != MAP_FAILED) ::munmap(p_, n_);
  }
  Status open(const std::string& path) {
    Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) return os_error("cannot open", path);
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) return os_error("cannot stat", path);
    n_ = static_cast<std::size_t>(st.st_size);
    if (n_ == 0) return {};
    p_ = ::mmap(nullptr, n_, PROT_READ, MAP_PRIVATE, f.fd, 0);
    if (p_ == MAP_FAILED) {
      p_ = nullptr;
      return os_error("cannot map", path);
    }
    ::madvise(p_, n_, MADV_SEQUENTIAL | MADV_WILLNEED);
    return {};
  }
  std::string_view view() const { return {static_cast<const char*>(p_), p_ ? n_ : 0}; }

 private:
  void* p_ = nullptr;
  std::size_t n_ = 0;
};

// Bounds-checked reads over the file's bytes.
class In {
 public:
  In(std::string_view d, std::size_t begin, std::size_t end) : d_(d), p_(begin), end_(end) {}
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
  std::string_view d_;
  std::size_t p_, end_;
};

struct Header {
  std::uint32_t format = 0;
  std::uint64_t version = 0;
  std::int64_t time_ns = 0;
  std::uint64_t catalog_len = 0;
  std::uint32_t tables = 0;
};

// corruption without the magic; conflict for a format this build does not read (not damage:
// recovery must stop rather than fall back to an older snapshot, see snapshot_file.h).
Status read_header(std::string_view d, const std::string& path, Header& h) {
  if (d.size() < kHeaderSize + kTrailerSize || std::memcmp(d.data(), kMagic, sizeof kMagic) != 0)
    return make_error(Errc::corruption,
                      "'" + path + "' is not a tickdb snapshot (no snapshot magic)");
  In in(d, sizeof kMagic, kHeaderSize);
  std::uint32_t flags = 0, zero = 0;
  in.get(h.format);
  in.get(flags);
  in.get(h.version);
  in.get(h.time_ns);
  in.get(h.catalog_len);
  in.get(h.tables);
  in.get(zero);
  if (h.format < kSnapshotFormatOldest || h.format > kSnapshotFormat)
    return make_error(Errc::conflict,
                      "'" + path + "' has snapshot format version " + std::to_string(h.format) +
                          "; this build reads versions " + std::to_string(kSnapshotFormatOldest) +
                          " to " + std::to_string(kSnapshotFormat));
  return {};
}

bool checksum_holds(std::string_view d) {
  const std::size_t body = d.size() - kTrailerSize;
  if (std::memcmp(d.data() + body, kEndMagic, sizeof kEndMagic) != 0) return false;
  std::uint64_t want = 0;
  std::memcpy(&want, d.data() + body + sizeof kEndMagic, sizeof want);
  return XXH3_64bits(d.data(), body) == want;
}

// The checks a record's bytes need, flattened once per table: integers need none, so a
// table of numbers costs a few float checks per record, not a call per field.
class RecordCheck {
 public:
  explicit RecordCheck(const std::vector<Field>& fields) { add(fields, 0); }
  // True when every value of the n records is valid.
  bool all_valid(const std::byte* recs, std::size_t n, std::size_t rs) const {
    for (std::size_t i = 0; i < n; ++i) {
      const std::byte* r = recs + i * rs;
      for (const auto& c : checks_)
        if (!valid(c, r + c.offset)) return false;
    }
    return true;
  }

 private:
  struct Check {
    Kind kind;
    std::uint32_t offset, size;
  };
  void add(const std::vector<Field>& fields, std::uint32_t base) {
    for (const auto& f : fields) {
      switch (f.type.kind) {
        case Kind::Bool:
        case Kind::F32:
        case Kind::F64:
        case Kind::Str:
          checks_.push_back({f.type.kind, base + f.offset, f.type.size});
          break;
        case Kind::Composite:
          add(f.type.composite->fields, base + f.offset);
          break;
        default:
          break;
      }
    }
  }
  static bool valid(const Check& c, const std::byte* p) {
    switch (c.kind) {
      case Kind::Bool:
        return std::to_integer<unsigned>(*p) <= 1;
      case Kind::F32:
        return std::isfinite(load<float>(p));
      case Kind::F64:
        return std::isfinite(load<double>(p));
      case Kind::Str: {
        std::string_view sv(reinterpret_cast<const char*>(p), c.size);
        auto end = sv.find('\0');
        if (end != std::string_view::npos) {
          for (std::size_t i = end; i < sv.size(); ++i)
            if (sv[i] != '\0') return false;
          sv = sv.substr(0, end);
        }
        return is_valid_utf8(sv);
      }
      default:
        return true;
    }
  }
  std::vector<Check> checks_;
};

struct BlockRef {
  const char* comp;
  std::uint32_t comp_len, raw_len, n;
};

// Decompresses blocks in order on a thread of its own, a few blocks ahead of the caller, so
// that decompression (most of a load) overlaps the checking and building of the tables.
class Decompressor {
 public:
  explicit Decompressor(const std::vector<BlockRef>& blocks) : blocks_(blocks) {
    try {
      th_ = std::thread([this] { run(); });
    } catch (const std::system_error&) {
      inline_ = true;  // no thread to be had: decompress on the caller's thread
    }
  }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
  ~Decompressor() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (th_.joinable()) th_.join();
  }
  // The next block's raw bytes (in order), or the error that stopped it.
  Result<std::vector<std::byte>> next() {
    if (inline_) {
      std::vector<std::byte> raw;
      std::string err = decode(blocks_[taken_++], raw);
      if (!err.empty()) return make_error(Errc::corruption, err);
      return raw;
    }
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !ready_.empty(); });
    Slot s = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();
    if (!s.error.empty()) return make_error(Errc::corruption, s.error);
    return std::move(s.raw);
  }
  void give_back(std::vector<std::byte> buf) {
    if (inline_) return;
    std::lock_guard lk(mu_);
    spare_.push_back(std::move(buf));
  }

 private:
  struct Slot {
    std::vector<std::byte> raw;
    std::string error;
  };
  static constexpr std::size_t kAhead = 4;

  std::string decode(const BlockRef& b, std::vector<std::byte>& raw) {
    if (!dctx_) return "cannot be decompressed: no zstd context (out of memory)";
    raw.resize(b.raw_len);
    std::size_t got = ZSTD_decompressDCtx(dctx_.get(), raw.data(), raw.size(), b.comp, b.comp_len);
    if (ZSTD_isError(got)) return std::string("does not decompress: ") + ZSTD_getErrorName(got);
    if (got != b.raw_len)
      return "decompresses to " + std::to_string(got) + " bytes, not " + std::to_string(b.raw_len);
    return {};
  }
  void run() {
    for (const auto& b : blocks_) {
      std::vector<std::byte> buf;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || ready_.size() < kAhead; });
        if (stop_) return;
        if (!spare_.empty()) {
          buf = std::move(spare_.back());
          spare_.pop_back();
        }
      }
      Slot s;
      s.error = decode(b, buf);
      s.raw = std::move(buf);
      std::lock_guard lk(mu_);
      ready_.push_back(std::move(s));
      cv_.notify_all();
      if (!ready_.back().error.empty()) return;  // the caller stops at it
    }
  }

  const std::vector<BlockRef>& blocks_;
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx_{ZSTD_createDCtx(), ZSTD_freeDCtx};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Slot> ready_;
  std::vector<std::vector<std::byte>> spare_;
  bool stop_ = false;
  bool inline_ = false;
  std::size_t taken_ = 0;
  std::thread th_;
};

}  // namespace

namespace {

struct TableRef {
  std::string name;
  std::uint32_t record_size;
  std::uint64_t count;
  std::size_t first_block, blocks;
};
struct Layout {
  std::vector<TableRef> tables;
  std::vector<BlockRef> blocks;
};

// Reads the table sections that follow the catalog, checking bounds, block lengths and
// record counts. Returns what is wrong ("" when nothing is); the tables read up to there
// stay in `out` (inspect_snapshot lists them).
std::string read_layout(In& in, std::uint32_t table_count, Layout& out) {
  std::set<std::string, std::less<>> seen;
  for (std::uint32_t ti = 0; ti < table_count; ++ti) {
    std::uint32_t name_len = 0, rs = 0, nblocks = 0;
    std::uint64_t count = 0;
    const char* name_p = nullptr;
    if (!in.get(name_len) || name_len > 256 || !in.bytes(name_len, name_p) || !in.get(rs) ||
        !in.get(count) || !in.get(nblocks))
      return "table section " + std::to_string(ti) + " is cut short";
    out.tables.push_back({std::string(name_p, name_len), rs, count, out.blocks.size(), nblocks});
    const std::string& name = out.tables.back().name;
    if (!seen.insert(name).second) return "table '" + name.substr(0, 80) + "' appears twice";
    std::uint64_t records = 0;
    for (std::uint32_t b = 0; b < nblocks; ++b) {
      BlockRef r{};
      if (!in.get(r.n) || !in.get(r.raw_len) || !in.get(r.comp_len) ||
          !in.bytes(r.comp_len, r.comp))
        return "table '" + name + "': block " + std::to_string(b) + " is cut short";
      if (r.n == 0 || std::uint64_t{r.raw_len} != std::uint64_t{r.n} * (sizeof(std::uint64_t) + rs))
        return "table '" + name + "': block " + std::to_string(b) + " has inconsistent lengths";
      records += r.n;
      out.blocks.push_back(r);
    }
    if (records != count)
      return "table '" + name + "': " + std::to_string(records) +
             " records in its blocks, the header says " + std::to_string(count);
  }
  if (!in.done()) return "bytes after the last table";
  return {};
}

}  // namespace

Result<SnapshotLoad> read_snapshot(
    const std::string& path, const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  Mapped file;
  TICKDB_TRY(file.open(path));
  const std::string_view d = file.view();
  Header h;
  TICKDB_TRY(read_header(d, path, h));
  if (!checksum_holds(d))
    return make_error(
        Errc::corruption,
        "'" + path + "': the checksum does not match (the file is damaged or cut short)");
  auto bad = [&](const std::string& m) {
    return make_error(Errc::corruption, "'" + path + "': " + m);
  };

  In in(d, kHeaderSize, d.size() - kTrailerSize);
  const char* cat = nullptr;
  if (h.catalog_len > d.size() || !in.bytes(h.catalog_len, cat))
    return bad("the catalog runs past the end");
  auto cj = parse_json(std::string_view(cat, h.catalog_len), 256);
  if (!cj) return bad("catalog: " + cj.message());
  auto base = catalog_from_json(*cj);
  if (!base) return bad("catalog: " + base.message());
  if ((*base)->version() != h.version)
    return bad("the catalog's version differs from the header's");
  if ((*base)->tables().size() != h.tables)
    return bad("the header's table count differs from the catalog's");

  // First the layout: every table section and block, checked for bounds and lengths.
  Layout layout;
  if (auto problem = read_layout(in, h.tables, layout); !problem.empty()) return bad(problem);
  if (layout.tables.size() != (*base)->tables().size())
    return bad("a table of the catalog has no section");
  const auto& tables = layout.tables;
  const auto& blocks = layout.blocks;

  // Then the records: decompressed ahead on another thread, checked and appended here.
  Transaction txn(*base);
  SnapshotLoad out;
  out.info.format = h.format;
  out.info.version = h.version;
  out.info.time_ns = h.time_ns;
  out.info.bytes = d.size();
  out.info.checksum_ok = true;
  const std::uint64_t total = d.size();
  std::uint64_t next_report = 64u << 20;
  std::vector<std::uint64_t> ids;
  Decompressor dec(blocks);
  for (const auto& tr : tables) {
    const std::string& name = tr.name;
    auto w = txn.writable_table(name);
    if (!w) return bad("table '" + name.substr(0, 80) + "' is not in the catalog");
    TableVersion& t = **w;
    const std::uint32_t rs = tr.record_size;
    if (t.record_size() != rs)
      return bad("table '" + name + "': record size differs from the catalog's");
    const std::uint64_t want_next = t.next_id();
    const auto& fields = t.schema()->fields();
    const RecordCheck check(fields);
    std::uint64_t prev = 0;
    for (std::size_t b = tr.first_block; b < tr.first_block + tr.blocks; ++b) {
      const BlockRef& br = blocks[b];
      auto raw = dec.next();
      if (!raw)
        return bad("table '" + name + "': block " + std::to_string(b - tr.first_block) + " " +
                   raw.message());
      const std::uint32_t n = br.n;
      ids.resize(n);
      std::memcpy(ids.data(), raw->data(), n * sizeof(std::uint64_t));
      for (auto& id : ids) {
        if (id == 0 || id > std::numeric_limits<std::uint64_t>::max() - prev)
          return bad("table '" + name + "': ids do not rise");
        id += prev;
        prev = id;
      }
      const std::byte* recs = raw->data() + n * sizeof(std::uint64_t);
      if (!check.all_valid(recs, n, rs)) {
        for (std::uint32_t i = 0; i < n; ++i)  // which one, and why
          if (auto s = validate_record_bytes(fields, {recs + std::size_t{i} * rs, rs}); !s)
            return bad("table '" + name + "', record " + std::to_string(ids[i]) + ": " +
                       s.message());
      }
      if (auto s = t.load_append(recs, ids.data(), n); !s) {
        if (s.code() == Errc::resource_exhausted) return s.error();
        return bad(s.message());
      }
      dec.give_back(std::move(*raw));
      const std::uint64_t at = static_cast<std::uint64_t>(br.comp - d.data());
      if (progress && at >= next_report) {
        progress(at, total);
        next_report = at + (64u << 20);
      }
    }
    if (t.next_id() != want_next)
      return bad("table '" + name + "': id " + std::to_string(prev) +
                 " is not below the table's next id " + std::to_string(want_next));
    out.info.tables.push_back({name, tr.count, rs});
  }
  auto v = txn.commit();
  if (!v) return v.error();
  out.db = DbVersion::with_version(*v, h.version);
  if (progress) progress(total, total);
  return out;
}

Result<SnapshotFileInfo> inspect_snapshot(const std::string& path) {
  Mapped file;
  TICKDB_TRY(file.open(path));
  const std::string_view d = file.view();
  Header h;
  TICKDB_TRY(read_header(d, path, h));
  SnapshotFileInfo info;
  info.format = h.format;
  info.version = h.version;
  info.time_ns = h.time_ns;
  info.bytes = d.size();
  info.checksum_ok = checksum_holds(d);
  In in(d, kHeaderSize, d.size() - kTrailerSize);
  const char* cat = nullptr;
  if (h.catalog_len > d.size() || !in.bytes(h.catalog_len, cat)) return info;
  Layout layout;
  (void)read_layout(in, h.tables, layout);  // a damaged file: the tables up to the damage
  for (const auto& t : layout.tables) info.tables.push_back({t.name, t.count, t.record_size});
  return info;
}

}  // namespace tickdb
