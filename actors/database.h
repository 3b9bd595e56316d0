// Database: what every actor of one node shares: the published version (VersionCell), the
// registry of callables, the parallel runner, and the commit path with its counters.
//
// Writers commit optimistically: a transaction runs over the version it loaded (`base`) and
// publish() swaps in its result only if `base` is still current; if another writer
// published in between, the result is rebased onto the newer version when the transaction
// touched nothing that changed (DbVersion::rebase), and otherwise publish() says conflict and
// the caller runs the transaction again. Readers never wait for any of it.
//
// Read visibility (storage.read_visibility): with durable reads on, readers load `readable()`,
// the newest version whose commit-log entry is on disk (the sink's writer calls
// made_durable()), while writers go on from `current()`, the newest version in memory. So no
// reader sees a write that a crash could still take back. Without them both are the same.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "actors/idempotency_ledger.h"
#include "actors/messages_fwd.h"
#include "actors/procedures.h"
#include "actors/publish_listener.h"
#include "core/version_cell.h"

namespace tickdb {

struct PendingCall;

// Where committed calls go to be made durable: the persistence's commit log. append() is
// called in publish order (under the publish lock) for every version that commits calls;
// answer() sends the answers of those calls once that entry is durable (or at once, when the
// log is flushed in the background).
class CommitSink {
 public:
  virtual ~CommitSink() = default;
  // The entry of `version` (published right after `prev_version`); returns its ticket. The
  // sink holds `version` until its entry is durable and then hands it to
  // Database::made_durable when durable reads are on. 0: the sink refuses writes (the log is
  // broken and writes are rolled back, refusal() says why): the caller takes `version` back.
  virtual std::uint64_t append(const std::shared_ptr<const DbVersion>& version,
                               std::uint64_t prev_version, std::uint32_t calls,
                               std::string_view calls_payload) = 0;
  // Cheap and lock-free: true while appends would be refused.
  virtual bool refusing() const = 0;
  virtual Error refusal() const = 0;
  using Answers = std::vector<std::pair<std::shared_ptr<ReplyTo>, Result<json>>>;
  // Sends answers once entry `ticket` is durable (sync durability), else at once. Ticket 0
  // (the calls committed nothing): at once, but with durable reads on only once every entry
  // appended so far is durable, as the calls may have read from those versions.
  virtual void answer(std::uint64_t ticket, Answers answers) = 0;
};

class Database {
 public:
  Database(std::shared_ptr<const DbVersion> initial, const Registry& reg, ParallelRunner& runner)
      : cell_(initial), visible_(initial), reg_(&reg), runner_(&runner) {}

  VersionCell<DbVersion>& cell() { return cell_; }
  // The newest version: what writers start from.
  std::shared_ptr<const DbVersion> current() const { return cell_.load(); }
  // What readers see: with durable reads, the newest version that is on disk.
  std::shared_ptr<const DbVersion> readable() const {
    return durable_reads_.load(std::memory_order_acquire) ? visible_.load() : cell_.load();
  }
  // Turns durable reads on or off; the current version counts as durable (it was recovered).
  // Set before writers start, or while none publish.
  void set_durable_reads(bool on);
  bool durable_reads() const { return durable_reads_.load(std::memory_order_acquire); }
  // The sink's writer: every entry up to `v`'s is on disk. With durable reads, `v` becomes
  // readable (versions only move forward) and the publish listener is told of it.
  void made_durable(const std::shared_ptr<const DbVersion>& v);
  const Registry& registry() const { return *reg_; }
  ParallelRunner& runner() { return *runner_; }

  // Publishes `mine`, committed over `base` by transactions that touched `touched`; rebases
  // it onto newer versions when it can. conflict: nothing was published (run it again). With
  // a sink, the calls it commits (`calls`, encoded by append_logged_call) are appended to it
  // in publish order, and `ticket` receives the ticket for answer(); refused: the sink
  // refuses writes (CommitSink::refusal), nothing was published.
  // The results of the calls made under an Idempotency-Key (`keyed`) are recorded in the
  // ledger, with the version published, under the same lock as the log append.
  enum class Outcome { published, conflict, refused };
  using Keyed = std::vector<std::pair<std::string, IdempotencyLedger::Entry>>;
  Outcome publish(const std::shared_ptr<const DbVersion>& base,
                  const std::shared_ptr<const DbVersion>& mine, const TouchSet& touched,
                  std::uint32_t calls = 0, std::string_view calls_payload = {},
                  std::uint64_t* ticket = nullptr, Keyed* keyed = nullptr);
  // The sink's writer, when the log lost entries: makes the content of `to` (the last
  // version on disk) current again, as a new version numbered after every version published
  // (so versions only move forward); returns it. Writes published after `to` are gone: their
  // calls were answered with the log's error.
  // The ledger forgets the keyed calls of the versions given up.
  std::shared_ptr<const DbVersion> roll_back(const std::shared_ptr<const DbVersion>& to);

  // The keyed calls committed so far (actors/idempotency_ledger.h).
  IdempotencyLedger& ledger() { return ledger_; }
  // Those committed at or before `version` (published already), for the key file of its
  // snapshot: after the publish lock was free once, so every publish of a version up to
  // `version` has recorded its keys.
  std::vector<KeyRecord> keys_through(std::uint64_t version);

  // The commit log (nullptr: none). Set before writers start, or while none publish.
  void set_sink(CommitSink* sink) { sink_.store(sink, std::memory_order_release); }
  CommitSink* sink() const { return sink_.load(std::memory_order_acquire); }
  // The listener told of each publish (with durable reads: of each version made readable)
  // (nullptr: none). It must outlive every publish after
  // it is set: clear it before the listener is destroyed, while writers may still run.
  void set_publish_listener(PublishListener* l) { listener_.store(l, std::memory_order_release); }
  // Sends each call's answer: through the sink once `ticket` is durable, else at once.
  void answer(std::vector<PendingCall>& batch, std::uint64_t ticket);

  struct Counters {
    std::uint64_t versions = 0;   // versions published
    std::uint64_t rebases = 0;    // of them, rebased onto a newer version
    std::uint64_t conflicts = 0;  // commits that had to run again
    std::uint64_t calls = 0;      // write calls answered by the commit path
    std::uint64_t handoffs = 0;   // table actor batches handed to the executor
  };
  Counters counters() const;
  void count_calls(std::uint64_t n) { calls_.fetch_add(n, std::memory_order_relaxed); }
  void count_conflict() { conflicts_.fetch_add(1, std::memory_order_relaxed); }
  void count_handoff() { handoffs_.fetch_add(1, std::memory_order_relaxed); }

 private:
  VersionCell<DbVersion> cell_;
  VersionCell<DbVersion> visible_;  // durable reads: the newest version on disk
  std::atomic<bool> durable_reads_{false};
  std::atomic<CommitSink*> sink_{nullptr};
  std::atomic<PublishListener*> listener_{nullptr};
  std::mutex publish_mu_;  // with a sink: the log's order is the publish order
  IdempotencyLedger ledger_;
  const Registry* reg_;
  ParallelRunner* runner_;
  alignas(64) std::atomic<std::uint64_t> versions_{0};
  std::atomic<std::uint64_t> rebases_{0};
  std::atomic<std::uint64_t> conflicts_{0};
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::uint64_t> handoffs_{0};
};

// One call waiting in a batch, and its answer once the batch has run.
struct PendingCall {
  CallRequest req;
  Result<json> result{json()};
};

enum class BatchMode {
  shared,   // every call in one transaction (a table actor: built-in one-statement writes)
  chained,  // a transaction per call, each over the one before (the executor: procedures)
};

// The commit path: runs every call of `batch` over the current version and publishes the
// result once (group commit); each call gets its own answer in `result`, a failed call
// changes nothing. false on a conflict (nothing published; run the batch again). `touched`
// receives every table the batch touched, `ticket` the commit log's ticket for
// Database::answer (0: nothing logged).
bool run_batch(Database& db, std::vector<PendingCall>& batch, BatchMode mode, TouchSet& touched,
               std::uint64_t& ticket);

}  // namespace tickdb
