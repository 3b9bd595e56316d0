// The tick loop: rate limits, absolute deadlines, tick procedures every N ticks, overruns
// that delay without piling up, rate changes while running, and the figures it keeps.
#include <atomic>

#include "runtime_util.h"

using namespace tickdb;
using namespace tickdb::test;
using namespace std::chrono_literals;

namespace {
struct Probe {
  std::atomic<std::uint64_t> runs{0};
  std::atomic<int> sleep_ms{0};
  std::atomic<bool> fail{false};
  std::atomic<double> dt{0};
  std::atomic<std::uint64_t> tickless{0};  // runs outside a tick (Catch2 asserts only on the test thread)
};

RuntimeConfig ticking(double hz, Probe& probe, std::uint64_t every = 1) {
  RuntimeConfig cfg;
  cfg.workers = 2;
  cfg.tick_rate_hz = hz;
  cfg.tick_procedures = {{"test.probe", every, json::object()}};
  cfg.register_procedures = [&probe](Registry& reg) {
    return reg.add(procedure("test.probe", [&probe](CallContext& ctx, const json& p) -> Result<json> {
      probe.runs++;
      probe.dt = ctx.tick_dt();
      if (p.contains("dt")) probe.tickless++;  // the loop passes the period in the context, not in params
      if (ctx.tick() == 0) probe.tickless++;
      if (int ms = probe.sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      if (probe.fail) return make_error(Errc::invalid_argument, "probe failing");
      return json(nullptr);
    }));
  };
  return cfg;
}

// Ticks per second over `d`.
double measure_rate(Runtime& rt, std::chrono::milliseconds d) {
  auto t0 = std::chrono::steady_clock::now();
  auto n0 = rt.ticks();
  std::this_thread::sleep_for(d);
  auto n1 = rt.ticks();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(n1 - n0) / s;
}
}  // namespace

TEST_CASE("tick rates outside 15..120 Hz are refused", "[scheduler]") {
  for (double hz : {0.0, 14.9, 120.5, 1000.0, -60.0, std::nan("")}) {
    RuntimeConfig cfg = no_ticks();
    cfg.tick_rate_hz = hz;
    auto r = Runtime::start(cfg);
    CHECK_FALSE(r.is_ok());
    CHECK(r.message().find("tick.rate_hz must be 15..120") != std::string::npos);
  }
  auto rt = start_runtime(no_ticks());
  CHECK(rt->set_tick_rate(10).code() == Errc::invalid_argument);
  CHECK(rt->set_tick_rate(121).code() == Errc::invalid_argument);
  CHECK(rt->set_tick_rate(15).is_ok());
  CHECK(rt->set_tick_rate(120).is_ok());
  CHECK(rt->tick_rate() == 120);
}

TEST_CASE("the loop ticks at its rate and runs tick procedures every N ticks", "[scheduler]") {
  Probe probe;
  auto rt = start_runtime(ticking(100, probe, 3));
  REQUIRE(wait_until([&] { return rt->ticks() >= 5; }, 5000ms));
  double rate = measure_rate(*rt, 1500ms);
  INFO("measured " << rate << " ticks/s at 100 Hz");
  CHECK(rate > 80);
  CHECK(rate < 103);
  auto ticks = rt->ticks();
  auto runs = probe.runs.load();
  CHECK(runs >= ticks / 3 - 1);
  CHECK(runs <= ticks / 3 + 1);
  CHECK(probe.dt == Approx(0.01));
  CHECK(probe.tickless == 0);
  auto s = rt->tick_stats();
  CHECK(s.ticks >= ticks);
  CHECK(s.rate_hz == 100);
  CHECK(s.window > 0);
  CHECK(s.lateness.p50_us >= 0);
  CHECK(s.lateness.max_us >= s.lateness.p99_us);
  CHECK(s.lateness.p99_us >= s.lateness.p50_us);
  CHECK(s.duration.max_us >= s.duration.p50_us);
  CHECK(s.errors == 0);
  CHECK(s.to_json()["lateness"].contains("p99_us"));
}

TEST_CASE("a slow tick delays the next one and never piles ticks up", "[scheduler]") {
  Probe probe;
  auto rt = start_runtime(ticking(100, probe));
  REQUIRE(wait_until([&] { return rt->ticks() >= 5; }, 5000ms));
  probe.sleep_ms = 25;  // 2.5 periods per tick
  double slow = measure_rate(*rt, 1000ms);
  INFO("slow ticks/s: " << slow);
  CHECK(slow < 45);  // ~38/s: each tick waits for the slow one before it
  CHECK(slow > 15);
  auto s = rt->tick_stats();
  CHECK(s.overruns > 10);
  CHECK(s.skipped > 10);
  // Back to fast: no burst of the skipped ticks, the normal rate again.
  probe.sleep_ms = 0;
  std::this_thread::sleep_for(100ms);
  double fast = measure_rate(*rt, 1000ms);
  INFO("fast again: " << fast);
  CHECK(fast < 103);
  CHECK(fast > 80);
}

TEST_CASE("the rate can be changed while running", "[scheduler]") {
  Probe probe;
  auto rt = start_runtime(ticking(20, probe));
  REQUIRE(wait_until([&] { return rt->ticks() >= 2; }, 5000ms));
  double r20 = measure_rate(*rt, 1000ms);
  REQUIRE(rt->set_tick_rate(100).is_ok());
  std::this_thread::sleep_for(50ms);
  double r100 = measure_rate(*rt, 1000ms);
  INFO("20 Hz: " << r20 << ", then 100 Hz: " << r100);
  CHECK(r20 > 15);
  CHECK(r20 < 22);
  CHECK(r100 > 80);
  CHECK(r100 < 103);
  CHECK(rt->tick_stats().rate_hz == 100);
  CHECK(probe.dt == Approx(0.01));
}

TEST_CASE("failing tick procedures are counted and the loop goes on", "[scheduler]") {
  Probe probe;
  probe.fail = true;
  auto rt = start_runtime(ticking(60, probe));
  REQUIRE(wait_until([&] { return rt->tick_stats().errors >= 5; }, 5000ms));
  auto s = rt->tick_stats();
  CHECK(s.last_error.find("probe failing") != std::string::npos);
  CHECK(s.last_error.find("test.probe") != std::string::npos);
  auto t = rt->ticks();
  REQUIRE(wait_until([&] { return rt->ticks() > t + 5; }, 5000ms));
}

TEST_CASE("percentiles of a sample", "[scheduler]") {
  std::vector<std::int64_t> v;
  for (int i = 1; i <= 1000; ++i) v.push_back(i * 1000);  // 1..1000 us
  auto p = percentiles_us(v.data(), v.size());
  CHECK(p.p50_us == Approx(500).margin(1));
  CHECK(p.p99_us == Approx(990).margin(1));
  CHECK(p.max_us == 1000);
  CHECK(percentiles_us(v.data(), 0).max_us == 0);
}

TEST_CASE("stop and rate changes are handled while every tick overruns", "[scheduler]") {
  Probe probe;
  probe.sleep_ms = 30;  // 3 periods at 100 Hz: the deadline has always passed
  auto rt = start_runtime(ticking(100, probe));
  REQUIRE(wait_until([&] { return rt->ticks() >= 3; }, 5000ms));
  REQUIRE(rt->set_tick_rate(20).is_ok());  // 50 ms: the ticks fit again
  REQUIRE(wait_until([&] { return rt->tick_stats().rate_hz == 20; }, 5000ms));
  auto overruns = rt->tick_stats().overruns;
  std::this_thread::sleep_for(300ms);
  CHECK(rt->tick_stats().overruns <= overruns + 1);
  REQUIRE(rt->set_tick_rate(100).is_ok());
  REQUIRE(wait_until([&] { return rt->tick_stats().overruns > overruns + 3; }, 5000ms));
  auto t0 = std::chrono::steady_clock::now();
  rt->stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}
