#include "actors/tick_stats.h"

#include <algorithm>
#include <vector>

namespace tickdb {

Percentiles percentiles_us(std::int64_t* first, std::size_t n) {
  Percentiles p;
  if (n == 0) return p;
  auto at = [&](double q) {
    auto k = static_cast<std::size_t>(q * static_cast<double>(n - 1) + 0.5);
    std::nth_element(first, first + k, first + n);
    return static_cast<double>(first[k]) / 1000.0;
  };
  p.p50_us = at(0.50);
  p.p99_us = at(0.99);
  p.max_us = static_cast<double>(*std::max_element(first, first + n)) / 1000.0;
  return p;
}

void TickStats::set_rate(double hz) {
  std::lock_guard lock(mu_);
  rate_hz_ = hz;
}

void TickStats::record(std::int64_t lateness_ns, std::int64_t duration_ns, bool overrun,
                       std::uint64_t skipped) {
  std::lock_guard lock(mu_);
  const std::size_t i = ticks_ % kWindow;
  duration_[i] = duration_ns;
  lateness_[i] = lateness_ns;
  ++ticks_;
  if (overrun) ++overruns_;
  skipped_ += skipped;
  max_duration_ = std::max(max_duration_, duration_ns);
  max_lateness_ = std::max(max_lateness_, lateness_ns);
  duration_hist_.record_ns(duration_ns);
  lateness_hist_.record_ns(lateness_ns);
}

void TickStats::record_error(std::string message) {
  std::lock_guard lock(mu_);
  ++errors_;
  last_error_ = std::move(message);
}

TickStats::Snapshot TickStats::snapshot(std::size_t window) const {
  Snapshot s;
  std::vector<std::int64_t> d, l;
  {
    std::lock_guard lock(mu_);
    s.ticks = ticks_;
    s.overruns = overruns_;
    s.skipped = skipped_;
    s.rate_hz = rate_hz_;
    s.errors = errors_;
    s.last_error = last_error_;
    const std::size_t want = window == 0 ? kWindow : std::min(window, kWindow);
    s.window = static_cast<std::size_t>(std::min<std::uint64_t>(ticks_, want));
    // The newest s.window entries of the ring (tick t is at t % kWindow).
    d.reserve(s.window);
    l.reserve(s.window);
    for (std::size_t k = 1; k <= s.window; ++k) {
      const std::size_t i = static_cast<std::size_t>((ticks_ - k) % kWindow);
      d.push_back(duration_[i]);
      l.push_back(lateness_[i]);
    }
    s.max_duration_us = static_cast<double>(max_duration_) / 1000.0;
    s.max_lateness_us = static_cast<double>(max_lateness_) / 1000.0;
    s.duration_hist = duration_hist_.snapshot();
    s.lateness_hist = lateness_hist_.snapshot();
  }
  s.duration = percentiles_us(d.data(), d.size());
  s.lateness = percentiles_us(l.data(), l.size());
  return s;
}

std::vector<std::int64_t> TickStats::lateness_samples() const {
  std::lock_guard lock(mu_);
  auto n = static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(ticks_, kWindow));
  return std::vector<std::int64_t>(lateness_.begin(), lateness_.begin() + n);
}

nlohmann::json TickStats::Snapshot::to_json() const {
  auto pj = [](const Percentiles& p) {
    return nlohmann::json{{"p50_us", p.p50_us}, {"p99_us", p.p99_us}, {"max_us", p.max_us}};
  };
  return {{"ticks", ticks},
          {"overruns", overruns},
          {"skipped", skipped},
          {"rate_hz", rate_hz},
          {"window", window},
          {"duration", pj(duration)},
          {"lateness", pj(lateness)},
          {"max_duration_us", max_duration_us},
          {"max_lateness_us", max_lateness_us},
          {"errors", errors},
          {"last_error", last_error}};
}

}  // namespace tickdb
