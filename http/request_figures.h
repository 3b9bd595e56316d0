// RequestFigures: requests answered per route and status, and their latency per route as a
// histogram, for /metrics and /stats.
//
// Each I/O thread counts into a slot of its own (plain relaxed stores, no lock, no shared
// cache line), and a scrape adds the slots up. Route ids come from the RouteTable.
//
// Thread-safety: record(thread, ...) only from I/O thread `thread`; merged() from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/histogram.h"
#include "http/route_table.h"

namespace tickdb {

class RequestFigures {
 public:
  RequestFigures(std::size_t routes, std::size_t threads);
  std::size_t threads() const { return slots_.size(); }

  // A request answered by `route` with `status`, `ns` after it was read.
  void record(std::size_t thread, RouteId route, int status, std::int64_t ns);

  struct RouteCounts {
    std::vector<std::pair<int, std::uint64_t>> by_status;  // status, count (count > 0)
    Histogram::Counts latency;
  };
  // Indexed by route id.
  std::vector<RouteCounts> merged() const;

 private:
  static constexpr int kMinStatus = 100, kStatuses = 500;  // 100..599
  struct Slot {
    explicit Slot(std::size_t routes) : status(routes * kStatuses), latency(routes) {}
    std::vector<std::atomic<std::uint64_t>> status;  // route * kStatuses + (status - 100)
    std::vector<Histogram> latency;                  // per route
  };
  std::size_t routes_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace tickdb
