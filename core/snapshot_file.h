// Snapshot files: the whole database at one version, in a binary format of our own.
//
//   header   magic "TICKDBS\0", format version (u32), flags (u32, 0), db version (u64),
//            unix time in ns (i64), catalog length (u64), table count (u32), 0 (u32): 48 bytes
//   catalog  catalog_to_json() as text: types, tables (fields, next ids, index definitions),
//            relations
//   tables   per table, in catalog order: name length (u32), name, record size (u32), record
//            count (u64), block count (u32), then blocks (about 256 KiB raw each): record count
//            (u32), raw length (u32), compressed length (u32), and one zstd frame holding the
//            block's ids (u64, each as the difference to the one before) followed by its packed
//            records
//   trailer  magic "TICKDBE\0", XXH3-64 of every byte before the trailer (u64)
//
// All integers little-endian. Writing goes to `<path>.tmp`, which is fsynced, renamed to
// `path`, and the directory fsynced: a crash leaves the old file or the new one, never half
// of one. Reading checks the magic, the format version, the checksum over the whole file, and
// then everything it builds (the catalog, each block's lengths, ids rising within a table,
// every record's values), so a file that loads is exactly what was written.
//
// Thread-safety: free functions; writing reads only an immutable DbVersion.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/catalog.h"

namespace tickdb {

// Format 2: the catalog's tables may hold "indexes" (user index definitions; loading rebuilds
// them from the records). Format 1 files load too (no user indexes; the automatic indexes of
// relations are derived from the relations either way).
inline constexpr std::uint32_t kSnapshotFormat = 2;
inline constexpr std::uint32_t kSnapshotFormatOldest = 1;
// About this many bytes of ids and records go into one zstd frame: big enough for zstd,
// small enough that the writer pauses between frames every millisecond or so.
inline constexpr std::size_t kSnapshotBlockRaw = std::size_t{256} << 10;

struct SnapshotWriteInfo {
  std::string path;
  std::uint64_t bytes = 0;      // the file's size
  std::uint64_t raw_bytes = 0;  // ids and records before compression
  std::uint64_t records = 0;
  std::uint64_t version = 0;
  double seconds = 0;
};

// Writes `db` to `path` (through `path`.tmp) with zstd at `level` (1..19). A failed open,
// write, fsync or rename is io_error naming the file and the OS error (resource_exhausted
// when the disk is full); the .tmp is removed and `path` is left as it was. `between_blocks`
// is called after each frame (about every millisecond): the persistence thread yields the
// CPU there, so a tick that woke up does not wait for the snapshot.
Result<SnapshotWriteInfo> write_snapshot(const DbVersion& db, const std::string& path, int level,
                                         const std::function<void()>& between_blocks = {});

struct SnapshotTableInfo {
  std::string name;
  std::uint64_t records = 0;
  std::uint32_t record_size = 0;
};
struct SnapshotFileInfo {
  std::uint32_t format = 0;
  std::uint64_t version = 0;
  std::int64_t time_ns = 0;  // unix time the snapshot was taken
  std::uint64_t bytes = 0;
  bool checksum_ok = false;
  std::vector<SnapshotTableInfo> tables;
};

// Reads a snapshot. Errors, each naming the file:
//  - io_error: the file cannot be opened, stat'ed or mapped (with the OS error);
//    resource_exhausted when that is for lack of memory;
//  - corruption: no snapshot magic, a checksum mismatch, or content that does not hold
//    together (the message says what);
//  - conflict: a format version this build does not read. Not damage: the file is probably
//    a newer tickdb's, so recovery stops instead of falling back to an older snapshot.
// `progress(done_bytes, total_bytes)` is called now and then while records load.
struct SnapshotLoad {
  std::shared_ptr<const DbVersion> db;
  SnapshotFileInfo info;
};
Result<SnapshotLoad> read_snapshot(
    const std::string& path,
    const std::function<void(std::uint64_t, std::uint64_t)>& progress = {});

// Checks a snapshot without building the database: header, checksum, and per-table record
// counts (for `tickdb-server --verify`). Fails only when the file cannot be read (io_error) or
// has no valid header (corruption, or conflict for an unknown format); a checksum mismatch
// is reported in checksum_ok.
Result<SnapshotFileInfo> inspect_snapshot(const std::string& path);

// fsyncs a directory (after a rename or unlink in it): io_error naming it when that fails.
Status fsync_dir(const std::string& dir);

}  // namespace tickdb
