// The commit log: an append-only record of every committed write, in publish order, so that
// recovery can rebuild what was acknowledged after the newest snapshot.
//
// What is logged is the calls, not their effects: each entry is one published version and
// holds the calls that committed in it, in the order they ran (callable name, params as JSON
// text, tick number and tick dt). Replaying them in order over the snapshot rebuilds the same
// database, because every callable is a deterministic function of the database, its params
// and the tick (docs/architecture.md: procedures must not read clocks or random sources).
// This keeps entries small whatever a call writes (a tick procedure that moves a million
// entities logs a few bytes).
//
// Files: `log-<first version, 20 digits>.tdl` in the data directory. Each entry:
//   magic "TKLE" (u32), XXH3-64 (u64) of all that follows: payload length (u32), version
//   (u64), the version published before it (u64), payload: call count (u32), then per call: tick
//   (u64), tick dt (f64 bits), name length (u16), name, params length (u32), params text.
//   A call made under an Idempotency-Key (http/idempotency.h) has the top bit of its name
//   length set (names are at most 128 bytes) and, after its params: key length (u8), key,
//   request fingerprint (u64), commit time in Unix ms (u64). Entries without keyed calls are
//   what they were before keys existed; a tickdb older than keys reads a keyed call as damage.
// The previous version chains the entries: replay checks that each entry follows the version
// the database is at, so a missing segment or a log of another database cannot go unnoticed.
// A reader stops at the first entry that is cut short or does not match its checksum, and
// reports where the whole entries end: recovery cuts the file there.
//
// Segments are preallocated (posix_fallocate, kLogPreallocBytes at a time): an fdatasync
// after an append that grows the file must also commit the file's new size through the
// ext4 journal, while one into allocated space need not (measured here: 0.32 ms against
// 0.18 ms per fdatasync under load; POST one record +18%). So a segment ends in zeros after
// its last entry: a tail of zeros only is a clean end, not damage; anything else after the
// last whole entry is damage as before.
//
// Allocated is not yet written: ext4 keeps fallocated blocks as unwritten extents, and the
// fdatasync after the first write into one must still commit its conversion through the
// journal. So the writer also writes zeros ahead of its entries (kLogZeroStep past the end of
// the last write, one step at a time): the fdatasync of an entry then finds its blocks
// already written and flushes data only. Measured on this disk (2 KiB appends, one
// fdatasync each, 2026-12-03): 0.16 ms per fdatasync into fallocated space, 0.11-0.12 ms
// with zeros written ahead; 64 KiB appends 152 -> 181 MB/s.
//
// Thread-safety: a LogFile is used by one thread (the persistence writer); the codec
// functions have no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tickdb {

// How much a log segment is extended by at a time (see the top of this file).
inline constexpr std::uint64_t kLogPreallocBytes = 64ull << 20;
// How far ahead of the entries zeros are written, and how much at a time (see the top).
inline constexpr std::uint64_t kLogZeroStep = 1ull << 20;

// The Idempotency-Key a call was made under (empty: none), the fingerprint of its request
// and when it committed: replay puts it back into the node's IdempotencyLedger.
struct CallKey {
  std::string key;  // at most 255 bytes (the HTTP edge allows 64, plus "#<n>")
  std::uint64_t fingerprint = 0;
  std::uint64_t unix_ms = 0;
};

struct LoggedCall {
  std::string name;
  std::string params;  // JSON text
  std::uint64_t tick = 0;
  double tick_dt = 0.0;
  CallKey key;
};

struct LogEntry {
  std::uint64_t version = 0;
  std::uint64_t prev_version = 0;
  std::vector<LoggedCall> calls;
};

// Appends the encoded call to a payload under construction (see encode_entry).
void append_logged_call(std::string& payload, std::string_view name, std::string_view params,
                        std::uint64_t tick, double tick_dt, const CallKey* key = nullptr);
// Wraps the calls (append_logged_call) into a whole entry for `version`, published after
// `prev_version`.
void append_entry(std::string& out, std::uint64_t version, std::uint64_t prev_version,
                  std::uint32_t calls, std::string_view calls_payload);

// How many bytes at the front of `encoded` (whole entries as append_entry makes them) hold
// entries of versions up to `version`; `count` gets how many entries that is.
std::size_t entries_through(std::string_view encoded, std::uint64_t version, std::uint64_t& count);

struct LogReadResult {
  std::vector<LogEntry> entries;
  std::uint64_t valid_bytes = 0;  // the whole entries end here
  std::uint64_t file_bytes = 0;   // the file's size (preallocated zeros included)
  // ok when every byte was read as whole entries; else corruption naming the file, what is
  // wrong and the byte where the whole entries end (a torn tail after a crash looks so too).
  Status damage;
};
// Reads a log file: io_error naming the file and the OS error when it cannot be read; never
// fails on content (a damaged tail ends the entries, see damage).
Result<LogReadResult> read_log_file(const std::string& path);
// Cuts a log file to `bytes` and fsyncs it (io_error naming the file when that fails).
Status truncate_log_file(const std::string& path, std::uint64_t bytes);

// An open log segment.
class LogFile {
 public:
  LogFile() = default;
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;
  ~LogFile();
  // Creates (or appends to) `path`; the directory entry is fsynced when the file is new.
  // An existing file is appended to after its last whole entry (its zero tail is cut). Space
  // is preallocated ahead of the writes (kLogPreallocBytes; where the filesystem cannot, the
  // file just grows). Every failure of open/write/sync is io_error naming the file and the
  // OS error (resource_exhausted when the disk is full).
  Status open(const std::string& path);
  Status write(std::string_view bytes);
  Status sync();  // fdatasync
  // After a failed write or sync: cuts the file back to what the last successful sync made
  // durable (entries after it are given up), and fsyncs that.
  Status cut_to_synced();
  void close();
  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  std::uint64_t bytes() const { return bytes_; }  // of entries written (not preallocated)

 private:
  void reserve(std::uint64_t more);  // preallocates so that `more` bytes fit
  void zero_ahead();                 // writes zeros ahead of bytes_ (see the top)
  int fd_ = -1;
  std::string path_;
  std::uint64_t bytes_ = 0;
  std::uint64_t synced_ = 0;     // bytes_ at the last successful sync
  std::uint64_t allocated_ = 0;  // the file's preallocated size
  std::uint64_t zeroed_ = 0;     // the file holds entries or written zeros up to here
};

// "log-00000000000000000042.tdl" for first version 42, and back (nullopt: not a log name).
std::string log_file_name(std::uint64_t first_version);
std::optional<std::uint64_t> parse_log_file_name(std::string_view name);

}  // namespace tickdb
