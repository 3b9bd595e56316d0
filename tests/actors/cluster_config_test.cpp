// The cluster transport of the runtime: CAF's middleman is loaded with the cluster's name as
// its app identifier and its heartbeats on (CAF's defaults are 0: no heartbeats, so a hung
// peer would never be noticed; and an integer instead of a timespan is refused silently).
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <catch2/catch.hpp>

#include "actors/runtime.h"

using namespace tickdb;

TEST_CASE("a clustered runtime sets CAF's heartbeat, connection timeout and app identifier",
          "[cluster]") {
  RuntimeConfig rc;
  rc.start_ticks = false;
  rc.workers = 1;
  rc.cluster = RuntimeConfig::ClusterTransport{"blue", std::chrono::milliseconds(150),
                                               std::chrono::milliseconds(900)};
  auto rt = std::move(Runtime::start(rc).value());
  const auto& cfg = rt->system().config();
  CHECK(caf::get_or(cfg, "middleman.heartbeat-interval", caf::timespan{0}) ==
        caf::timespan{std::chrono::milliseconds(150)});
  CHECK(caf::get_or(cfg, "middleman.connection-timeout", caf::timespan{0}) ==
        caf::timespan{std::chrono::milliseconds(900)});
  CHECK(caf::get_or(cfg, "middleman.app-identifiers", std::vector<std::string>{}) ==
        std::vector<std::string>{"blue"});
  // Decoded by the middleman's own thread (CAF's default would be one worker).
  CHECK(caf::get_or(cfg, "middleman.workers", std::size_t{99}) == 0);
  CHECK_NOTHROW(rt->system().middleman());
}

TEST_CASE("cluster.decode_threads becomes CAF's middleman.workers", "[cluster]") {
  RuntimeConfig rc;
  rc.start_ticks = false;
  rc.workers = 1;
  rc.cluster = RuntimeConfig::ClusterTransport{};
  rc.cluster->decode_threads = 3;
  auto rt = std::move(Runtime::start(rc).value());
  CHECK(caf::get_or(rt->system().config(), "middleman.workers", std::size_t{99}) == 3);
}

TEST_CASE("a runtime without a cluster loads no middleman", "[cluster]") {
  RuntimeConfig rc;
  rc.start_ticks = false;
  rc.workers = 1;
  auto rt = std::move(Runtime::start(rc).value());
  CHECK(caf::get_or(rt->system().config(), "middleman.heartbeat-interval", caf::timespan{0}) ==
        caf::timespan{0});
  CHECK_THROWS(rt->system().middleman());
}
