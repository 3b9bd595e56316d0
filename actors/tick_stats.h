// TickStats: the figures of the tick loop: ticks run, overruns, ticks skipped, and the
// distribution of tick durations and of lateness (tick start against its deadline).
//
// Percentiles are over the last kWindow ticks (at 60 Hz about 2 minutes); counts, maxima and
// the histograms (for Prometheus) are since start. Thread-safety: record() (the scheduler) and
// snapshot() (anyone: /metrics) are safe together: a short mutex, never held while a tick runs.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/histogram.h"

namespace tickdb {

struct Percentiles {
  double p50_us = 0, p99_us = 0, max_us = 0;
};

class TickStats {
 public:
  static constexpr std::size_t kWindow = 8192;

  struct Snapshot {
    std::uint64_t ticks = 0;
    std::uint64_t overruns = 0;  // ticks that ran past the next tick's deadline
    std::uint64_t skipped = 0;   // deadlines passed while a slow tick ran (never run late)
    double rate_hz = 0;
    std::size_t window = 0;  // ticks the percentiles are over
    Percentiles duration, lateness;
    double max_duration_us = 0, max_lateness_us = 0;  // since start
    std::uint64_t errors = 0;                         // tick procedure runs that failed
    std::string last_error;
    Histogram::Counts duration_hist, lateness_hist;  // since start
    nlohmann::json to_json() const;
  };

  void set_rate(double hz);
  void record(std::int64_t lateness_ns, std::int64_t duration_ns, bool overrun,
              std::uint64_t skipped);
  void record_error(std::string message);
  // Percentiles over the last `window` ticks (at most kWindow; 0: kWindow).
  Snapshot snapshot(std::size_t window = 0) const;
  // The lateness of the ticks in the window, in nanoseconds (benchmarks).
  std::vector<std::int64_t> lateness_samples() const;

 private:
  mutable std::mutex mu_;
  std::uint64_t ticks_ = 0, overruns_ = 0, skipped_ = 0;
  double rate_hz_ = 0;
  std::uint64_t errors_ = 0;
  std::string last_error_;
  std::int64_t max_duration_ = 0, max_lateness_ = 0;
  std::array<std::int64_t, kWindow> duration_{};
  std::array<std::int64_t, kWindow> lateness_{};
  Histogram duration_hist_, lateness_hist_;
};

// p50/p99/max of a sample (nanoseconds in, microseconds out); the sample is reordered.
Percentiles percentiles_us(std::int64_t* first, std::size_t n);

}  // namespace tickdb
