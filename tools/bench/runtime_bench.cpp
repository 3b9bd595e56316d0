// tickdb-bench-runtime: the actor runtime's workloads, one run, printed as a table or as one
// JSON object (--json):
//   tick_jitter    the tick loop at 120 Hz with an empty tick: lateness of each tick start
//                  against its deadline; in the same run, alternating with it, a bare
//                  sleep_until loop on absolute deadlines as the baseline
//   step_1m        examples/game `step` over 1,000,000 entities with all workers, beside a
//                  raw one-thread scan of the same bytes (like tickdb-bench-core's BM_ScanRaw)
//   actor_insert   single-record db.insert calls to one table actor from 4 threads, each
//                  waiting for its answer; versions published counts the group commits
//   txn_two_tables db.transaction calls inserting into two tables, from 4 threads
// Every loop is bounded in count and in time.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <latch>
#include <thread>

#include "actors/runtime.h"

using namespace tickdb;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  bool json_out = false;
  bool quick = false;  // a smoke run: short phases, 100k entities
  std::string only;    // run one workload (for profiling); the others print as null
  std::string module = TICKDB_GAME_MODULE;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tickdb-bench-runtime: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<Runtime> start(RuntimeConfig cfg) {
  auto r = Runtime::start(std::move(cfg));
  if (!r) die(r.message());
  return std::move(r).value();
}

json must(Result<json> r, const char* what) {
  if (!r.is_ok())
    die(std::string(what) + ": " + std::string(errc_name(r.error().code)) + ": " +
        r.error().message);
  return std::move(r.value());
}

json pct_json(std::vector<std::int64_t> ns) {
  auto p = percentiles_us(ns.data(), ns.size());
  return {{"p50_us", p.p50_us}, {"p99_us", p.p99_us}, {"max_us", p.max_us}, {"n", ns.size()}};
}

// ---- tick_jitter ----

std::vector<std::int64_t> baseline_phase(double hz, std::chrono::milliseconds d) {
  std::vector<std::int64_t> late;
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / hz));
  auto deadline = Clock::now() + period;
  const auto end = Clock::now() + d;
  while (deadline < end) {
    std::this_thread::sleep_until(deadline);
    late.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - deadline).count());
    deadline += period;
  }
  return late;
}

std::vector<std::int64_t> scheduler_phase(double hz, std::chrono::milliseconds d) {
  RuntimeConfig cfg;
  cfg.tick_rate_hz = hz;
  auto rt = start(cfg);
  std::this_thread::sleep_for(d);
  auto s = rt->tick_lateness_samples();
  rt->stop();
  return s;
}

json tick_jitter(const Options& o) {
  const auto phase =
      std::chrono::milliseconds(o.quick ? 1000 : 5000);  // 2 phases each: 10 s at 120 Hz
  std::vector<std::int64_t> sched, base;
  for (int round = 0; round < 2; ++round) {
    auto b = baseline_phase(120, phase);
    base.insert(base.end(), b.begin(), b.end());
    auto s = scheduler_phase(120, phase);
    sched.insert(sched.end(), s.begin(), s.end());
  }
  json js = pct_json(sched), jb = pct_json(base);
  return {{"p50_us", js["p50_us"]},          {"p99_us", js["p99_us"]},
          {"max_us", js["max_us"]},          {"ticks", js["n"]},
          {"baseline_p50_us", jb["p50_us"]}, {"baseline_p99_us", jb["p99_us"]},
          {"baseline_max_us", jb["max_us"]}, {"baseline_ticks", jb["n"]}};
}

// ---- step_1m ----

double raw_scan_gbps(std::size_t records, std::size_t record_size) {
  std::size_t bytes = records * record_size;
  auto buf = std::unique_ptr<std::byte[]>(new (std::align_val_t(64)) std::byte[bytes]);
  std::memset(buf.get(), 1, bytes);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = Clock::now();
    std::uint64_t sum = 0;
    const std::byte* p = buf.get();
    for (std::size_t i = 0; i < records; ++i, p += record_size) sum += load<std::uint32_t>(p);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    asm volatile("" : : "r"(sum));
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  ::operator delete[](buf.release(), std::align_val_t(64));
  return best;
}

json step_1m(const Options& o) {
  const std::uint64_t n = o.quick ? 100'000 : 1'000'000;
  RuntimeConfig cfg;
  cfg.start_ticks = false;  // time `step` alone
  cfg.modules = {o.module};
  auto rt = start(cfg);
  must(rt->call("setup", json::object()), "setup");
  std::uint64_t owner =
      must(rt->call("db.insert", {{"table", "players"}, {"values", {{"name", "bench"}}}}),
           "player")["id"];
  must(rt->call("spawn", {{"owner", owner}, {"n", n}}), "spawn");
  const json params = {{"dt", 1.0 / 120}};
  for (int i = 0; i < 5; ++i) must(rt->call("step", params), "step");  // warm the chunk pool
  std::vector<double> ms;
  const auto end = Clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < 40 && Clock::now() < end; ++i) {
    auto t0 = Clock::now();
    must(rt->call("step", params), "step");
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  double med = ms[ms.size() / 2];
  const std::size_t rs = rt->current()->table("entities")->record_size();
  double bytes = static_cast<double>(n * rs);
  return {{"ms", med},
          {"ms_min", ms.front()},
          {"ms_max", ms.back()},
          {"entities", n},
          {"workers", rt->workers().workers()},
          {"gb_per_s", bytes / (med / 1e3) / 1e9},
          {"scan_raw_gb_per_s", raw_scan_gbps(n, rs)}};
}

// ---- actor_insert / txn_two_tables ----

// Runs `op(thread, i)` on 4 threads until `count` calls per thread or `limit`; calls per second.
template <class Op>
std::pair<double, std::uint64_t> hammer(std::uint64_t count, std::chrono::milliseconds limit,
                                        Op op) {
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> failed{false};
  auto t0 = Clock::now();
  auto end = t0 + limit;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::uint64_t i = 0;
      for (; i < count && (i % 256 || Clock::now() < end); ++i)
        if (!op(t, i)) {
          failed = true;
          break;
        }
      done += i;
    });
  for (auto& t : ts) t.join();
  if (failed) die("a call failed");
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return {static_cast<double>(done) / s, done.load()};
}

// The same with 4 asynchronous senders, as the HTTP layer sends: each sender has one call in
// flight and sends its next call from the answer's callback (on the answering actor's
// thread), so no OS thread blocks per call.
template <class Params>
std::pair<double, std::uint64_t> hammer_async(Runtime& rt, const std::string& method,
                                              std::uint64_t count, std::chrono::milliseconds limit,
                                              Params params) {
  struct Sender {
    Runtime* rt;
    const std::string* method;
    Params* params;
    int id;
    std::uint64_t count, i = 0;
    Clock::time_point end;
    std::atomic<bool>* failed;
    std::latch* done;
    void next() {
      if (i >= count || (i % 256 == 0 && Clock::now() >= end)) {
        done->count_down();
        return;
      }
      rt->call_async(*method, (*params)(id, i), [this](Result<json> r) {
        if (!r.is_ok()) {
          *failed = true;
          done->count_down();
          return;
        }
        ++i;
        next();
      });
    }
  };
  std::atomic<bool> failed{false};
  std::latch done(4);
  auto t0 = Clock::now();
  std::vector<Sender> senders;
  for (int s = 0; s < 4; ++s)
    senders.push_back(Sender{&rt, &method, &params, s, count, 0, t0 + limit, &failed, &done});
  for (auto& s : senders) s.next();
  done.wait();
  if (failed) die("a call failed");
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::uint64_t n = 0;
  for (auto& s : senders) n += s.i;
  return {static_cast<double>(n) / secs, n};
}

json actor_insert(const Options& o) {
  RuntimeConfig cfg;
  cfg.start_ticks = false;
  auto rt = start(cfg);
  must(rt->call("db.create_table",
                {{"name", "t"},
                 {"fields", {{{"name", "v"}, {"type", "i64"}}, {{"name", "w"}, {"type", "u32"}}}}}),
       "create");
  auto params = [](int t, std::uint64_t i) {
    return json{{"table", "t"}, {"values", {{"v", static_cast<std::int64_t>(i)}, {"w", t}}}};
  };
  auto ins = [&](int t, std::uint64_t i) { return rt->call("db.insert", params(t, i)).is_ok(); };
  const std::uint64_t count = o.quick ? 20'000 : 4'000'000;
  const auto limit = std::chrono::milliseconds(o.quick ? 1000 : 5000);
  hammer_async(*rt, "db.insert", 2000, std::chrono::milliseconds(2000), params);  // warm-up
  auto v0 = rt->commit_stats().versions;
  auto [per_s, n] = hammer_async(*rt, "db.insert", count, limit, params);
  auto versions = rt->commit_stats().versions - v0;
  auto [blocking_per_s, bn] = hammer(count, limit, ins);
  (void)bn;
  return {{"per_s", per_s},
          {"inserts", n},
          {"versions", versions},
          {"inserts_per_version", static_cast<double>(n) / static_cast<double>(versions)},
          {"blocking_threads_per_s", blocking_per_s}};
}

json txn_two_tables(const Options& o) {
  RuntimeConfig cfg;
  cfg.start_ticks = false;
  auto rt = start(cfg);
  for (const char* t : {"a", "b"})
    must(rt->call("db.create_table", {{"name", t}, {"fields", {{{"name", "v"}, {"type", "i64"}}}}}),
         "create");
  auto params = [](int, std::uint64_t i) {
    json ops = {{{"method", "db.insert"}, {"params", {{"table", "a"}, {"values", {{"v", i}}}}}},
                {{"method", "db.insert"}, {"params", {{"table", "b"}, {"values", {{"v", i}}}}}}};
    return json{{"ops", std::move(ops)}};
  };
  auto txn = [&](int t, std::uint64_t i) {
    return rt->call("db.transaction", params(t, i)).is_ok();
  };
  const std::uint64_t count = o.quick ? 20'000 : 4'000'000;
  const auto limit = std::chrono::milliseconds(o.quick ? 1000 : 5000);
  hammer_async(*rt, "db.transaction", 2000, std::chrono::milliseconds(2000), params);
  auto v0 = rt->commit_stats().versions;
  auto [per_s, n] = hammer_async(*rt, "db.transaction", count, limit, params);
  auto versions = rt->commit_stats().versions - v0;
  auto [blocking_per_s, bn] = hammer(count, limit, txn);
  (void)bn;
  if (rt->current()->table("a")->count() != rt->current()->table("b")->count())
    die("a and b differ");
  return {{"per_s", per_s},
          {"transactions", n},
          {"versions", versions},
          {"blocking_threads_per_s", blocking_per_s}};
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
    else if (a == "--module" && i + 1 < argc)
      o.module = argv[++i];
    else if (a == "--only" && i + 1 < argc)
      o.only = argv[++i];
    else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: tickdb-bench-runtime [--json] [--quick] [--only WORKLOAD] [--module "
          "PATH-to-libtickdb_game.so]\n");
      return 0;
    } else {
      die("unknown argument '" + a + "' (see --help)");
    }
  }
  json out;
  auto run = [&](const char* name, json (*fn)(const Options&)) {
    out[name] = o.only.empty() || o.only == name ? fn(o) : json(nullptr);
  };
  run("tick_jitter", tick_jitter);
  run("step_1m", step_1m);
  run("actor_insert", actor_insert);
  run("txn_two_tables", txn_two_tables);
  if (o.json_out || !o.only.empty()) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  const json& tj = out["tick_jitter"];
  const json& st = out["step_1m"];
  const json& ai = out["actor_insert"];
  const json& tx = out["txn_two_tables"];
  std::printf("%-16s %s\n", "workload", "result");
  std::printf(
      "%-16s lateness p50 %.0f us  p99 %.0f us  max %.0f us  | baseline p50 %.0f us  p99 %.0f us  "
      "max %.0f us\n",
      "tick_jitter", tj["p50_us"].get<double>(), tj["p99_us"].get<double>(),
      tj["max_us"].get<double>(), tj["baseline_p50_us"].get<double>(),
      tj["baseline_p99_us"].get<double>(), tj["baseline_max_us"].get<double>());
  std::printf(
      "%-16s %.2f ms per step of %llu entities (%.2f GB/s; raw one-thread scan %.2f GB/s)\n",
      "step_1m", st["ms"].get<double>(),
      static_cast<unsigned long long>(st["entities"].get<std::uint64_t>()),
      st["gb_per_s"].get<double>(), st["scan_raw_gb_per_s"].get<double>());
  std::printf("%-16s %.0f inserts/s (%llu inserts, %llu versions); 4 blocking threads: %.0f/s\n",
              "actor_insert", ai["per_s"].get<double>(),
              static_cast<unsigned long long>(ai["inserts"].get<std::uint64_t>()),
              static_cast<unsigned long long>(ai["versions"].get<std::uint64_t>()),
              ai["blocking_threads_per_s"].get<double>());
  std::printf("%-16s %.0f transactions/s; 4 blocking threads: %.0f/s\n", "txn_two_tables",
              tx["per_s"].get<double>(), tx["blocking_threads_per_s"].get<double>());
  return 0;
}
