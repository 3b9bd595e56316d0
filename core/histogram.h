// Histogram: counts of durations in fixed buckets, the shape Prometheus histograms take
// (`_bucket{le=...}` cumulative counts, `_sum`, `_count`), for request latency and tick
// duration and lateness.
//
// The bounds are fixed (kBounds, seconds), so histograms recorded on different threads merge
// by adding counts. One writer records into a Histogram (an I/O thread its own, the tick loop
// its own); any thread may read it at any time with snapshot(): every count is a relaxed
// atomic written only by its one writer (a plain load and store, no locked instruction on the
// hot path), so a reader sees each count whole, though not all counts of one instant.
//
// Thread-safety: record_ns() from one thread at a time; record_ns_shared() from any number of
// threads at once (a locked add per count: for figures recorded where no one thread owns them,
// such as a subscription frame's write on whichever I/O thread finishes it); snapshot() from
// any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace tickdb {

class Histogram {
 public:
  // Upper bounds of the buckets, seconds: 50 us .. 10 s (and +Inf after the last).
  static constexpr std::array<double, 18> kBounds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.0167,
      0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  static constexpr std::size_t kBuckets = kBounds.size() + 1;  // the last is +Inf

  struct Counts {
    std::array<std::uint64_t, kBuckets> buckets{};  // per bucket, not cumulative
    std::uint64_t count = 0;
    double sum_s = 0;
    Counts& operator+=(const Counts& o);
    // The cumulative count of observations <= kBounds[i] (i == kBounds.size(): all).
    std::uint64_t cumulative(std::size_t i) const;
  };

  void record_ns(std::int64_t ns);
  void record_seconds(double s) { record_ns(static_cast<std::int64_t>(s * 1e9)); }
  void record_ns_shared(std::int64_t ns);
  Counts snapshot() const;

 private:
  static void bump(std::atomic<std::uint64_t>& a, std::uint64_t by) {
    a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace tickdb
