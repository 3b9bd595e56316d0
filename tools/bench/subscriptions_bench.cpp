// tickdb-bench-subscriptions: the live-subscription figures of issue 13, one run, printed as
// a table or as one JSON object (--json). Every figure is compared with its yardstick
// measured in the same run:
//   commit_to_wire   a tickdb-server ticking at --rate Hz whose tick procedure (`churn`, from
//                    libtickdb_bench_churn.so) changes --fraction of the --records records of
//                    table `bench` per tick; --subscribers WebSocket connections subscribed to
//                    the whole table, read by one epoll thread (ws_fanin.h) at --client-nice
//                    (0: it competes with the node for the two cores as an equal; a higher
//                    value makes it a slow reader: conflations and resets). From the node's
//                    own histogram tickdb_subscription_commit_to_wire_seconds (publish of a
//                    version to its delta frame written to the socket), over the measured
//                    window: p99 (within its bucket, interpolated) and the share within one
//                    tick period
//   tick_p99_ratio   /stats?tick_window=N tick duration p99 over the measured window with the
//                    subscribers, against the same over a window before they connected
//   rss_stall        node RSS (max over the window) while one subscriber does not read for
//                    --stall-s seconds, against the max over the window with all reading
//   diff_all, diff_one_percent
//                    tickdb-bench-core's BM_DiffAll, BM_DiffOnePercent and BM_ScanRaw, run
//                    as a child in the same run (--no-core leaves them out)
// --quick: 50 subscribers of 10,000 records, short phases (CTest: bench-subscriptions-smoke).
// --set KEY=VALUE (repeatable): a config key for the node, after the bench's own (say
//   --set storage.durability='"snapshot"' to take the commit log out of the tick).
// Every wait is bounded; everything listens on 127.0.0.1; the node's data directory lives
// under /tmp and is removed at the end (also when the bench fails).
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_node.h"
#include "ws_fanin.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using namespace tickdb::bench;

struct Options {
  bool json_out = false, quick = false, core = true;
  std::string server = TICKDB_SERVER;
  std::string module = TICKDB_CHURN_MODULE;
  std::string core_bench = TICKDB_CORE_BENCH;
  std::size_t subscribers = 1000;
  std::uint64_t records = 100'000;
  double rate = 60, fraction = 0.01, seconds = 10, stall_s = 60;
  double client_nice = 0;
  std::vector<std::string> node_sets;  // --set KEY=VALUE, passed to the node
};

std::string g_tmp;

void cleanup() {
  kill_started_nodes();
  if (!g_tmp.empty()) {
    std::error_code ec;
    fs::remove_all(g_tmp, ec);
    g_tmp.clear();
  }
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tickdb-bench-subscriptions: %s\n", what.c_str());
  if (!g_tmp.empty()) {
    const std::string log = read_text(g_tmp + "/node.log");
    if (!log.empty())
      std::fprintf(stderr, "the node's log (its start):\n%s\n", log.substr(0, 4000).c_str());
  }
  cleanup();
  std::exit(1);
}

void say(const Options& o, const std::string& s) {
  if (!o.json_out) std::fprintf(stderr, "%s\n", s.c_str());
}

json get_json(int port, const std::string& target) {
  auto r = http(port, "GET", target);
  if (r.status != 200)
    die("GET " + target + " answered " + std::to_string(r.status) + ": " + r.body);
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) die("GET " + target + ": not JSON");
  return j;
}

// One histogram of /metrics: its cumulative bucket counts by upper bound.
struct Buckets {
  std::vector<std::pair<double, double>> le;  // (bound, cumulative count); +Inf last
};
Buckets scrape_histogram(int port, const std::string& name) {
  auto r = http(port, "GET", "/metrics");
  if (r.status != 200) die("GET /metrics answered " + std::to_string(r.status));
  Buckets b;
  const std::string key = name + "_bucket{le=\"";
  for (std::size_t at = r.body.find(key); at != std::string::npos; at = r.body.find(key, at + 1)) {
    const char* p = r.body.c_str() + at + key.size();
    double bound = std::strncmp(p, "+Inf", 4) == 0 ? INFINITY : std::strtod(p, nullptr);
    const char* sp = std::strchr(p, ' ');
    if (!sp) break;
    b.le.emplace_back(bound, std::strtod(sp + 1, nullptr));
  }
  if (b.le.empty()) die("/metrics has no histogram " + name);
  return b;
}
// The counts of `after` minus `before` (the observations in between).
Buckets minus(const Buckets& after, const Buckets& before) {
  Buckets d = after;
  for (std::size_t i = 0; i < d.le.size() && i < before.le.size(); ++i)
    d.le[i].second -= before.le[i].second;
  return d;
}
double total(const Buckets& b) {
  return b.le.empty() ? 0 : b.le.back().second;
}
// The q-quantile, interpolated linearly within its bucket (seconds).
double quantile(const Buckets& b, double q) {
  const double n = total(b);
  if (n <= 0) return 0;
  const double want = q * n;
  double lo_bound = 0, lo_count = 0;
  for (const auto& [bound, cum] : b.le) {
    if (cum >= want) {
      if (std::isinf(bound)) return lo_bound;
      const double in = cum - lo_count;
      return in <= 0 ? bound : lo_bound + (bound - lo_bound) * (want - lo_count) / in;
    }
    lo_bound = bound;
    lo_count = cum;
  }
  return lo_bound;
}
double share_within(const Buckets& b, double bound) {
  const double n = total(b);
  for (const auto& [le, cum] : b.le)
    if (le >= bound - 1e-9) return n > 0 ? cum / n : 0;
  return 1;
}

double tick_p99_us(int port, std::size_t window) {
  auto s = get_json(port, "/stats?tick_window=" + std::to_string(window));
  return s["tick"]["duration"]["p99_us"].get<double>();
}

// Waits (bounded) while `fn` samples; returns the max RSS of the node seen.
template <class Fn>
std::uint64_t watch(pid_t pid, double seconds, Fn fn) {
  std::uint64_t max_rss = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    max_rss = std::max(max_rss, rss_bytes(pid));
    fn();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::max(max_rss, rss_bytes(pid));
}

void fill_table(const Options& o, int port) {
  auto r = http(port, "POST", "/table",
                R"({"name":"bench","fields":[{"name":"hp","type":"i32"},{"name":"x","type":"f32"},)"
                R"({"name":"y","type":"f32"}]})");
  if (r.status != 201) die("POST /table answered " + std::to_string(r.status) + ": " + r.body);
  const std::uint64_t batch = 10'000;
  for (std::uint64_t done = 0; done < o.records;) {
    const std::uint64_t n = std::min(batch, o.records - done);
    std::string body = "{\"records\":[";
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t k = done + i;
      if (i) body += ',';
      body += "{\"hp\":" + std::to_string(k % 1000) + ",\"x\":" + std::to_string((k * 7) % 1000) +
              ".5,\"y\":" + std::to_string((k * 13) % 1000) + ".25}";
    }
    body += "]}";
    auto w = http(port, "POST", "/table/bench/records", body);
    if (w.status != 201) die("bulk insert answered " + std::to_string(w.status) + ": " + w.body);
    done += n;
  }
}

json core_figures(const Options& o) {
  const std::string out = g_tmp + "/core.json";
  const std::string cmd = "timeout 300 " + o.core_bench +
                          " --benchmark_filter='^BM_ScanRaw/|^BM_DiffAll/|^BM_DiffOnePercent/'"
                          " --benchmark_format=json --benchmark_out_format=json --benchmark_out=" +
                          out + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) die("'" + cmd + "' failed");
  auto j = json::parse(read_text(out), nullptr, false);
  if (j.is_discarded() || !j.contains("benchmarks")) die("no JSON from " + o.core_bench);
  double scan_bps = 0, all_bps = 0, all_ms = 0, one_ms = 0;
  for (const auto& b : j["benchmarks"]) {
    const std::string name = b["name"];
    const double ms = b["real_time"].get<double>();
    if (name.rfind("BM_ScanRaw/", 0) == 0) scan_bps = b["bytes_per_second"].get<double>();
    if (name.rfind("BM_DiffAll/", 0) == 0) {
      all_bps = b["bytes_per_second"].get<double>();
      all_ms = ms;
    }
    if (name.rfind("BM_DiffOnePercent/", 0) == 0) one_ms = ms;
  }
  if (scan_bps <= 0 || all_bps <= 0 || one_ms <= 0) die("tickdb-bench-core gave no diff figures");
  return {{"scan_raw_gb_per_s", scan_bps / 1e9},
          {"diff_all_gb_per_s", all_bps / 1e9},
          {"diff_all_ms", all_ms},
          {"diff_one_percent_ms", one_ms},
          {"diff_all_vs_scan", all_bps / scan_bps},
          {"one_percent_vs_all", one_ms / all_ms}};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto num = [&](double& into) {
      if (i + 1 >= argc) die(a + " needs a value");
      char* end = nullptr;
      into = std::strtod(argv[++i], &end);
      if (!end || *end || into < 0) die(a + ": not a non-negative number");
    };
    double v = 0;
    if (a == "--json")
      o.json_out = true;
    else if (a == "--quick")
      o.quick = true;
    else if (a == "--no-core")
      o.core = false;
    else if (a == "--server" && i + 1 < argc)
      o.server = argv[++i];
    else if (a == "--module" && i + 1 < argc)
      o.module = argv[++i];
    else if (a == "--subscribers")
      num(v), o.subscribers = static_cast<std::size_t>(v);
    else if (a == "--records")
      num(v), o.records = static_cast<std::uint64_t>(v);
    else if (a == "--rate")
      num(o.rate);
    else if (a == "--fraction")
      num(o.fraction);
    else if (a == "--seconds")
      num(o.seconds);
    else if (a == "--stall-s")
      num(o.stall_s);
    else if (a == "--client-nice")
      num(o.client_nice);
    else if (a == "--set" && i + 1 < argc)
      o.node_sets.push_back(argv[++i]);
    else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: tickdb-bench-subscriptions [--json] [--quick] [--no-core] [--server PATH]\n"
          "         [--module PATH] [--subscribers N] [--records N] [--rate HZ] [--fraction F]\n"
          "         [--seconds S] [--stall-s S] [--client-nice N (0)] [--set KEY=VALUE]...\n");
      return 0;
    } else {
      die("unknown argument '" + a + "' (see --help)");
    }
  }
  if (o.quick) {
    o.subscribers = 50;
    o.records = 10'000;
    o.seconds = 2;
    o.stall_s = 3;
    o.core = false;
  }
  if (o.subscribers < 2 || o.records < 100 || o.rate < 1 || o.seconds < 1)
    die("--subscribers >= 2, --records >= 100, --rate >= 1, --seconds >= 1");
  // Each subscriber is a socket here and one on the node (which inherits this limit).
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  if (nofile.rlim_cur < 2 * o.subscribers + 64)
    die("RLIMIT_NOFILE " + std::to_string(nofile.rlim_cur) + " is too low for " +
        std::to_string(o.subscribers) + " subscribers");

  std::string tmpl_s = "/tmp/tickdb-bench-subscriptions-XXXXXX";
  std::vector<char> tmpl(tmpl_s.begin(), tmpl_s.end());
  tmpl.push_back(0);
  if (!::mkdtemp(tmpl.data())) die(std::string("mkdtemp: ") + std::strerror(errno));
  g_tmp = tmpl.data();
  ::signal(SIGINT, [](int) {
    kill_started_nodes_from_signal();
    std::_Exit(130);
  });

  json out = {{"subscribers", o.subscribers}, {"records", o.records},    {"rate_hz", o.rate},
              {"client_nice", o.client_nice}, {"fraction", o.fraction},  {"seconds", o.seconds},
              {"stall_s", o.stall_s},         {"node_sets", o.node_sets}};
  // Stalled past max_stall_s the node closes the stalled client (4008): the window of the
  // stall measures what it holds until then and after.
  const json tick = json::array({{{"name", "churn"}, {"params", {{"fraction", o.fraction}}}}});
  NodeProcess node;
  try {
    std::vector<std::string> sets = {
        "storage.data_dir=" + json(g_tmp + "/data").dump(),
        "tick.rate_hz=" + std::to_string(o.rate),
        "procedures.modules=" + json::array({o.module}).dump(),
        "tick.procedures=" + tick.dump(),
        "subscriptions.max_connections=" + std::to_string(o.subscribers + 64),
        "log.level=warn"};
    sets.insert(sets.end(), o.node_sets.begin(), o.node_sets.end());
    node = start_node(o.server, sets, g_tmp + "/node.log");
  } catch (const std::exception& e) {
    die(e.what());
  }
  say(o, "node on 127.0.0.1:" + std::to_string(node.port) + "; filling " +
             std::to_string(o.records) + " records");
  fill_table(o, node.port);
  const auto window_ticks = static_cast<std::size_t>(std::min(8192.0, o.seconds * o.rate));

  // ---- without subscribers ----
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto ticks0 = get_json(node.port, "/health")["tick"].get<std::uint64_t>();
  const std::uint64_t rss_idle = watch(node.pid, o.seconds, [] {});
  const double p99_without = tick_p99_us(node.port, window_ticks);
  const auto ticks1 = get_json(node.port, "/health")["tick"].get<std::uint64_t>();
  say(o, "without subscribers: tick p99 " + std::to_string(p99_without) + " us over " +
             std::to_string(ticks1 - ticks0) + " ticks");

  // ---- with subscribers ----
  WsFanIn fan(node.port, o.subscribers, R"({"op":"subscribe","sub":"s","table":"bench"})",
              static_cast<int>(o.client_nice));
  try {
    fan.start();
  } catch (const std::exception& e) {
    die(e.what());
  }
  const auto ready_deadline = Clock::now() + std::chrono::seconds(180);
  const auto t_ready = Clock::now();
  while (fan.stats().ready < o.subscribers && Clock::now() < ready_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (fan.stats().ready < o.subscribers)
    die("only " + std::to_string(fan.stats().ready) + " of " + std::to_string(o.subscribers) +
        " subscribers got their snapshot within 180 s");
  const double ready_s = std::chrono::duration<double>(Clock::now() - t_ready).count();
  say(o, std::to_string(o.subscribers) + " subscribers ready in " + std::to_string(ready_s) + " s");
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the snapshot burst drains

  const auto wire0 = scrape_histogram(node.port, "tickdb_subscription_commit_to_wire_seconds");
  const auto fan0 = scrape_histogram(node.port, "tickdb_subscription_fanout_seconds");
  const auto s0 = fan.stats();
  const std::uint64_t rss_all = watch(node.pid, o.seconds, [] {});
  const double p99_with = tick_p99_us(node.port, window_ticks);
  const auto s1 = fan.stats();
  const auto wire =
      minus(scrape_histogram(node.port, "tickdb_subscription_commit_to_wire_seconds"), wire0);
  const auto fanout =
      minus(scrape_histogram(node.port, "tickdb_subscription_fanout_seconds"), fan0);
  const double period = 1.0 / o.rate;
  const double deltas_per_s = static_cast<double>(s1.deltas - s0.deltas) / o.seconds;
  out["commit_to_wire"] = {{"frames", total(wire)},
                           {"p50_ms", quantile(wire, 0.5) * 1e3},
                           {"p99_ms", quantile(wire, 0.99) * 1e3},
                           {"within_one_tick", share_within(wire, 0.0167)},
                           {"bar_ms", period * 1e3},
                           // Exact from the counts: p99 <= the bound of the 16.7 ms bucket
                           // when at least 99% of the frames are within it.
                           {"met", share_within(wire, 0.0167) >= 0.99}};
  out["fanout"] = {{"rounds", total(fanout)},
                   {"p50_ms", quantile(fanout, 0.5) * 1e3},
                   {"p99_ms", quantile(fanout, 0.99) * 1e3}};
  out["client"] = {{"deltas_per_s", deltas_per_s},
                   {"expected_deltas_per_s", o.rate * static_cast<double>(o.subscribers)},
                   {"mb_per_s", static_cast<double>(s1.bytes - s0.bytes) / o.seconds / 1e6},
                   {"chain_breaks", s1.chain_breaks},
                   {"closed", s1.closed},
                   {"errors", s1.errors},
                   {"resets", s1.resets - s0.resets},
                   {"ready_s", ready_s}};
  out["tick_p99_ratio"] = {{"p99_us_without", p99_without},
                           {"p99_us_with", p99_with},
                           {"ratio", p99_without > 0 ? p99_with / p99_without : 0},
                           {"met", p99_without > 0 && p99_with <= 1.2 * p99_without}};

  // ---- one subscriber stops reading ----
  fan.pause(0);
  const std::uint64_t rss_stall = watch(node.pid, o.stall_s, [] {});
  const auto s2 = fan.stats();
  const double above_mib =
      (static_cast<double>(rss_stall) - static_cast<double>(rss_all)) / 1048576.0;
  out["rss_stall"] = {{"rss_idle_mib", static_cast<double>(rss_idle) / 1048576.0},
                      {"rss_all_reading_mib", static_cast<double>(rss_all) / 1048576.0},
                      {"rss_one_stalled_mib", static_cast<double>(rss_stall) / 1048576.0},
                      {"above_mib", above_mib},
                      {"bar_mib", 64},
                      {"met", above_mib <= 64},
                      {"closed_connections", s2.closed}};
  const auto stats = get_json(node.port, "/stats");
  out["node"] = stats["subscriptions"];
  fan.stop();
  try {
    stop_node(node);
  } catch (const std::exception& e) {
    die(e.what());
  }

  if (o.core) {
    say(o, "tickdb-bench-core: BM_ScanRaw, BM_DiffAll, BM_DiffOnePercent");
    json c = core_figures(o);
    c["diff_all_met"] = c["diff_all_vs_scan"].get<double>() >= 0.5;
    c["one_percent_met"] = c["one_percent_vs_all"].get<double>() <= 1.0 / 20;
    out["diff"] = c;
  } else {
    out["diff"] = nullptr;
  }
  cleanup();

  if (o.json_out) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  const auto& w = out["commit_to_wire"];
  const auto& t = out["tick_p99_ratio"];
  const auto& r = out["rss_stall"];
  std::printf("%-34s %-44s %-22s %s\n", "figure", "result", "bar", "");
  std::printf("%-34s p99 %.2f ms (p50 %.2f), %.1f%% within a tick %-10s <= %.1f ms %s\n",
              "commit-to-wire", w["p99_ms"].get<double>(), w["p50_ms"].get<double>(),
              100 * w["within_one_tick"].get<double>(), "", period * 1e3,
              w["met"].get<bool>() ? "met" : "MISSED");
  std::printf("%-34s %.0f us with / %.0f us without = %.2fx %-10s <= 1.2x %s\n", "tick p99",
              t["p99_us_with"].get<double>(), t["p99_us_without"].get<double>(),
              t["ratio"].get<double>(), "", t["met"].get<bool>() ? "met" : "MISSED");
  std::printf("%-34s +%.1f MiB (%.1f -> %.1f) %-18s <= 64 MiB %s\n", "RSS, one reader stalled",
              r["above_mib"].get<double>(), r["rss_all_reading_mib"].get<double>(),
              r["rss_one_stalled_mib"].get<double>(), "", r["met"].get<bool>() ? "met" : "MISSED");
  std::printf("client: %.0f deltas/s of %.0f expected, %.1f MB/s, chain breaks %llu\n",
              out["client"]["deltas_per_s"].get<double>(),
              out["client"]["expected_deltas_per_s"].get<double>(),
              out["client"]["mb_per_s"].get<double>(),
              static_cast<unsigned long long>(out["client"]["chain_breaks"].get<std::uint64_t>()));
  if (!out["diff"].is_null()) {
    const auto& d = out["diff"];
    std::printf("%-34s %.2f GB/s vs BM_ScanRaw %.2f GB/s = %.2fx %-6s >= 0.5x %s\n",
                "diff, all changed", d["diff_all_gb_per_s"].get<double>(),
                d["scan_raw_gb_per_s"].get<double>(), d["diff_all_vs_scan"].get<double>(), "",
                d["diff_all_met"].get<bool>() ? "met" : "MISSED");
    std::printf("%-34s %.3f ms = 1/%.1f of the full diff %-12s <= 1/20 %s\n", "diff, 1% changed",
                d["diff_one_percent_ms"].get<double>(), 1.0 / d["one_percent_vs_all"].get<double>(),
                "", d["one_percent_met"].get<bool>() ? "met" : "MISSED");
  }
  return 0;
}
