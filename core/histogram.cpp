#include "core/histogram.h"

#include <algorithm>

namespace tickdb {

namespace {
// kBounds in nanoseconds, for a comparison of integers on the hot path.
constexpr std::array<std::int64_t, Histogram::kBounds.size()> bounds_ns() {
  std::array<std::int64_t, Histogram::kBounds.size()> out{};
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::int64_t>(Histogram::kBounds[i] * 1e9 + 0.5);
  return out;
}
constexpr auto kBoundsNs = bounds_ns();
}  // namespace

namespace {
std::size_t bucket_of(std::int64_t ns) {
  return static_cast<std::size_t>(std::lower_bound(kBoundsNs.begin(), kBoundsNs.end(), ns) -
                                  kBoundsNs.begin());
}
}  // namespace

void Histogram::record_ns(std::int64_t ns) {
  if (ns < 0) ns = 0;
  bump(buckets_[bucket_of(ns)], 1);
  bump(sum_ns_, static_cast<std::uint64_t>(ns));
}

void Histogram::record_ns_shared(std::int64_t ns) {
  if (ns < 0) ns = 0;
  buckets_[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

Histogram::Counts Histogram::snapshot() const {
  Counts c;
  for (std::size_t i = 0; i < kBuckets; ++i)
    c.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  // The count is the sum of the buckets read, so the rendered histogram is consistent
  // (+Inf bucket == _count) even while the writer goes on.
  for (auto b : c.buckets) c.count += b;
  c.sum_s = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return c;
}

Histogram::Counts& Histogram::Counts::operator+=(const Counts& o) {
  for (std::size_t i = 0; i < kBuckets; ++i) buckets[i] += o.buckets[i];
  count += o.count;
  sum_s += o.sum_s;
  return *this;
}

std::uint64_t Histogram::Counts::cumulative(std::size_t i) const {
  std::uint64_t n = 0;
  for (std::size_t k = 0; k <= i && k < kBuckets; ++k) n += buckets[k];
  return n;
}

}  // namespace tickdb
