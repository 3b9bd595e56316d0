// Version diffs: the records that differ between two published versions of one table, and
// the live-subscription kinds (API.md, Live subscriptions: ins/upd/del/out) on top of them.
//
// Versions share their unchanged chunks by pointer (chunk.h), and the slots of a table never
// move except when it is re-laid out (schema change) or reloaded. So `before` and a later
// `after` are compared chunk by chunk, slot i against slot i:
//  - a chunk that is the same object in both and holds the same used slot count is skipped
//    without touching its records;
//  - a shared chunk that grew by in-place appends yields only its new slots;
//  - a copied chunk is compared slot by slot (ids, live flags, record bytes);
//  - slots past `before`'s end are inserts.
// The cost grows with the chunks that changed, not with the table (DESIGN.md, Subscriptions).
//
// Two versions are comparable slot by slot when they have the same schema object and `after`
// descends from `before` (the versions of one table form a chain: each published version of
// a table is built from the previous one). A schema change or a reload gives a new schema
// object; diff_tables also checks that ids agree at the slots it compares. When the versions
// are not comparable it answers `conflict` ("send a reset"): the caller throws away whatever
// the visitor was given and sends a reset. The caller is the one who knows that both
// versions are of the same table (the same name in two DbVersions of one node).
//
// Ownership: nothing here owns a version; the pointers handed to a visitor and the
// RecordViews in a SubscriptionDelta point into the versions, which the caller keeps alive
// while it uses them. Thread-safety: every function is pure over immutable (published)
// versions and may run on many threads at once; a SubscriptionClassifier is immutable once
// made and may be shared between threads.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "core/filter.h"
#include "core/record.h"
#include "core/status.h"
#include "core/table.h"

namespace tickdb {

// What a diff touched (for tests, metrics and benchmarks).
struct DiffStats {
  std::uint64_t chunks_skipped = 0;     // same object, same used slots: records not touched
  std::uint64_t chunks_grown = 0;       // same object, appended in place: only new slots read
  std::uint64_t chunks_compared = 0;    // copied: compared slot by slot
  std::uint64_t chunks_by_history = 0;  // of those, only in the slots written since
  std::uint64_t slots_compared = 0;     // slots of copied chunks compared
  std::uint64_t changes = 0;            // visitor calls
};

// ok when `after` can be diffed against `before` slot by slot; else `conflict` saying why
// (schema changed, slots dropped, ids differ). O(1) apart from two id lookups.
Status check_comparable(const TableVersion& before, const TableVersion& after);

namespace diff_detail {
// Equality of a record's bytes: no call, no early exit; RS > 0 is a size known at compile
// time (the common sizes: the compiler turns it into a few vector compares), 0 any size.
template <std::uint32_t RS>
inline bool same_bytes(const std::byte* a, const std::byte* b, std::uint32_t n) {
  if constexpr (RS != 0) n = RS;
  std::uint64_t acc = 0;
  std::uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    acc |= x ^ y;
  }
  for (; i < n; ++i) acc |= static_cast<std::uint64_t>(a[i] ^ b[i]);
  return acc == 0;
}
inline bool same_bytes(const std::byte* a, const std::byte* b, std::uint32_t n) {
  return same_bytes<0>(a, b, n);
}

inline std::uint32_t used_slots(const TableVersion& t, std::size_t k) {
  const std::uint64_t first = std::uint64_t{k} * t.records_per_chunk();
  if (first >= t.slots()) return 0;
  const std::uint64_t left = t.slots() - first;
  return static_cast<std::uint32_t>(left < t.records_per_chunk() ? left : t.records_per_chunk());
}
Status ids_differ(const TableVersion& after, std::size_t chunk);
// Slots [lo, hi) of chunk k, copied between the two versions (same ids at the same slots).
template <std::uint32_t RS, class Visitor>
void compare_slots(const Chunk& cb, const Chunk& ca, std::uint32_t lo, std::uint32_t hi,
                   std::uint32_t rs, DiffStats& st, Visitor& visit) {
  if constexpr (RS != 0) rs = RS;
  const std::byte* rb = cb.records();
  const std::byte* ra = ca.records();
  const std::uint64_t* ids = ca.ids();
  st.slots_compared += hi - lo;
  if (cb.dead() == 0 && ca.dead() == 0) {
    // Every slot live in both: only the bytes can differ.
    for (std::uint32_t i = lo; i < hi; ++i) {
      const std::byte* b = rb + std::size_t{i} * rs;
      const std::byte* a = ra + std::size_t{i} * rs;
      if (!same_bytes<RS>(b, a, rs)) [[unlikely]] {
        ++st.changes;
        visit(ids[i], b, a);
      }
    }
    return;
  }
  const std::uint8_t* lb = cb.alive();
  const std::uint8_t* la = ca.alive();
  for (std::uint32_t i = lo; i < hi; ++i) {
    const std::byte* b = rb + std::size_t{i} * rs;
    const std::byte* a = ra + std::size_t{i} * rs;
    if (lb[i] && la[i]) {
      if (same_bytes<RS>(b, a, rs)) continue;
    } else if (!lb[i] && !la[i]) {
      continue;
    }
    ++st.changes;
    visit(ids[i], lb[i] ? b : nullptr, la[i] ? a : nullptr);
  }
}

// How far ahead compare_chunk asks for records (measured: 4 KiB best of 1, 2, 4, 8 KiB).
inline constexpr std::size_t kPrefetchDistance = 4096;
// The next chunk of both versions, for prefetching (null past the end).
struct NextChunks {
  const std::byte* rb = nullptr;
  const std::byte* ra = nullptr;
  const std::uint64_t* ib = nullptr;
  const std::uint64_t* ia = nullptr;
};
// Every slot of a copied chunk, asking for the records kDist bytes ahead (in this chunk, then
// the next one) and for the next chunk's ids as it goes: two streams from separately
// allocated blocks leave the hardware prefetcher idle at every block's end (measured on the
// 1M-record diff: 12.6 -> 23 GB/s).
// Into L2 (the hint 1, prefetcht1): the L1's few outstanding misses were what the prefetches
// waited on (2026-12-07: BM_DiffAll 6.2 -> 4.2 ms on a machine where chunks read slowly).
template <std::uint32_t RS, class Visitor>
void compare_chunk(const Chunk& cb, const Chunk& ca, std::uint32_t used, std::uint32_t rs,
                   const NextChunks& next, DiffStats& st, Visitor& visit) {
  if constexpr (RS != 0) rs = RS;
  constexpr std::size_t kDist = kPrefetchDistance;
  const std::size_t bytes = std::size_t{used} * rs;
  const std::uint32_t blk = rs >= 256 ? 1 : 256 / rs;
  const std::byte* rb = cb.records();
  const std::byte* ra = ca.records();
  for (std::uint32_t lo = 0; lo < used; lo += blk) {
    const std::size_t from = std::size_t{lo} * rs + kDist;
    for (std::size_t o = from; o < from + std::size_t{blk} * rs; o += kCacheLine) {
      if (o < bytes) {
        __builtin_prefetch(rb + o, 0, 1);
        __builtin_prefetch(ra + o, 0, 1);
      } else if (next.ra && next.rb) {
        __builtin_prefetch(next.rb + (o - bytes), 0, 1);
        __builtin_prefetch(next.ra + (o - bytes), 0, 1);
      }
    }
    if (next.ia && next.ib)
      for (std::uint32_t i = lo; i < lo + blk; i += kCacheLine / sizeof(std::uint64_t)) {
        __builtin_prefetch(next.ib + i, 0, 1);
        __builtin_prefetch(next.ia + i, 0, 1);
      }
    compare_slots<RS>(cb, ca, lo, std::min(lo + blk, used), rs, st, visit);
  }
}

// Calls fn(std::integral_constant<std::uint32_t, RS>{}) with RS the record size when a loop is
// specialised for it (the common small sizes), else 0.
template <class Fn>
void with_record_size(std::uint32_t rs, Fn&& fn) {
  switch (rs) {
    case 16:
      return fn(std::integral_constant<std::uint32_t, 16>{});
    case 24:
      return fn(std::integral_constant<std::uint32_t, 24>{});
    case 32:
      return fn(std::integral_constant<std::uint32_t, 32>{});
    case 48:
      return fn(std::integral_constant<std::uint32_t, 48>{});
    case 64:
      return fn(std::integral_constant<std::uint32_t, 64>{});
    default:
      return fn(std::integral_constant<std::uint32_t, 0>{});
  }
}

template <class Visitor>
void compare_chunk(const Chunk& cb, const Chunk& ca, std::uint32_t used, std::uint32_t rs,
                   const NextChunks& next, DiffStats& st, Visitor& visit) {
  with_record_size(
      rs, [&](auto RS) { compare_chunk<decltype(RS)::value>(cb, ca, used, rs, next, st, visit); });
}

template <class Visitor>
void compare_slots(const Chunk& cb, const Chunk& ca, std::uint32_t lo, std::uint32_t hi,
                   std::uint32_t rs, DiffStats& st, Visitor& visit) {
  with_record_size(
      rs, [&](auto RS) { compare_slots<decltype(RS)::value>(cb, ca, lo, hi, rs, st, visit); });
}
}  // namespace diff_detail

// Calls visit(id, before_record, after_record) once per record that differs, in id order:
// inserted (nullptr, rec), deleted (rec, nullptr), changed bytes (rec, rec); the pointers are
// record_size() bytes of the packed record in `before` / `after`. A record live in both with
// the same bytes gives nothing, so does a record inserted and deleted between the two.
// `before` must be `after` itself or an older version of the same table. `conflict` when the
// two are not comparable slot by slot (see the top of this file): the visitor may have been
// called already; discard its results and send a reset.
//
// A copied chunk whose change history (chunk.h) reaches back to before's chunk is compared
// only in the slots written since; otherwise every slot is (ids, live flags and bytes).
template <class Visitor>
Result<DiffStats> diff_tables(const TableVersion& before, const TableVersion& after,
                              Visitor&& visit) {
  TICKDB_TRY(check_comparable(before, after));
  DiffStats st;
  if (&before == &after) return st;
  const std::uint32_t rs = after.record_size();
  const std::size_t nb = before.chunk_count();
  const std::size_t na = after.used_chunk_count();
  // Chunk k of both versions, and the history that relates them (nullptr: compare it whole).
  struct Pair {
    const Chunk* a = nullptr;
    const Chunk* b = nullptr;  // nullptr: past before's chunks
    std::uint32_t ua = 0, ub = 0;
    const Chunk::WrittenBits* written = nullptr;
  };
  // The chunk pointers, read from both trees kBatch at a time (one descent per tree node,
  // TableVersion::chunks) into a ring that holds the current batch and the next, so the
  // chunks kAhead ahead are known for prefetching.
  constexpr std::size_t kAhead = 4, kBatch = 64, kRing = 2 * kBatch;
  static_assert(kAhead < kBatch);
  const Chunk* ring_a[kRing];
  const Chunk* ring_b[kRing];
  auto load_ring = [&](std::size_t k) {  // called for k = 0, 1, 2, ... in order
    if (k % kBatch != 0) return;
    const std::size_t at = k % kRing, n = std::min(kBatch, na - k);
    after.chunks(k, n, ring_a + at);
    const std::size_t in_b = k < nb ? std::min(n, nb - k) : 0;
    if (in_b) before.chunks(k, in_b, ring_b + at);
    for (std::size_t i = in_b; i < n; ++i) ring_b[at + i] = nullptr;
  };
  auto pair_at = [&](std::size_t k) {
    Pair p;
    p.a = ring_a[k % kRing];
    p.b = ring_b[k % kRing];
    p.ua = diff_detail::used_slots(after, k);
    if (p.b) {
      p.ub = diff_detail::used_slots(before, k);
      if (p.a != p.b && p.ub) p.written = p.a->written_since(p.b->serial());
    }
    return p;
  };
  // Calls f(lo, hi) for the runs of slots below ub the history marks written.
  auto for_written = [](const Pair& p, auto&& f) {
    const std::uint32_t g = p.a->lineage_group();
    for (std::uint32_t w = 0; w < p.written->size() && w * 64 * g < p.ub; ++w)
      for (std::uint64_t bits = (*p.written)[w]; bits; bits &= bits - 1) {
        const std::uint32_t lo = (w * 64 + static_cast<std::uint32_t>(std::countr_zero(bits))) * g;
        if (lo >= p.ub) return;
        f(lo, std::min(lo + g, p.ub));
      }
  };
  // When few records changed, the time goes in cache misses on cold chunk headers and
  // records: ask for the headers kAhead chunks ahead, for the history two ahead and for the
  // written records of the next chunk, so that the misses overlap.
  // The front of the header: pointers, dead count, serial and the nearest ancestor's serial
  // (chunk.h, kDiffHeaderBytes), all a diff reads of a chunk but its bitmap.
  auto prefetch_header = [](const Chunk* c) {
    if (!c) return;
    __builtin_prefetch(c);
    __builtin_prefetch(reinterpret_cast<const char*>(c) + Chunk::kDiffHeaderBytes - 1);
  };
  for (std::size_t k = 0; k < kAhead && k < na; ++k) {
    load_ring(k);
    prefetch_header(ring_a[k]);
    prefetch_header(ring_b[k]);
  }
  Pair cur = na ? pair_at(0) : Pair{};
  for (std::size_t k = 0; k < na; ++k) {
    if (k + kAhead < na) {
      load_ring(k + kAhead);
      prefetch_header(ring_a[(k + kAhead) % kRing]);
      prefetch_header(ring_b[(k + kAhead) % kRing]);
    }
    if (k + 2 < na) {
      const Chunk* a2 = ring_a[(k + 2) % kRing];
      const Chunk* b2 = ring_b[(k + 2) % kRing];
      if (b2 && a2 != b2)
        if (const Chunk::WrittenBits* w = a2->written_since(b2->serial())) __builtin_prefetch(w);
    }
    const Pair next = k + 1 < na ? pair_at(k + 1) : Pair{};
    if (next.written) {
      int budget = 32;
      for_written(next, [&](std::uint32_t lo, std::uint32_t) {
        if (--budget < 0) return;
        __builtin_prefetch(next.a->records() + std::size_t{lo} * rs);
        __builtin_prefetch(next.b->records() + std::size_t{lo} * rs);
      });
    }
    const Chunk* ca = cur.a;
    const Chunk* cb = cur.b;
    const std::uint32_t ua = cur.ua, ub = cur.ub;
    if (ca == cb) {
      if (ub == ua) {
        ++st.chunks_skipped;
        cur = next;
        continue;
      }
      ++st.chunks_grown;
    } else if (ub) {
      ++st.chunks_compared;
      if (cur.written) {
        // Only the slots written since before's chunk.
        ++st.chunks_by_history;
        for_written(cur, [&](std::uint32_t lo, std::uint32_t hi) {
          diff_detail::compare_slots(*cb, *ca, lo, hi, rs, st, visit);
        });
      } else {
        diff_detail::NextChunks ahead;
        if (next.b && next.a != next.b && next.ub && !next.written)  // compared whole too
          ahead = {next.b->records(), next.a->records(), next.b->ids(), next.a->ids()};
        if (std::memcmp(cb->ids(), ca->ids(), std::size_t{ub} * sizeof(std::uint64_t)) != 0)
          return diff_detail::ids_differ(after, k);
        diff_detail::compare_chunk(*cb, *ca, ub, rs, ahead, st, visit);
      }
    }
    // Slots past before's end of this chunk: new in `after` (unless deleted again since).
    // Guarded: alive() lies past the front of the header, which a chunk without new slots
    // never needs.
    if (ub < ua) {
      const std::uint8_t* la = ca->alive();
      const std::uint64_t* ida = ca->ids();
      const std::byte* ra = ca->records();
      for (std::uint32_t i = ub; i < ua; ++i) {
        if (!la[i]) continue;
        ++st.changes;
        visit(ida[i], nullptr, ra + std::size_t{i} * rs);
      }
    }
    cur = next;
  }
  return st;
}

// One record that differs (a diff_tables visitor call kept).
struct RecordChange {
  std::uint64_t id = 0;
  const std::byte* before = nullptr;  // nullptr: inserted
  const std::byte* after = nullptr;   // nullptr: deleted
};

// Every record that differs, in id order (diff_tables collected): the hub diffs a table once
// and classifies the changes for each of its subscriptions. `conflict`: send a reset;
// resource_exhausted when the list cannot be allocated.
Result<std::vector<RecordChange>> collect_changes(const TableVersion& before,
                                                  const TableVersion& after);

// A byte range of the packed record: one selected field.
struct ByteRange {
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
};

// The kind a change has for one subscription (API.md, Live subscriptions).
enum class ChangeKind : std::uint8_t {
  none,  // not in the subscription before nor after, or only unselected fields changed
  ins,   // not in it before (absent or not matching), in it after
  upd,   // in it before and after, a selected field's bytes changed
  del,   // in it before, deleted after
  out,   // in it before, still in the table but no longer matching
};

// One subscription's view of changes: its filter (optional) and its selected fields.
class SubscriptionClassifier {
 public:
  // `filter` (may be null: every record) must have been compiled for `schema`; `projection`
  // holds the selected fields as byte ranges (empty: every field). invalid_argument when a
  // range is not inside the record.
  static Result<SubscriptionClassifier> make(std::shared_ptr<const TableSchema> schema,
                                             std::shared_ptr<const CompiledFilter> filter,
                                             std::vector<ByteRange> projection);

  // The kind of one change; `before`/`after` are as diff_tables gives them (either may be
  // nullptr, not both).
  ChangeKind classify(std::uint64_t id, const std::byte* before, const std::byte* after) const {
    const bool was = before && (!filter_ || filter_->match(before, id));
    const bool is = after && (!filter_ || filter_->match(after, id));
    if (!was) return is ? ChangeKind::ins : ChangeKind::none;
    if (!after) return ChangeKind::del;
    if (!is) return ChangeKind::out;
    return selected_differ(before, after) ? ChangeKind::upd : ChangeKind::none;
  }
  const std::shared_ptr<const TableSchema>& schema() const { return schema_; }

 private:
  bool selected_differ(const std::byte* before, const std::byte* after) const;

  std::shared_ptr<const TableSchema> schema_;
  std::shared_ptr<const CompiledFilter> filter_;
  std::vector<ByteRange> projection_;  // never empty: the whole record when none was given
};

// One subscription's changes between two versions, for the encoder. ins/upd are rows of
// `after` (whole records: the encoder writes the selected fields), del/out are ids; each
// list is in id order. The views point into `after`: keep it alive while using them.
struct SubscriptionDelta {
  std::vector<RecordView> ins, upd;
  std::vector<std::uint64_t> del, out;
  bool empty() const { return ins.empty() && upd.empty() && del.empty() && out.empty(); }
};

// Classifies already collected changes (see collect_changes) of the version `after` for one
// subscription. invalid_argument when `after` is not of the classifier's schema;
// resource_exhausted when the lists cannot be allocated.
Result<SubscriptionDelta> classify_changes(std::span<const RecordChange> changes,
                                           const TableVersion& after,
                                           const SubscriptionClassifier& sub);

// diff_tables and classify in one pass, for one subscription. `conflict`: send a reset;
// invalid_argument: `after` is not of the classifier's schema.
Result<SubscriptionDelta> subscription_delta(const TableVersion& before, const TableVersion& after,
                                             const SubscriptionClassifier& sub);

}  // namespace tickdb
