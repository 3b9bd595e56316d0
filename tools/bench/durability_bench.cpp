// tickdb-bench-durability: the durability figures, one run, printed as a table or as one JSON
// object (--json). Every figure is compared with its yardstick measured in the same run:
//   snapshot              write_snapshot() of a table of 10,000,000 32-byte records (zstd -1,
//                         fsynced), MB/s of raw bytes (ids and records); against the `zstd -1`
//                         CLI compressing the very bytes the snapshot compresses (dumped to a
//                         file: per block of kSnapshotBlockRaw bytes the id differences, then the
//                         records)
//   recovery              read_snapshot() of that file (checksum, decompression, every value
//                         checked, the tables built), MB/s of raw bytes; against `zstd -d` of
//                         the `zstd -1` file of the same raw bytes
//   tick_during_snapshot  the tick loop at 60 Hz over that database with Persistence
//                         (durability "snapshot"): lateness p99 of the ticks while snapshots
//                         are written back to back, against the p99 without; phases
//                         alternate, the figures are medians of the phases' p99
//   sync_post             tickdb-server with storage.durability=sync, wrk POSTing one record
//                         over 64 connections; against the same with durability "snapshot";
//                         the table must hold at least as many records as wrk counted answers
//   read_visibility       tickdb-server (sync) with storage.read_visibility=durable against
//                         immediate: wrk POST and GET req/s over 64 connections, and the time
//                         from a POST until an SSE subscriber of the table receives the record
//                         (p50/p99 of sequential inserts)
// --quick: 1,000,000 records and short phases (CTest: bench-durability-smoke).
// Every loop is bounded in count and in time; child processes run under `timeout` or are
// waited for with a deadline; everything listens on 127.0.0.1; temporary files live in one
// directory under /tmp, removed at the end (also when the bench fails).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "actors/persistence.h"
#include "actors/runtime.h"
#include "bench_node.h"
#include "core/snapshot_file.h"
#include "core/transaction.h"

extern char** environ;

using namespace tickdb;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct Options {
  bool json_out = false;
  bool quick = false;
  std::string only;  // one part (profiling); the others print as null
  std::string server = TICKDB_SERVER;
  std::uint64_t records = 10'000'000;
};

// ---- clean-up, also on failure ----

std::string g_tmp;   // the run's temporary directory
char g_big[3][256];  // the large files, for the SIGINT handler

void cleanup() {
  bench::kill_started_nodes();
  if (!g_tmp.empty()) {
    std::error_code ec;
    fs::remove_all(g_tmp, ec);
    g_tmp.clear();
  }
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tickdb-bench-durability: %s\n", what.c_str());
  cleanup();
  std::exit(1);
}

template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.message());
  return std::move(r).value();
}
void must(const Status& s, const std::string& what) {
  if (!s) die(what + ": " + s.message());
}

void say(const Options& o, const char* fmt, const std::string& a = "") {
  std::fprintf(o.json_out ? stderr : stdout, fmt, a.c_str());
  std::fflush(o.json_out ? stderr : stdout);
}

double secs_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double mb(std::uint64_t bytes) {
  return static_cast<double>(bytes) / 1e6;
}

// Runs a shell command (already bounded by `timeout`); its wall time in seconds.
double timed_shell(const std::string& cmd) {
  auto t0 = Clock::now();
  int rc = std::system(cmd.c_str());
  double s = secs_since(t0);
  if (rc != 0) die("'" + cmd + "' failed (status " + std::to_string(rc) + ")");
  return s;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// ---- the database: `bench`, 32-byte records ----

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A uniform value in [lo, hi) rounded to 0.01, as a game would store a position.
float coord(std::uint64_t& s, double lo, double hi) {
  double u = static_cast<double>(splitmix(s) >> 11) * 0x1.0p-53;
  return static_cast<float>(std::round((lo + u * (hi - lo)) * 100.0) / 100.0);
}

std::shared_ptr<const DbVersion> build_db(std::uint64_t n) {
  Transaction t(DbVersion::empty());
  must(t.create_table("bench", {{"hp", "i32"},
                                {"x", "f32"},
                                {"y", "f32"},
                                {"z", "f32"},
                                {"owner", "u64"},
                                {"tag", "u32"},
                                {"speed", "f32"}}),
       "create_table");
  TableVersion* tv = must(t.writable_table("bench"), "writable_table");
  const TableSchema& s = *tv->schema();
  if (s.record_size() != 32)
    die("the bench table's records are " + std::to_string(s.record_size()) + " bytes, not 32");
  auto hp = must(FieldAccessor<std::int32_t>::resolve(s, "hp"), "hp");
  auto x = must(FieldAccessor<float>::resolve(s, "x"), "x");
  auto y = must(FieldAccessor<float>::resolve(s, "y"), "y");
  auto z = must(FieldAccessor<float>::resolve(s, "z"), "z");
  auto owner = must(FieldAccessor<std::uint64_t>::resolve(s, "owner"), "owner");
  auto tag = must(FieldAccessor<std::uint32_t>::resolve(s, "tag"), "tag");
  auto speed = must(FieldAccessor<float>::resolve(s, "speed"), "speed");
  constexpr std::size_t kBlock = 65536;
  std::vector<std::byte> recs(kBlock * 32);
  std::vector<std::uint64_t> ids(kBlock);
  std::uint64_t seed = 42;
  for (std::uint64_t start = 0; start < n; start += kBlock) {
    const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(kBlock, n - start));
    for (std::size_t j = 0; j < m; ++j) {
      const std::uint64_t i = start + j;
      std::byte* r = recs.data() + j * 32;
      hp.set(r, static_cast<std::int32_t>(i % 1000));
      x.set(r, coord(seed, -5000, 5000));
      y.set(r, coord(seed, -5000, 5000));
      z.set(r, coord(seed, 0, 200));
      owner.set(r, i / 16 + 1);
      tag.set(r, static_cast<std::uint32_t>(splitmix(seed) % 8));
      speed.set(r, coord(seed, 0, 20));
      ids[j] = i + 1;
    }
    must(tv->load_append(recs.data(), ids.data(), m), "load_append");
  }
  return must(t.commit(), "commit");
}

// The bytes write_snapshot compresses, in its blocks (core/snapshot_file.h: kSnapshotBlockRaw
// bytes of ids and records per zstd frame; per block the ids as differences, then the records).
std::uint64_t dump_raw(const DbVersion& db, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) die("cannot create " + path);
  std::uint64_t total = 0;
  for (const auto& [name, t] : db.tables()) {
    const std::uint32_t rs = t->record_size();
    const std::size_t per_block =
        std::max<std::size_t>(1, kSnapshotBlockRaw / (rs + sizeof(std::uint64_t)));
    std::vector<std::uint64_t> ids;
    std::vector<std::byte> recs;
    std::uint64_t prev = 0;
    auto emit = [&] {
      if (ids.empty()) return;
      if (std::fwrite(ids.data(), sizeof(std::uint64_t), ids.size(), f) != ids.size() ||
          std::fwrite(recs.data(), 1, recs.size(), f) != recs.size())
        die("cannot write " + path);
      total += ids.size() * sizeof(std::uint64_t) + recs.size();
      ids.clear();
      recs.clear();
    };
    for (ChunkSpan c : t->chunks())
      for (std::uint32_t i = 0; i < c.count; ++i) {
        if (c.alive && !c.alive[i]) continue;
        ids.push_back(c.ids[i] - prev);
        prev = c.ids[i];
        const std::byte* r = c.records + std::size_t{i} * rs;
        recs.insert(recs.end(), r, r + rs);
        if (ids.size() == per_block) emit();
      }
    emit();
  }
  if (std::fclose(f) != 0) die("cannot write " + path);
  return total;
}

// ---- snapshot and recovery ----

struct Files {
  std::string raw, zst, snap;
  std::uint64_t raw_bytes = 0;
};

json snapshot_part(const Options& o, const DbVersion& db, Files& f) {
  const int reps = 3;
  f.raw_bytes = dump_raw(db, f.raw);
  const std::string zstd_c = "timeout 300 zstd -1 -q -c " + shell_quote(f.raw) + " > /dev/null";
  timed_shell("timeout 300 cat " + shell_quote(f.raw) + " > /dev/null");  // into the page cache
  timed_shell(zstd_c);                                                    // warm-up
  std::vector<double> snap_s, zstd_s;
  SnapshotWriteInfo info;
  for (int r = 0; r < reps; ++r) {
    zstd_s.push_back(timed_shell(zstd_c));
    info = must(write_snapshot(db, f.snap, 1), "write_snapshot");
    snap_s.push_back(info.seconds);
  }
  if (info.raw_bytes != f.raw_bytes)
    die("the dump holds " + std::to_string(f.raw_bytes) + " bytes but the snapshot compressed " +
        std::to_string(info.raw_bytes));
  const double ss = median(snap_s), zs = median(zstd_s);
  const double mbps = mb(info.raw_bytes) / ss, zmbps = mb(f.raw_bytes) / zs;
  (void)o;
  return {
      {"mb_per_s", mbps},
      {"zstd_cli_mb_per_s", zmbps},
      {"ratio", mbps / zmbps},
      {"bar", 0.5},
      {"met", mbps / zmbps >= 0.5},
      {"seconds", ss},
      {"seconds_all", snap_s},
      {"zstd_cli_seconds", zs},
      {"zstd_cli_seconds_all", zstd_s},
      {"records", info.records},
      {"raw_bytes", info.raw_bytes},
      {"file_bytes", info.bytes},
      {"compression_ratio", static_cast<double>(info.raw_bytes) / static_cast<double>(info.bytes)}};
}

json recovery_part(const Options& o, const Files& f) {
  const int reps = 3;
  timed_shell("timeout 300 zstd -1 -q -f " + shell_quote(f.raw) + " -o " + shell_quote(f.zst));
  const std::string zstd_d = "timeout 300 zstd -d -q -c " + shell_quote(f.zst) + " > /dev/null";
  timed_shell(zstd_d);  // warm-up
  std::vector<double> read_s, zstd_s;
  std::uint64_t records = 0;
  for (int r = 0; r < reps; ++r) {
    zstd_s.push_back(timed_shell(zstd_d));
    auto t0 = Clock::now();
    auto loaded = must(read_snapshot(f.snap), "read_snapshot");
    read_s.push_back(secs_since(t0));
    records = loaded.db->table("bench")->count();  // the copy is freed outside the timing
  }
  const double rs = median(read_s), zs = median(zstd_s);
  const double mbps = mb(f.raw_bytes) / rs, zmbps = mb(f.raw_bytes) / zs;
  (void)o;
  return {{"mb_per_s", mbps},
          {"zstd_d_mb_per_s", zmbps},
          {"ratio", mbps / zmbps},
          {"bar", 0.6},
          {"met", mbps / zmbps >= 0.6},
          {"seconds", rs},
          {"seconds_all", read_s},
          {"zstd_d_seconds", zs},
          {"zstd_d_seconds_all", zstd_s},
          {"records", records},
          {"zst_bytes", fs::file_size(f.zst)}};
}

// ---- the tick loop while snapshots are written ----

// What else ran on the machine during a phase: the CPU time of every other process (from
// /proc/stat, less this process's own and its waited-for children's), and the time the
// hypervisor took (steal), in cores. Tick lateness depends on it: see docs/benchmarks.md.
struct CpuSample {
  double busy_s = 0, steal_s = 0, self_s = 0;
  Clock::time_point at;
};
CpuSample cpu_sample() {
  CpuSample c;
  c.at = Clock::now();
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  if (std::FILE* f = std::fopen("/proc/stat", "r")) {
    unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                       steal = 0;
    if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
                    &iowait, &irq, &softirq, &steal) == 8) {
      c.busy_s = static_cast<double>(user + nice + sys + irq + softirq) / hz;
      c.steal_s = static_cast<double>(steal) / hz;
    }
    std::fclose(f);
  }
  for (int who :
       {RUSAGE_SELF, RUSAGE_CHILDREN}) {  // children: zstd, wrk, the servers, once waited for
    rusage ru{};
    ::getrusage(who, &ru);
    c.self_s += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  return c;
}
json cpu_use(const CpuSample& a, const CpuSample& b) {
  const double wall = std::chrono::duration<double>(b.at - a.at).count();
  if (wall <= 0) return json::object();
  const double self = (b.self_s - a.self_s) / wall;
  return {{"self_cores", self},
          {"other_cores", std::max(0.0, (b.busy_s - a.busy_s) / wall - self)},
          {"steal_cores", (b.steal_s - a.steal_s) / wall}};
}

// The lateness of ticks [from, to) (0-based tick numbers; TickStats keeps tick k in slot
// k % kWindow of its window).
std::vector<std::int64_t> tick_window(Runtime& rt, std::uint64_t from, std::uint64_t to) {
  auto all = rt.tick_lateness_samples();
  const std::uint64_t now = rt.tick_stats().ticks;
  if (now - from > TickStats::kWindow) die("a phase ran more ticks than the lateness window holds");
  std::vector<std::int64_t> out;
  for (std::uint64_t k = from; k < to; ++k) out.push_back(all.at(k % TickStats::kWindow));
  return out;
}

json tick_part(const Options& o, std::shared_ptr<const DbVersion> db) {
  const auto phase = std::chrono::milliseconds(o.quick ? 1500 : 8000);
  const int rounds = o.quick ? 2 : 3;
  RuntimeConfig rc;
  rc.tick_rate_hz = 60;
  auto rt = must(Runtime::start(rc, std::move(db)), "Runtime::start");
  PersistenceOptions po;
  po.data_dir = g_tmp + "/tick-data";
  po.durability = Durability::snapshot;
  po.snapshot_interval_s = 0;
  po.snapshot_keep = 1;
  auto p = must(Persistence::open(po), "Persistence::open");
  must(p->start(*rt), "Persistence::start");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the tick loop settles

  struct Chain {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::uint64_t snapshots = 0;
    double seconds = 0;
    std::string error;
  };
  std::vector<double> p99_with, p99_without, p50_with, p50_without;
  std::vector<std::int64_t> all_with, all_without;
  std::uint64_t snapshots = 0;
  double snapshot_seconds = 0;
  json phases = json::array();
  for (int r = 0; r < rounds; ++r) {
    // Without: the tick loop alone.
    std::uint64_t t0 = rt->tick_stats().ticks;
    auto c0 = cpu_sample();
    std::this_thread::sleep_for(phase);
    std::uint64_t t1 = rt->tick_stats().ticks;
    auto c1 = cpu_sample();
    auto wo = tick_window(*rt, t0, t1);
    all_without.insert(all_without.end(), wo.begin(), wo.end());
    auto pw = percentiles_us(wo.data(), wo.size());
    p99_without.push_back(pw.p99_us);
    p50_without.push_back(pw.p50_us);
    phases.push_back({{"snapshots", 0},
                      {"ticks", t1 - t0},
                      {"p50_us", pw.p50_us},
                      {"p99_us", pw.p99_us},
                      {"max_us", pw.max_us},
                      {"cpu", cpu_use(c0, c1)}});

    // With: snapshots back to back (each requested when the one before is durable) until the
    // phase's time is up; the phase ends when the last one is done.
    auto chain = std::make_shared<Chain>();
    const auto end = Clock::now() + phase;
    t0 = rt->tick_stats().ticks;
    c0 = cpu_sample();
    Persistence* pp = p.get();
    auto step = std::make_shared<std::function<void(Result<SnapshotWriteInfo>)>>();
    *step = [chain, end, pp, step_w = std::weak_ptr(step)](Result<SnapshotWriteInfo> res) {
      std::unique_lock lk(chain->mu);
      if (!res)
        chain->error = res.message();
      else {
        ++chain->snapshots;
        chain->seconds += res->seconds;
      }
      if (res && Clock::now() < end && chain->snapshots < 10'000) {
        lk.unlock();
        if (auto s = step_w.lock()) pp->snapshot_async(*s);
        return;
      }
      chain->done = true;
      chain->cv.notify_all();
    };
    pp->snapshot_async(*step);  // the first; each next one from its predecessor's answer
    {
      std::unique_lock lk(chain->mu);
      if (!chain->cv.wait_for(lk, phase + std::chrono::seconds(120), [&] { return chain->done; }))
        die("snapshots did not finish within 120 s after the phase");
      if (!chain->error.empty()) die("snapshot_async: " + chain->error);
    }
    t1 = rt->tick_stats().ticks;
    c1 = cpu_sample();
    auto wi = tick_window(*rt, t0, t1);
    all_with.insert(all_with.end(), wi.begin(), wi.end());
    auto pi = percentiles_us(wi.data(), wi.size());
    p99_with.push_back(pi.p99_us);
    p50_with.push_back(pi.p50_us);
    snapshots += chain->snapshots;
    snapshot_seconds += chain->seconds;
    phases.push_back({{"snapshots", chain->snapshots},
                      {"ticks", t1 - t0},
                      {"p50_us", pi.p50_us},
                      {"p99_us", pi.p99_us},
                      {"max_us", pi.max_us},
                      {"cpu", cpu_use(c0, c1)}});
  }
  auto ts = rt->tick_stats();
  rt->stop();
  p->stop();  // takes no snapshot: the version did not change since the last one
  p.reset();
  rt.reset();
  const double w = median(p99_with), wo = median(p99_without);
  std::vector<double> other;
  for (const auto& ph : phases)
    if (ph["cpu"].contains("other_cores")) other.push_back(ph["cpu"]["other_cores"].get<double>());
  auto pool_w = percentiles_us(all_with.data(), all_with.size());
  auto pool_wo = percentiles_us(all_without.data(), all_without.size());
  (void)o;
  return {{"p99_us", w},
          {"p99_us_without", wo},
          {"ratio", w / wo},
          {"bar", 1.2},
          {"met", w <= 1.2 * wo},
          {"p50_us", median(p50_with)},
          {"p50_us_without", median(p50_without)},
          {"pooled_p99_us", pool_w.p99_us},
          {"pooled_p99_us_without", pool_wo.p99_us},
          {"max_us", pool_w.max_us},
          {"max_us_without", pool_wo.max_us},
          {"ticks", all_with.size()},
          {"ticks_without", all_without.size()},
          {"snapshots", snapshots},
          {"snapshot_s_avg", snapshots ? snapshot_seconds / static_cast<double>(snapshots) : 0.0},
          {"overruns", ts.overruns},
          {"skipped", ts.skipped},
          {"phase_s", std::chrono::duration<double>(phase).count()},
          {"other_cores_median", median(other)},
          {"phases", phases}};
}

// ---- POST over HTTP to tickdb-server, durability sync against snapshot ----

using bench::http;
using bench::read_text;
using Server = bench::NodeProcess;

Server start_server(const Options& o, const std::string& durability, const std::string& name,
                    const std::vector<std::string>& more = {}) {
  const std::string dir = g_tmp + "/" + name;
  std::vector<std::string> sets = {"storage.durability=" + durability,
                                   "storage.data_dir=" + json(dir).dump(), "log.level=warn"};
  sets.insert(sets.end(), more.begin(), more.end());
  try {
    return bench::start_node(o.server, sets, dir + ".log");
  } catch (const std::exception& e) {
    die(e.what());
  }
}

int stop_server(Server& sv) {
  try {
    return bench::stop_node(sv);
  } catch (const std::exception& e) {
    die(e.what());
  }
}

// wrk with one of the run's Lua scripts (write_wrk_scripts), 64 connections for `secs`: the
// JSON line its done() prints {rps, p50_ms, p99_ms, requests, errors}.
json run_wrk(const std::string& script_name, int port, int secs) {
  const std::string script = g_tmp + "/" + script_name;
  const std::string cmd = "timeout " + std::to_string(secs + 30) + " wrk -t2 -c64 -d" +
                          std::to_string(secs) + "s --timeout 5s -s " + shell_quote(script) +
                          " http://127.0.0.1:" + std::to_string(port) + "/ 2>/dev/null";
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) die("cannot run wrk");
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0 && out.size() < (1u << 20))
    out.append(buf, n);
  int wrc = ::pclose(pipe);
  json w;
  for (std::size_t pos = 0; pos < out.size();) {
    auto nl = out.find('\n', pos);
    std::string line = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (!line.empty() && line[0] == '{') w = json::parse(line, nullptr, false);
    pos = nl == std::string::npos ? out.size() : nl + 1;
  }
  if (wrc != 0 || !w.is_object() || w.is_discarded())
    die("wrk failed (status " + std::to_string(wrc) + "): " + out);
  return w;
}

// The table the HTTP parts write: bench (hp i32, score i64, name str[16]).
void create_bench_table(int port) {
  auto created =
      http(port, "POST", "/table",
           R"({"name":"bench","fields":[{"name":"hp","type":"i32"},{"name":"score","type":"i64"},)"
           R"({"name":"name","type":"str","size":16}]})");
  if (created.status != 201)
    die("POST /table answered " + std::to_string(created.status) + ": " + created.body);
}

json post_round(const Options& o, const std::string& durability, int round, int secs) {
  Server sv = start_server(o, durability, durability + "-" + std::to_string(round));
  create_bench_table(sv.port);
  json w = run_wrk("post_one.lua", sv.port, secs);
  auto page = http(sv.port, "GET", "/table/bench/records?limit=1");
  json pj = json::parse(page.body, nullptr, false);
  if (page.status != 200 || !pj.is_object() || !pj.contains("total"))
    die("GET /table/bench/records answered " + std::to_string(page.status) + ": " +
        page.body.substr(0, 200));
  const std::uint64_t total = pj["total"].get<std::uint64_t>(),
                      requests = w["requests"].get<std::uint64_t>();
  if (total < requests)
    die(durability + ": wrk counted " + std::to_string(requests) + " answers but the table holds " +
        std::to_string(total) + " records");
  json storage;
  auto st = http(sv.port, "GET", "/stats");
  if (json sj = json::parse(st.body, nullptr, false);
      st.status == 200 && sj.is_object() && sj.contains("storage"))
    storage = sj["storage"]["log"];
  int exit_code = stop_server(sv);
  if (exit_code != 0)
    die("tickdb-server (" + durability + ") exited with " + std::to_string(exit_code) + ": " +
        read_text(sv.log));
  json r = {{"durability", durability}, {"rps", w["rps"]},      {"p50_ms", w["p50_ms"]},
            {"p99_ms", w["p99_ms"]},    {"requests", requests}, {"records", total},
            {"errors", w["errors"]}};
  if (storage.is_object())
    for (const char* k : {"fsyncs", "fsync_seconds", "group_avg", "group_max"})
      if (storage.contains(k)) r[k] = storage[k];
  return r;
}

// The wrk scripts of the HTTP parts: one POST of a record, one GET of record 1; each prints
// one JSON line at the end.
void write_wrk_scripts() {
  if (std::system("command -v wrk >/dev/null 2>&1") != 0)
    die("wrk is not installed (tools/install-deps installs it)");
  static const char* kDone = R"LUA(
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format('{"rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, "requests": %d, "errors": %d}\n',
    summary.requests / s, latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
)LUA";
  for (auto [name, body] :
       {std::pair<const char*, const char*>{"post_one.lua", R"LUA(wrk.method = "POST"
wrk.body = '{"hp":1,"score":2,"name":"x"}'
wrk.headers["Content-Type"] = "application/json"
request = function() return wrk.format("POST", "/table/bench/record") end
)LUA"},
        {"get_one.lua",
         R"LUA(request = function() return wrk.format("GET", "/table/bench/record/1") end
)LUA"}}) {
    std::FILE* f = std::fopen((g_tmp + "/" + name).c_str(), "w");
    if (!f) die("cannot write the wrk script");
    std::fputs(body, f);
    std::fputs(kDone, f);
    std::fclose(f);
  }
}

json sync_post_part(const Options& o) {
  if (!fs::exists(o.server))
    die("no tickdb-server at " + o.server + " (build the target tickdb-server, or pass --server)");
  write_wrk_scripts();
  const int secs = o.quick ? 2 : 10;
  const int rounds = o.quick ? 1 : 2;
  std::vector<double> sync_rps, snap_rps;
  json all = json::array();
  std::uint64_t errors = 0;
  for (int r = 0; r < rounds; ++r) {
    for (const char* d : {"sync", "snapshot"}) {
      say(o, "  wrk POST, durability %s ...\n", d);
      json x = post_round(o, d, r, secs);
      (std::string(d) == "sync" ? sync_rps : snap_rps).push_back(x["rps"].get<double>());
      errors += x["errors"].get<std::uint64_t>();
      all.push_back(std::move(x));
    }
  }
  const double s = median(sync_rps), n = median(snap_rps);
  return {{"rps", s},
          {"rps_snapshot_mode", n},
          {"ratio", s / n},
          {"bar", 0.5},
          {"met", s >= 0.5 * n},
          {"seconds", secs},
          {"errors", errors},
          {"runs", all}};
}

// ---- read visibility: what durable reads cost (storage.read_visibility) ----

// A Server-Sent Events stream of one table on a blocking socket to 127.0.0.1, kept as the
// raw bytes that came (a run lasts seconds: they stay small).
class SseStream {
 public:
  SseStream(int port, const std::string& table) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      die(std::string("SSE: cannot connect: ") + std::strerror(errno));
    const std::string req =
        "GET /table/" + table +
        "/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      die("SSE: cannot send the request");
  }
  ~SseStream() {
    if (fd_ >= 0) ::close(fd_);
  }
  SseStream(const SseStream&) = delete;
  SseStream& operator=(const SseStream&) = delete;
  std::size_t size() const { return buf_.size(); }
  // Reads until `text` shows up after offset `from` (with `whole_number`: followed by a
  // non-digit); false after `timeout_s`.
  bool wait_for(const std::string& text, std::size_t from, double timeout_s,
                bool whole_number = false) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      for (std::size_t at = buf_.find(text, from); at != std::string::npos;
           at = buf_.find(text, at + 1)) {
        const std::size_t end = at + text.size();
        if (!whole_number) return true;
        if (end < buf_.size() && !std::isdigit(static_cast<unsigned char>(buf_[end]))) return true;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      timeval tv{0, static_cast<suseconds_t>(std::min<long long>(left.count(), 500) * 1000)};
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char chunk[16384];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n == 0) die("SSE: the node closed the stream");
      if (n > 0) buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1,
                    static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

// One node with `visibility` (durability sync): wrk POSTs, wrk GETs of one record, then
// `samples` single inserts one after the other, each timed from the POST until an SSE
// subscriber of the table receives it (write to subscriber).
json visibility_round(const Options& o, const std::string& visibility, int round, int secs,
                      int samples) {
  Server sv = start_server(o, "sync", "vis-" + visibility + "-" + std::to_string(round),
                           {"storage.read_visibility=" + visibility});
  create_bench_table(sv.port);
  json post = run_wrk("post_one.lua", sv.port, secs);
  json get = run_wrk("get_one.lua", sv.port, secs);
  std::vector<double> to_sub_ms, answer_ms;
  {
    SseStream sse(sv.port, "bench");
    // The snapshot of what wrk wrote comes first: the timed inserts start after it.
    if (!sse.wait_for("event: ready", 0, 60)) die(visibility + ": no SSE ready in 60 s");
    const auto stop_at = Clock::now() + std::chrono::seconds(60);
    for (int i = 0; i < samples && Clock::now() < stop_at; ++i) {
      const std::size_t from = sse.size();
      const auto t0 = Clock::now();
      auto r = http(sv.port, "POST", "/table/bench/record", R"({"hp":7,"score":1,"name":"s"})");
      const double answered = secs_since(t0) * 1000;
      json rj = json::parse(r.body, nullptr, false);
      if (r.status != 201 || !rj.is_object() || !rj.contains("id"))
        die("POST /table/bench/record answered " + std::to_string(r.status) + ": " + r.body);
      if (!sse.wait_for("\"id\":" + rj["id"].dump(), from, 10, true))
        die(visibility + ": the subscriber did not get record " + rj["id"].dump() + " in 10 s");
      to_sub_ms.push_back(secs_since(t0) * 1000);
      answer_ms.push_back(answered);
    }
  }
  auto st = http(sv.port, "GET", "/stats");
  json sj = json::parse(st.body, nullptr, false);
  const std::string in_effect =
      sj.is_object() ? sj["storage"]["log"].value("read_visibility", std::string("?")) : "?";
  if (in_effect != visibility)
    die("the node says read_visibility " + in_effect + ", it was started with " + visibility);
  int exit_code = stop_server(sv);
  if (exit_code != 0)
    die("tickdb-server (" + visibility + ") exited with " + std::to_string(exit_code) + ": " +
        read_text(sv.log));
  return {{"read_visibility", visibility},
          {"post_rps", post["rps"]},
          {"post_p99_ms", post["p99_ms"]},
          {"get_rps", get["rps"]},
          {"get_p99_ms", get["p99_ms"]},
          {"errors", post["errors"].get<std::uint64_t>() + get["errors"].get<std::uint64_t>()},
          {"write_to_subscriber_p50_ms", percentile(to_sub_ms, 50)},
          {"write_to_subscriber_p99_ms", percentile(to_sub_ms, 99)},
          {"post_answer_p50_ms", percentile(answer_ms, 50)},
          {"samples", to_sub_ms.size()}};
}

json read_visibility_part(const Options& o) {
  if (!fs::exists(o.server))
    die("no tickdb-server at " + o.server + " (build the target tickdb-server, or pass --server)");
  write_wrk_scripts();
  const int secs = o.quick ? 2 : 8;
  const int rounds = o.quick ? 1 : 2;
  const int samples = o.quick ? 40 : 200;
  std::map<std::string, std::vector<json>> by;
  json all = json::array();
  std::uint64_t errors = 0;
  for (int r = 0; r < rounds; ++r)
    for (const char* v : {"durable", "immediate"}) {
      say(o, "  read_visibility %s: wrk POST, wrk GET, write to subscriber ...\n", v);
      json x = visibility_round(o, v, r, secs, samples);
      errors += x["errors"].get<std::uint64_t>();
      by[v].push_back(x);
      all.push_back(std::move(x));
    }
  auto med = [&](const char* v, const char* k) {
    std::vector<double> xs;
    for (const auto& x : by[v]) xs.push_back(x[k].get<double>());
    return median(xs);
  };
  json out = {{"seconds", secs}, {"errors", errors}, {"runs", all}};
  for (const char* v : {"durable", "immediate"})
    out[v] = {{"post_rps", med(v, "post_rps")},
              {"get_rps", med(v, "get_rps")},
              {"write_to_subscriber_p50_ms", med(v, "write_to_subscriber_p50_ms")},
              {"write_to_subscriber_p99_ms", med(v, "write_to_subscriber_p99_ms")}};
  out["post_ratio"] = med("durable", "post_rps") / med("immediate", "post_rps");
  out["get_ratio"] = med("durable", "get_rps") / med("immediate", "get_rps");
  out["subscriber_p50_extra_ms"] =
      med("durable", "write_to_subscriber_p50_ms") - med("immediate", "write_to_subscriber_p50_ms");
  out["subscriber_p99_extra_ms"] =
      med("durable", "write_to_subscriber_p99_ms") - med("immediate", "write_to_subscriber_p99_ms");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json")
      o.json_out = true;
    else if (a == "--quick")
      o.quick = true;
    else if (a == "--server" && i + 1 < argc)
      o.server = argv[++i];
    else if (a == "--only" && i + 1 < argc)
      o.only = argv[++i];
    else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: tickdb-bench-durability [--json] [--quick] [--only PART] [--server "
          "PATH-to-tickdb-server]\n"
          "  parts: snapshot, recovery (runs snapshot too), tick_during_snapshot, sync_post, "
          "read_visibility\n");
      return 0;
    } else {
      die("unknown argument '" + a + "' (see --help)");
    }
  }
  if (o.quick) o.records = 1'000'000;
  if (std::system("command -v zstd >/dev/null 2>&1") != 0)
    die("the zstd CLI is not installed (tools/install-deps installs it)");
  std::string base = std::getenv("TICKDB_BENCH_DIR") ? std::getenv("TICKDB_BENCH_DIR") : "/tmp";
  std::string tmpl_s = base + "/tickdb-bench-durability-XXXXXX";
  std::vector<char> tmpl(tmpl_s.begin(), tmpl_s.end());
  tmpl.push_back(0);
  if (!::mkdtemp(tmpl.data())) die(std::string("mkdtemp: ") + std::strerror(errno));
  g_tmp = tmpl.data();
  // Ctrl-C: only what is async-signal-safe: kill the servers, remove the large files (the
  // rest of the directory stays).
  for (int i = 0; i < 3; ++i)
    std::snprintf(g_big[i], sizeof g_big[i], "%s/%s", g_tmp.c_str(),
                  i == 0   ? "raw.bin"
                  : i == 1 ? "raw.bin.zst"
                           : "bench.tdbs");
  ::signal(SIGINT, [](int) {
    bench::kill_started_nodes_from_signal();
    for (auto& f : g_big) ::unlink(f);
    std::_Exit(130);
  });
  auto want = [&](const char* part) { return o.only.empty() || o.only == part; };

  json out = {{"records", o.records}, {"record_bytes", 32}};
  out["snapshot"] = out["recovery"] = out["tick_during_snapshot"] = out["sync_post"] =
      out["read_visibility"] = nullptr;
  const auto t_all = Clock::now();
  const auto cpu_all = cpu_sample();
  if (want("snapshot") || want("recovery") || want("tick_during_snapshot")) {
    say(o, "building %s records ...\n", std::to_string(o.records));
    auto t0 = Clock::now();
    auto db = build_db(o.records);
    out["build_s"] = secs_since(t0);
    Files f{g_tmp + "/raw.bin", g_tmp + "/raw.bin.zst", g_tmp + "/bench.tdbs", 0};
    if (want("snapshot") || want("recovery")) {
      say(o, "snapshot against zstd -1 ...\n");
      out["snapshot"] = snapshot_part(o, *db, f);
    }
    if (want("recovery")) {
      say(o, "recovery against zstd -d ...\n");
      out["recovery"] = recovery_part(o, f);
    }
    std::error_code ec;
    for (const auto& p : {f.raw, f.zst, f.snap}) fs::remove(p, ec);
    if (want("tick_during_snapshot")) {
      say(o, "tick at 60 Hz with and without snapshots ...\n");
      out["tick_during_snapshot"] = tick_part(o, std::move(db));
    }
  }
  if (want("sync_post")) {
    say(o, "POST with durability sync against snapshot ...\n");
    out["sync_post"] = sync_post_part(o);
  }
  if (want("read_visibility")) {
    say(o, "read visibility durable against immediate ...\n");
    out["read_visibility"] = read_visibility_part(o);
  }
  out["total_s"] = secs_since(t_all);
  out["cpu"] = cpu_use(cpu_all, cpu_sample());  // other_cores: what else ran on the machine
  cleanup();

  if (o.json_out) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  auto met = [](const json& j) { return j["met"].get<bool>() ? "met" : "MISSED"; };
  std::printf("\n%-22s %-34s %-34s %-8s %-10s %s\n", "figure", "tickdb", "yardstick", "ratio",
              "bar", "");
  if (const json& s = out["snapshot"]; !s.is_null())
    std::printf(
        "%-22s %-34s %-34s %-8.2f %-10s %s\n", "snapshot",
        (std::to_string(static_cast<int>(s["mb_per_s"].get<double>())) + " MB/s (" +
         std::to_string(s["seconds"].get<double>()).substr(0, 5) + " s)")
            .c_str(),
        (std::to_string(static_cast<int>(s["zstd_cli_mb_per_s"].get<double>())) + " MB/s zstd -1")
            .c_str(),
        s["ratio"].get<double>(), ">= 0.5x", met(s));
  if (const json& s = out["recovery"]; !s.is_null())
    std::printf(
        "%-22s %-34s %-34s %-8.2f %-10s %s\n", "recovery",
        (std::to_string(static_cast<int>(s["mb_per_s"].get<double>())) + " MB/s (" +
         std::to_string(s["seconds"].get<double>()).substr(0, 5) + " s)")
            .c_str(),
        (std::to_string(static_cast<int>(s["zstd_d_mb_per_s"].get<double>())) + " MB/s zstd -d")
            .c_str(),
        s["ratio"].get<double>(), ">= 0.6x", met(s));
  if (const json& s = out["tick_during_snapshot"]; !s.is_null())
    std::printf("%-22s %-34s %-34s %-8.2f %-10s %s\n", "tick p99 (snapshots)",
                ("p99 " + std::to_string(static_cast<int>(s["p99_us"].get<double>())) + " us (" +
                 std::to_string(s["snapshots"].get<std::uint64_t>()) + " snapshots)")
                    .c_str(),
                ("p99 " + std::to_string(static_cast<int>(s["p99_us_without"].get<double>())) +
                 " us without")
                    .c_str(),
                s["ratio"].get<double>(), "<= 1.2x", met(s));
  if (const json& s = out["tick_during_snapshot"]; !s.is_null())
    std::printf("%-22s other processes used %.2f cores (median over the phases)\n", "",
                s["other_cores_median"].get<double>());
  if (const json& s = out["sync_post"]; !s.is_null())
    std::printf("%-22s %-34s %-34s %-8.2f %-10s %s\n", "POST, sync",
                (std::to_string(static_cast<int>(s["rps"].get<double>())) + " req/s").c_str(),
                (std::to_string(static_cast<int>(s["rps_snapshot_mode"].get<double>())) +
                 " req/s durability snapshot")
                    .c_str(),
                s["ratio"].get<double>(), ">= 0.5x", met(s));
  if (const json& s = out["read_visibility"]; !s.is_null()) {
    const json &d = s["durable"], &i = s["immediate"];
    std::printf("%-22s %-34s %-34s %-8.2f\n", "POST, durable reads",
                (std::to_string(static_cast<int>(d["post_rps"].get<double>())) + " req/s").c_str(),
                (std::to_string(static_cast<int>(i["post_rps"].get<double>())) + " req/s immediate")
                    .c_str(),
                s["post_ratio"].get<double>());
    std::printf(
        "%-22s %-34s %-34s %-8.2f\n", "GET, durable reads",
        (std::to_string(static_cast<int>(d["get_rps"].get<double>())) + " req/s").c_str(),
        (std::to_string(static_cast<int>(i["get_rps"].get<double>())) + " req/s immediate").c_str(),
        s["get_ratio"].get<double>());
    std::printf("%-22s p50 %.2f / p99 %.2f ms %-14s p50 %.2f / p99 %.2f ms immediate\n",
                "write to subscriber", d["write_to_subscriber_p50_ms"].get<double>(),
                d["write_to_subscriber_p99_ms"].get<double>(), "",
                i["write_to_subscriber_p50_ms"].get<double>(),
                i["write_to_subscriber_p99_ms"].get<double>());
  }
  std::printf(
      "\n%llu records of 32 bytes; %.0f s in all; other processes used %.2f cores on average, "
      "steal %.2f\n",
      static_cast<unsigned long long>(o.records), out["total_s"].get<double>(),
      out["cpu"].value("other_cores", 0.0), out["cpu"].value("steal_cores", 0.0));
  return 0;
}
