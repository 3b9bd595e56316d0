#include "http/request_figures.h"

namespace tickdb {

RequestFigures::RequestFigures(std::size_t routes, std::size_t threads) : routes_(routes) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) slots_.push_back(std::make_unique<Slot>(routes));
}

void RequestFigures::record(std::size_t thread, RouteId route, int status, std::int64_t ns) {
  if (thread >= slots_.size() || route >= routes_) return;
  Slot& s = *slots_[thread];
  if (status < kMinStatus || status >= kMinStatus + kStatuses) status = 599;
  auto& c = s.status[route * kStatuses + static_cast<std::size_t>(status - kMinStatus)];
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  s.latency[route].record_ns(ns);
}

std::vector<RequestFigures::RouteCounts> RequestFigures::merged() const {
  std::vector<RouteCounts> out(routes_);
  std::vector<std::uint64_t> status(routes_ * kStatuses, 0);
  for (const auto& s : slots_) {
    for (std::size_t i = 0; i < status.size(); ++i)
      status[i] += s->status[i].load(std::memory_order_relaxed);
    for (std::size_t r = 0; r < routes_; ++r) out[r].latency += s->latency[r].snapshot();
  }
  for (std::size_t r = 0; r < routes_; ++r)
    for (int k = 0; k < kStatuses; ++k)
      if (auto n = status[r * kStatuses + static_cast<std::size_t>(k)])
        out[r].by_status.emplace_back(kMinStatus + k, n);
  return out;
}

}  // namespace tickdb
