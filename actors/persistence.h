// Persistence: snapshots and the commit log of one node, in `storage.data_dir`.
//
//  - Snapshots (core/snapshot_file.h) of the current published version, which is immutable,
//    so writing one never stops a writer, a reader or the tick: every
//    `storage.snapshot_interval_s` (when something changed), on request (db.snapshot, POST
//    /snapshot) and at a graceful stop. Written on a thread of their own at a lower CPU
//    priority; the newest `storage.snapshot_keep` are kept.
//  - The commit log (core/commit_log.h): the Database appends every version's committed
//    calls in publish order (CommitSink). With durability "sync" a call is answered only once
//    its entry is fsynced; the writer thread writes whatever has gathered while the last
//    fsync ran, so concurrent writes share one fsync (group commit). With "async" calls are
//    answered at once and the log is written and fsynced every `async_flush_s`. With
//    "snapshot" there is no log. With durable reads (storage.read_visibility "durable") the
//    writer makes each version readable once its entry is fsynced, before it sends that
//    entry's answers, so a client reads its own acknowledged write. A new log segment starts after
//    each snapshot; segments older than the oldest kept snapshot are deleted, so falling back to
//    any kept snapshot still finds the log entries after it.
//  - When the log cannot be written (a full disk, a failed fsync) with "sync": the entries
//    after the last fsync are given up, the file is cut back to it, the database is rolled
//    back to the last version on disk (Database::roll_back) and those calls are answered
//    with the error; further writes are refused until a snapshot can be written (repair),
//    which the writer retries by itself. So a write answered with an error changes nothing.
//    With "async" (answered before durable) the writes stay in memory and the repairing
//    snapshot keeps them.
//  - Recovery (recover()): the newest snapshot that loads (magic, format, checksum and
//    content checked; each one skipped is logged with the reason; a newer format version
//    stops the start), then the log entries after it. A log segment that ends in a torn or
//    damaged entry is cut after its last whole entry (logged); segments after a cut are moved
//    aside, never replayed. The caller replays the entries (Runtime::replay), which checks
//    that they chain onto the snapshot.
//
// A lock file (flock) keeps a second server off the same data directory.
//
// Thread-safety: append() and answer() are called from the committing actors' threads;
// snapshot_async() from any thread; open/recover/start/stop from one controlling thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/database.h"
#include "core/commit_log.h"
#include "core/key_file.h"
#include "core/node_modes.h"
#include "core/snapshot_file.h"

namespace tickdb {

class Runtime;

struct PersistenceOptions {
  std::string data_dir = "./data";
  Durability durability = Durability::sync;
  double snapshot_interval_s = 60;  // 0: no periodic snapshots
  unsigned snapshot_keep = 3;       // >= 1
  int compression_level = 1;        // zstd 1..19
  double async_flush_s = 0.05;      // "async": how often the log is written and fsynced
  // storage.read_visibility "durable": readers see a version only once its log entry is on
  // disk (Database::made_durable). Needs a log: with durability "snapshot" it has no effect.
  bool durable_reads = true;
  // Where progress and problems are told (level: 0 info, 1 warning, 2 error).
  std::function<void(int level, const std::string& message)> log;
};

class Persistence final : public CommitSink {
 public:
  // Creates the data directory when missing and takes its lock; removes temporary files a
  // crash left behind. invalid_argument for bad options, io_error naming the path and the OS
  // error when the directory or its lock file cannot be made, conflict when the lock is held.
  static Result<std::unique_ptr<Persistence>> open(PersistenceOptions opts);
  ~Persistence() override;

  struct Recovered {
    std::shared_ptr<const DbVersion> db;  // the snapshot's (empty when there is none)
    std::string snapshot;                 // its path ("" for none)
    std::vector<LogEntry> entries;        // the log entries after it, in order
    std::vector<KeyRecord> keys;          // its key file's (core/key_file.h): for the ledger
    std::uint64_t skipped_snapshots = 0;
    std::uint64_t cut_bytes = 0;  // log bytes cut off damaged tails
  };
  Result<Recovered> recover();

  // Attaches the commit log to `rt` and starts the log writer and the snapshot timer.
  Status start(Runtime& rt);
  // Writes a snapshot of the current version; `done` gets its figures once it is durable.
  void snapshot_async(std::function<void(Result<SnapshotWriteInfo>)> done);
  // Stops the timer, writes and fsyncs the rest of the log (answering its calls), takes a
  // last snapshot, and detaches. Call after the runtime's writers have stopped.
  void stop();

  // Figures for /stats and /metrics.
  struct Figures {
    std::string data_dir;
    struct Snapshots {
      std::uint64_t count = 0, failures = 0;
      std::string last_error;
      double interval_s = 0;
      unsigned keep = 0;
      std::optional<SnapshotWriteInfo> last;  // the last one written
      double last_age_s = 0;
    } snapshot;
    struct Log {
      std::string durability;
      std::string read_visibility;  // in effect: "durable" or "immediate"
      std::uint64_t bytes = 0, fsyncs = 0, entries = 0, group_max = 0, pending_entries = 0;
      double fsync_seconds = 0;
      std::string segment;
      std::string broken;  // why the log refuses writes ("" when it does not)
    } log;
  };
  Figures figures() const;
  const PersistenceOptions& options() const { return opts_; }

  // CommitSink
  std::uint64_t append(const std::shared_ptr<const DbVersion>& version, std::uint64_t prev_version,
                       std::uint32_t calls, std::string_view calls_payload) override;
  void answer(std::uint64_t ticket, Answers answers) override;
  bool refusing() const override;
  Error refusal() const override;

 private:
  explicit Persistence(PersistenceOptions opts);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  PersistenceOptions opts_;
};

}  // namespace tickdb
