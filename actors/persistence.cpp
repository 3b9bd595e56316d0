#include "actors/persistence.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "actors/runtime.h"
#include "core/file_names.h"

namespace tickdb {

namespace fs = std::filesystem;

namespace {

std::string snapshot_file_name(std::uint64_t version) {
  return numbered_file_name("snapshot-", version, ".tds");
}

std::optional<std::uint64_t> parse_snapshot_file_name(std::string_view name) {
  return parse_numbered_file_name(name, "snapshot-", ".tds");
}

// Files of one kind in the data directory, by version (ascending); io_error naming the directory
// when it cannot be listed.
template <class Parse>
Result<std::map<std::uint64_t, std::string>> list_files(const std::string& dir, Parse parse) {
  std::map<std::uint64_t, std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    auto v = parse(it->path().filename().string());
    if (v) out[*v] = it->path().string();
  }
  if (ec) return make_error(Errc::io_error, "cannot list '" + dir + "': " + ec.message());
  return out;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct Persistence::Impl {
  PersistenceOptions opts;
  int lock_fd = -1;
  Runtime* rt = nullptr;
  bool started = false;
  bool logging = false;  // durability sync or async

  // ---- the log writer ----
  mutable std::mutex mu;
  std::condition_variable cv;                     // the writer waits here for entries
  std::string pending;                            // encoded entries not yet written
  std::uint64_t pending_first = 0;                // the version of the first entry in `pending`
  std::shared_ptr<const DbVersion> pending_last;  // the version of the last entry appended
  bool durable_reads = false;  // started with durable reads on (Database::made_durable)
  // sync: the newest version whose entry (or snapshot) is on disk; what a broken log rolls
  // back to (Database::roll_back), so that a write answered with the log's error is gone.
  std::shared_ptr<const DbVersion> durable_version;
  std::atomic<bool> refusing{false};  // sync, while broken: appends are refused
  // Tickets whose writes were rolled back: answered with the error that broke the log, even
  // when their answer arrives after the log was repaired (first, last, error).
  struct Failed {
    std::uint64_t first, last;
    Error error;
  };
  std::vector<Failed> failed;
  // The writer's: the version a roll back went back to (0: none since the last repair); the
  // repair logs the step from it to the rolled-back version, so older snapshots still chain.
  std::uint64_t rolled_back_from = 0;
  const Error* failed_ticket(std::uint64_t t) const {
    for (const auto& f : failed)
      if (t >= f.first && t <= f.last) return &f.error;
    return nullptr;
  }
  std::uint64_t appended = 0;  // tickets handed out (one per entry)
  std::uint64_t taken = 0;     // tickets the writer took out of `pending`
  std::uint64_t durable = 0;   // entries up to this ticket are on disk
  std::deque<std::pair<std::uint64_t, Answers>> waiting;  // sync: answers until durable
  bool rotate = false;                                    // start a new segment with the next write
  bool stop_writer = false;
  // The log could not be written: nothing more is acknowledged, `pending` is kept (not
  // written after the entries that were lost) until repair() succeeds.
  std::optional<Error> broken;
  std::thread writer;
  LogFile file;         // the writer's own
  std::string segment;  // the open segment's path (under mu)
  // figures (under mu)
  std::uint64_t log_bytes = 0, fsyncs = 0, entries_written = 0, max_group = 0;
  double fsync_seconds = 0;

  // ---- snapshots ----
  mutable std::mutex snap_mu;
  std::condition_variable snap_cv;
  std::vector<std::function<void(Result<SnapshotWriteInfo>)>> requests;
  bool stop_snapshots = false;
  std::thread snapshotter;
  std::mutex write_mu;  // one snapshot written at a time
  // figures (under snap_mu)
  std::uint64_t snapshots = 0, snapshot_failures = 0;
  std::optional<SnapshotWriteInfo> last;
  double last_at = 0;  // unix seconds
  std::string last_error;
  std::uint64_t last_version = 0;
  bool have_last = false;

  void say(int level, const std::string& m) const {
    if (opts.log) opts.log(level, m);
  }

  void writer_loop();
  // While the log is broken: a snapshot of the current version holds every write, the lost
  // ones too; once one is durable, the entries it holds leave `pending`, the log goes on in a
  // new segment after it, and writes are acknowledged again. False when the snapshot failed.
  bool repair();
  // Writes a snapshot of the current version; with only_if_changed, nothing when that version
  // is the last one written or loaded (`skipped` then).
  // `written` (when given) receives the version written.
  Result<SnapshotWriteInfo> take_snapshot(bool only_if_changed, bool& skipped,
                                          std::shared_ptr<const DbVersion>* written = nullptr);
  void prune();
  void snapshot_loop();
};

Persistence::Persistence(PersistenceOptions opts)
    : impl_(std::make_unique<Impl>()), opts_(std::move(opts)) {
  impl_->opts = opts_;
}

Persistence::~Persistence() {
  stop();
  if (impl_->lock_fd >= 0) ::close(impl_->lock_fd);
}

Result<std::unique_ptr<Persistence>> Persistence::open(PersistenceOptions opts) {
  auto bad = [](std::string m) { return make_error(Errc::invalid_argument, std::move(m)); };
  if (opts.snapshot_keep < 1) return bad("storage.snapshot_keep must be at least 1");
  if (opts.compression_level < 1 || opts.compression_level > 19)
    return bad("storage.compression_level must be 1..19, it is " +
               std::to_string(opts.compression_level));
  if (!(opts.snapshot_interval_s >= 0)) return bad("storage.snapshot_interval_s must be >= 0");
  if (opts.data_dir.empty()) return bad("storage.data_dir must not be empty");
  std::error_code ec;
  fs::create_directories(opts.data_dir, ec);
  if (ec)
    return make_error(Errc::io_error,
                      "storage.data_dir: cannot create '" + opts.data_dir + "': " + ec.message());
  std::unique_ptr<Persistence> p(new Persistence(std::move(opts)));
  Impl& m = *p->impl_;
  const std::string lock_path = (fs::path(m.opts.data_dir) / "LOCK").string();
  m.lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (m.lock_fd < 0)
    return make_error(Errc::io_error,
                      "storage.data_dir: cannot open '" + lock_path + "': " + std::strerror(errno));
  if (::flock(m.lock_fd, LOCK_EX | LOCK_NB) != 0)
    return make_error(Errc::conflict, "storage.data_dir '" + m.opts.data_dir +
                                          "' is in use by another tickdb-server (" + lock_path +
                                          " is locked)");
  for (const auto& e : fs::directory_iterator(m.opts.data_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() > 4 && name.substr(name.size() - 4) == ".tmp") {
      m.say(1, "removing " + e.path().string() + ": a snapshot a stop or crash left unfinished");
      fs::remove(e.path(), ec);
    }
  }
  m.logging = m.opts.durability != Durability::snapshot;
  return p;
}

Result<Persistence::Recovered> Persistence::recover() {
  Impl& m = *impl_;
  Recovered out;
  out.db = DbVersion::empty();
  // The newest snapshot that loads.
  auto listed = list_files(m.opts.data_dir, parse_snapshot_file_name);
  if (!listed) return listed.error();
  const auto& snaps = *listed;
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    const std::string& path = it->second;
    auto t0 = std::chrono::steady_clock::now();
    auto loaded = read_snapshot(path, [&](std::uint64_t done, std::uint64_t total) {
      if (done < total)
        m.say(0, "loading " + path + ": " +
                     std::to_string(done * 100 / std::max<std::uint64_t>(total, 1)) + "%");
    });
    if (!loaded) {
      // A newer format (conflict) stops the start: falling back would lose what it holds.
      // Out of memory stops it too; a damaged (corruption) or unreadable (io_error) file is
      // skipped for an older one, whose log segments are kept (prune).
      if (loaded.code() == Errc::conflict)
        return make_error(
            Errc::conflict,
            loaded.message() +
                ": refusing to start (run a tickdb that reads it, or move the file away)");
      if (loaded.code() == Errc::resource_exhausted) return loaded.error();
      m.say(1, "skipping snapshot " + path + " (" + std::string(errc_name(loaded.code())) +
                   "): " + loaded.message());
      ++out.skipped_snapshots;
      continue;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::uint64_t records = 0;
    for (const auto& t : loaded->info.tables) records += t.records;
    m.say(0, "loaded snapshot " + path + ": version " + std::to_string(loaded->info.version) +
                 ", " + std::to_string(loaded->info.tables.size()) + " tables, " +
                 std::to_string(records) + " records, " + std::to_string(loaded->info.bytes) +
                 " bytes in " + std::to_string(secs) + " s");
    out.db = loaded->db;
    out.snapshot = path;
    // The keyed writes up to the snapshot (the log entries that held them may be gone).
    const std::string keys =
        (fs::path(m.opts.data_dir) / key_file_name(loaded->info.version)).string();
    if (fs::exists(keys)) {
      if (auto k = read_key_file(keys)) {
        out.keys = std::move(*k);
      } else {
        m.say(2, k.message() +
                     ": its Idempotency-Keys are forgotten (a write retried with one "
                     "of them is applied again)");
      }
    }
    std::lock_guard lk(m.snap_mu);
    m.last_version = loaded->info.version;
    m.have_last = true;
    break;
  }
  if (out.snapshot.empty())
    m.say(snaps.empty() ? 0 : 1, snaps.empty()
                                     ? "no snapshot: starting from an empty database"
                                     : "no snapshot loads: starting from an empty database");
  // The log after it.
  const std::uint64_t from = out.db->version();
  auto segs = list_files(m.opts.data_dir, parse_log_file_name);
  if (!segs) return segs.error();
  // `have`: the version the snapshot and the entries kept so far reach. After a damaged
  // segment, a later one that starts at or before have + 1 still chains on (the log went on
  // in a new segment after a snapshot that repaired a write failure, see repair()).
  std::uint64_t have = from;
  bool cut = false;
  for (const auto& [first, path] : *segs) {
    if (cut && first <= have + 1) {
      m.say(0, "log segment " + path + " follows version " + std::to_string(have) +
                   ": read after the damaged one");
      cut = false;
    }
    if (cut) {
      std::error_code ec;
      fs::rename(path, path + ".unreplayed", ec);
      if (ec)
        return make_error(Errc::io_error, "cannot rename '" + path + "' to '" + path +
                                              ".unreplayed': " + ec.message());
      m.say(2, "log segment " + path + " comes after a damaged one: moved aside to " + path +
                   ".unreplayed, not replayed");
      continue;
    }
    auto r = read_log_file(path);
    if (!r) return r.error();
    for (auto& e : r->entries)
      if (e.version > have) {
        have = e.version;
        out.entries.push_back(std::move(e));
      }
    if (!r->damage.is_ok()) {
      m.say(1, r->damage.message() + ": cut after the last whole entry (" +
                   std::to_string(r->entries.size()) + " entries kept)");
      TICKDB_TRY(truncate_log_file(path, r->valid_bytes));
      out.cut_bytes += r->file_bytes - r->valid_bytes;
      cut = true;
    }
  }
  if (!out.entries.empty())
    m.say(0, std::to_string(out.entries.size()) + " log entries to replay after version " +
                 std::to_string(from));
  return out;
}

Status Persistence::start(Runtime& rt) {
  Impl& m = *impl_;
  if (m.started) return make_error(Errc::internal, "persistence started twice");
  m.rt = &rt;
  m.started = true;
  if (m.logging) {
    {
      std::lock_guard lk(m.mu);
      m.rotate = true;  // never append to a segment recovery read (it may end in a cut)
      m.durable_reads = m.opts.durable_reads;
    }
    // What was recovered is on disk: it is readable from the start.
    if (m.durable_reads) rt.set_durable_reads(true);
    m.durable_version = rt.head();
    m.writer = std::thread([&m] { m.writer_loop(); });
    rt.set_commit_sink(this);
  }
  m.snapshotter = std::thread([&m] { m.snapshot_loop(); });
  return {};
}

// ---------------- the log ----------------

std::uint64_t Persistence::append(const std::shared_ptr<const DbVersion>& version,
                                  std::uint64_t prev_version, std::uint32_t calls,
                                  std::string_view calls_payload) {
  Impl& m = *impl_;
  std::lock_guard lk(m.mu);
  if (m.refusing.load(std::memory_order_relaxed)) return 0;
  if (m.pending.empty()) m.pending_first = version->version();
  append_entry(m.pending, version->version(), prev_version, calls, calls_payload);
  m.pending_last = version;
  ++m.appended;
  m.cv.notify_one();
  return m.appended;
}

bool Persistence::refusing() const {
  return impl_->refusing.load(std::memory_order_acquire);
}

Error Persistence::refusal() const {
  std::lock_guard lk(impl_->mu);
  if (impl_->broken) return *impl_->broken;
  return make_error(Errc::io_error, "the write is not applied: the commit log cannot be written");
}

void Persistence::answer(std::uint64_t ticket, Answers answers) {
  Impl& m = *impl_;
  if (answers.empty()) return;
  // With durable reads, calls that committed nothing may have read versions not yet on disk:
  // they wait for every entry appended so far (their answers must not show a write a crash
  // could take back).
  const bool read_only_wait = m.durable_reads && ticket == 0;
  if (opts_.durability == Durability::sync || read_only_wait) {
    std::unique_lock lk(m.mu);
    const Error* failed = m.failed_ticket(ticket);
    if (m.broken || failed) {
      Error e = failed ? *failed : *m.broken;
      lk.unlock();
      for (auto& [reply, result] : answers) reply->send(Result<json>(e));
      return;
    }
    if (read_only_wait) ticket = m.appended;
    if (ticket > m.durable) {
      m.waiting.emplace_back(ticket, std::move(answers));
      return;
    }
  }
  for (auto& [reply, result] : answers) reply->send(std::move(result));
}

void Persistence::Impl::writer_loop() {
  const bool sync = opts.durability == Durability::sync;
  const auto flush_every = std::chrono::duration<double>(opts.async_flush_s);
  constexpr std::chrono::milliseconds kRetryFirst{250}, kRetryMax{10000};
  auto retry = kRetryFirst;
  for (;;) {
    std::string batch;
    std::shared_ptr<const DbVersion> last;  // durable reads: the batch's last version
    std::uint64_t upto = 0, first = 0;
    bool new_segment = false;
    {
      std::unique_lock lk(mu);
      if (broken) {
        // Never write after entries that were lost (a restart could not replay past the
        // gap): wait, then try to repair with a snapshot (the disk may have space again).
        cv.wait_for(lk, retry, [&] { return stop_writer; });
        if (stop_writer) break;
        lk.unlock();
        retry = repair() ? kRetryFirst : std::min<std::chrono::milliseconds>(retry * 2, kRetryMax);
        continue;
      }
      if (sync) {
        cv.wait(lk, [&] { return !pending.empty() || stop_writer; });
      } else {
        cv.wait_for(lk, flush_every, [&] { return stop_writer; });
      }
      if (pending.empty()) {
        if (stop_writer) break;
        continue;
      }
      batch.swap(pending);
      last = std::move(pending_last);
      upto = appended;
      taken = upto;
      first = pending_first;
      new_segment = rotate || !file.is_open();
      rotate = false;
    }
    Status st;
    if (new_segment) {
      st = file.open((fs::path(opts.data_dir) / log_file_name(first)).string());
      std::lock_guard lk(mu);
      segment = st ? file.path() : std::string();
    }
    auto t0 = std::chrono::steady_clock::now();
    if (st) st = file.write(batch);
    if (st) st = file.sync();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<Answers> ready;
    bool roll = false;
    {
      std::lock_guard lk(mu);
      if (!st) {
        if (!broken) {
          // Keeps the kind: io_error, or resource_exhausted when the disk is full.
          broken = make_error(
              st.code(),
              sync
                  ? "the write is not applied: the commit log cannot be written: " + st.message()
                  : "the write is in memory but the commit log cannot be written: " + st.message());
          say(2, broken->message + " (writes are refused until a snapshot can be written)");
        }
        if (sync) {
          // Nothing that is not on disk stays: every entry after the last fsync is given up,
          // its writes are rolled back below and its calls answered with the error, and
          // appends are refused until the repair (a failed write changes nothing).
          refusing = true;
          if (appended > durable) failed.push_back({durable + 1, appended, *broken});
          pending.clear();
          pending_last.reset();
          durable = taken = appended;
          roll = true;
          // The file's tail is unknown (a short write, or pages a failed fsync dropped): cut
          // back to the last fsync, so no restart replays what was rolled back.
          if (Status c = file.cut_to_synced(); !c)
            say(2, c.message() + " (a restart may replay writes that were answered with an error)");
        }
        // The log goes on in a new segment after the repairing snapshot.
        file.close();
        segment.clear();
      } else {
        const std::uint64_t group = upto - durable;
        durable = upto;
        log_bytes += batch.size();
        ++fsyncs;
        fsync_seconds += secs;
        entries_written += group;
        max_group = std::max(max_group, group);
      }
      // Answers arrive from several actors, so tickets in `waiting` are not in order.
      for (auto it = waiting.begin(); it != waiting.end();) {
        if (broken || it->first <= durable) {
          ready.push_back(std::move(it->second));
          it = waiting.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::optional<Error> failed;
    if (!st) {
      std::lock_guard lk(mu);
      failed = broken;
    } else if (last) {
      durable_version = last;
      rt->made_durable(last);  // readable before its answers go: a client reads its own write
    }
    if (roll) {
      auto back = rt->roll_back(durable_version);
      say(1, "rolled back to the content of version " + std::to_string(durable_version->version()) +
                 ", the last on disk, as version " + std::to_string(back->version()));
      rolled_back_from = durable_version->version();
      durable_version = std::move(back);
    }
    for (auto& answers : ready)
      for (auto& [reply, result] : answers)
        reply->send(failed ? Result<json>(*failed) : std::move(result));
  }
  file.close();
  std::lock_guard lk(mu);
  segment.clear();
}

bool Persistence::Impl::repair() {
  bool skipped = false;
  std::shared_ptr<const DbVersion> held_version;
  auto r = take_snapshot(false, skipped, &held_version);
  if (!r) return false;
  std::vector<Answers> ready;
  {
    std::lock_guard lk(mu);
    // Publishing appends under the publish lock, so every entry up to the snapshot's version
    // is in `pending` or was lost with a failed batch: both are in the snapshot.
    std::uint64_t held = 0;
    pending.erase(0, entries_through(pending, r->version, held));
    if (!pending.empty()) {
      std::memcpy(&pending_first, pending.data() + 16, sizeof pending_first);  // its version
    }
    durable = taken + held;
    taken = durable;
    broken.reset();
    refusing = false;
    rotate = true;
    if (rolled_back_from) {
      // The first entry of the next segment: no calls, from the version rolled back to, to
      // the version that stands for it (the snapshot holds it too; a fallback to an older
      // snapshot replays through it).
      std::string bump;
      append_entry(bump, held_version->version(), rolled_back_from, 0, {});
      pending.insert(0, bump);
      pending_first = held_version->version();
      ++appended;
      rolled_back_from = 0;
    }
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (it->first <= durable) {
        ready.push_back(std::move(it->second));
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
    say(1, "the commit log is written again: " + r->path + " holds every write up to version " +
               std::to_string(r->version) + "; writes are acknowledged again");
  }
  durable_version = held_version;
  if (durable_reads) rt->made_durable(held_version);  // on disk now, in the snapshot
  for (auto& answers : ready)
    for (auto& [reply, result] : answers) reply->send(std::move(result));
  prune();
  cv.notify_one();
  return true;
}

// ---------------- snapshots ----------------

Result<SnapshotWriteInfo> Persistence::Impl::take_snapshot(
    bool only_if_changed, bool& skipped, std::shared_ptr<const DbVersion>* written) {
  std::lock_guard w(write_mu);
  skipped = false;
  auto v = rt->head();  // the newest version, whether or not readers see it yet
  if (written) *written = v;
  {
    std::lock_guard lk(snap_mu);
    if (only_if_changed && have_last && last_version == v->version()) {
      skipped = true;
      return SnapshotWriteInfo{};
    }
  }
  const std::string path = (fs::path(opts.data_dir) / snapshot_file_name(v->version())).string();
  // Between frames the thread yields: a tick that woke on this CPU runs now, not when the
  // kernel next preempts (measured: 2-5 ms late on 2 vCPUs without it).
  // The keyed writes go first: once the snapshot is there, the log entries before it may go.
  Result<SnapshotWriteInfo> r = SnapshotWriteInfo{};
  if (auto keys = rt->keys_through(v->version()); !keys.empty()) {
    const std::string kpath = (fs::path(opts.data_dir) / key_file_name(v->version())).string();
    if (Status st = write_key_file(kpath, keys); !st) r = st.error();
  }
  if (r) r = write_snapshot(*v, path, opts.compression_level, [] { sched_yield(); });
  std::lock_guard lk(snap_mu);
  if (!r) {
    ++snapshot_failures;
    last_error = r.message();
    say(2, "snapshot of version " + std::to_string(v->version()) + " failed: " + r.message());
    return r;
  }
  ++snapshots;
  last = *r;
  last_at = now_s();
  last_version = v->version();
  have_last = true;
  say(0, "snapshot " + path + ": " + std::to_string(r->records) + " records, " +
             std::to_string(r->bytes) + " bytes in " + std::to_string(r->seconds) + " s");
  return r;
}

void Persistence::Impl::prune() {
  std::lock_guard w(write_mu);  // not under a snapshot being written (its key file is there first)
  std::error_code ec;
  auto listed = list_files(opts.data_dir, parse_snapshot_file_name);
  if (!listed) return say(1, "not pruning: " + listed.message());
  auto& snaps = *listed;
  while (snaps.size() > opts.snapshot_keep) {
    fs::remove(snaps.begin()->second, ec);
    snaps.erase(snaps.begin());
  }
  // A key file goes with its snapshot (or when its snapshot was never written).
  if (auto keys = list_files(opts.data_dir, parse_key_file_name))
    for (const auto& [version, kpath] : *keys)
      if (!snaps.count(version)) fs::remove(kpath, ec);
  if (snaps.empty()) return;
  // Log segments wholly before the oldest kept snapshot are no longer needed: segment i holds
  // versions below the next segment's first, so it goes when that first <= oldest + 1.
  const std::uint64_t oldest = snaps.begin()->first;
  std::string open_segment;
  {
    std::lock_guard lk(mu);
    open_segment = segment;
  }
  auto listed_segs = list_files(opts.data_dir, parse_log_file_name);
  if (!listed_segs) return say(1, "not pruning: " + listed_segs.message());
  const auto& segs = *listed_segs;
  for (auto it = segs.begin(); it != segs.end(); ++it) {
    auto next = std::next(it);
    if (next == segs.end() || next->first > oldest + 1) break;
    if (it->second == open_segment) break;
    fs::remove(it->second, ec);
  }
  (void)fsync_dir(opts.data_dir);
}

void Persistence::Impl::snapshot_loop() {
  // Below the tick loop and the request threads: a snapshot takes what CPU is left
  // (SCHED_IDLE: any other thread that wakes up preempts it at once; nice 19 where that
  // policy is not allowed).
  sched_param none{};
  if (::sched_setscheduler(0, SCHED_IDLE, &none) != 0)
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
  auto next_due = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(opts.snapshot_interval_s));
  for (;;) {
    std::vector<std::function<void(Result<SnapshotWriteInfo>)>> todo;
    bool periodic = false;
    {
      std::unique_lock lk(snap_mu);
      auto ready = [&] { return stop_snapshots || !requests.empty(); };
      if (opts.snapshot_interval_s > 0) {
        snap_cv.wait_until(lk, next_due, ready);
      } else {
        snap_cv.wait(lk, ready);
      }
      if (stop_snapshots) break;
      todo.swap(requests);
      periodic = todo.empty();
      if (periodic && std::chrono::steady_clock::now() < next_due) continue;
    }
    bool skipped = false;
    auto r = take_snapshot(periodic, skipped);
    if (r && !skipped) {
      std::lock_guard lk(mu);
      rotate = true;  // the next entries start a segment after this snapshot
    }
    if (r) prune();
    next_due = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   std::chrono::duration<double>(opts.snapshot_interval_s));
    for (auto& done : todo) done(r);
  }
  // Requests that came too late are answered, never dropped.
  std::vector<std::function<void(Result<SnapshotWriteInfo>)>> left;
  {
    std::lock_guard lk(snap_mu);
    left.swap(requests);
  }
  for (auto& done : left) done(make_error(Errc::node_unavailable, "the node is stopping"));
}

void Persistence::snapshot_async(std::function<void(Result<SnapshotWriteInfo>)> done) {
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.snap_mu);
    if (m.started && !m.stop_snapshots) {
      m.requests.push_back(std::move(done));
      m.snap_cv.notify_one();
      return;
    }
  }
  done(make_error(Errc::node_unavailable, "snapshots are not running"));
}

void Persistence::stop() {
  Impl& m = *impl_;
  if (!m.started) return;
  m.started = false;
  {
    std::lock_guard lk(m.snap_mu);
    m.stop_snapshots = true;
  }
  m.snap_cv.notify_all();
  if (m.snapshotter.joinable()) m.snapshotter.join();
  if (m.writer.joinable()) {
    {
      std::lock_guard lk(m.mu);
      m.stop_writer = true;
    }
    m.cv.notify_all();
    m.writer.join();
  }
  // The last snapshot: a restart then loads it without replaying the log.
  bool skipped = false;
  std::shared_ptr<const DbVersion> written;
  if (m.take_snapshot(true, skipped, &written)) {
    m.prune();
    if (m.durable_reads && !skipped) m.rt->made_durable(written);
  }
  if (m.logging && m.rt) m.rt->set_commit_sink(nullptr);
}

Persistence::Figures Persistence::figures() const {
  const Impl& m = *impl_;
  Figures f;
  f.data_dir = m.opts.data_dir;
  {
    std::lock_guard lk(m.snap_mu);
    f.snapshot.count = m.snapshots;
    f.snapshot.failures = m.snapshot_failures;
    f.snapshot.last_error = m.last_error;
    f.snapshot.interval_s = m.opts.snapshot_interval_s;
    f.snapshot.keep = m.opts.snapshot_keep;
    f.snapshot.last = m.last;
    if (m.last) f.snapshot.last_age_s = now_s() - m.last_at;
  }
  {
    std::lock_guard lk(m.mu);
    f.log.durability = std::string(to_string(m.opts.durability));
    f.log.read_visibility = m.durable_reads ? "durable" : "immediate";
    f.log.bytes = m.log_bytes;
    f.log.fsyncs = m.fsyncs;
    f.log.fsync_seconds = m.fsync_seconds;
    f.log.entries = m.entries_written;
    f.log.group_max = m.max_group;
    f.log.pending_entries = m.appended - m.durable;
    f.log.segment = m.segment;
    f.log.broken = m.broken ? m.broken->message : std::string();
  }
  return f;
}

}  // namespace tickdb
