// Chunks: the contiguous blocks that hold a table's packed records, and ChunkTree, the
// persistent (path-copying) vector of chunk pointers that a TableVersion keeps.
//
// A chunk holds up to `capacity` records back to back (records() is 64-byte aligned, so a
// chunk starts on a cache line), their ids (ids()) and a live flag per slot (alive()). A
// chunk reachable from a published version is never written again in the slots that version
// can see. Two things may still be written, both outside every published view:
//  - slots at or past the chunk's frontier: a writer whose version ends exactly at the
//    frontier claims the next slot with a CAS and appends in place, so appends copy nothing;
//  - everything, by the transaction that created the chunk (owner) before it commits.
// Freed chunk memory goes back to a process-wide pool (first touch of fresh memory is slow
// on these machines), bounded by chunk_pool_limit().
//
// Change history (for version_diff.h): every chunk has a serial number unique in the process
// (a chunk's address may be reused once it is freed, its serial never is). A copy remembers
// the chunks it descends from, nearest first, up to kLineage of them, each with a bitmap of
// the slots written since that ancestor (mark_written, one bit per lineage_group() slots). A
// diff of a version holding ancestor A against one holding this chunk then compares only the
// marked slots: 1% of the records updated costs ~1% of a full comparison, not the whole chunk.
// Whoever writes the records of a chunk it owns marks the slots (TableVersion does), or calls
// forget_lineage() when it writes them wholesale (a diff then compares every slot).
//
// Thread-safety: const access is safe from many threads; a chunk or node is mutated only by
// its owner transaction (single thread) before publication, or via the frontier CAS.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"

namespace tickdb {

inline constexpr std::size_t kCacheLine = 64;
// Target bytes of records per chunk. Records per chunk is the largest power of two that fits
// (at least 1): small enough that copying a chunk on write is cheap, large enough that the
// per-chunk overhead of a scan vanishes.
#ifndef TICKDB_CHUNK_BYTES
#define TICKDB_CHUNK_BYTES 16384
#endif
inline constexpr std::size_t kChunkTargetBytes = TICKDB_CHUNK_BYTES;

// Records per chunk for a record size (a power of two).
std::uint32_t records_per_chunk(std::uint32_t record_size);

class Chunk {
 public:
  // Allocates a chunk (memory from the pool when possible). resource_exhausted on failure.
  static Result<std::shared_ptr<Chunk>> make(std::uint32_t record_size, std::uint32_t capacity,
                                             std::uint64_t owner);
  // n chunks at once (one trip to the pool), appended to `out`; on failure `out` is as it was.
  static Status make_many(std::uint32_t record_size, std::uint32_t capacity, std::uint64_t owner,
                          std::size_t n, std::vector<std::shared_ptr<Chunk>>& out);
  // A copy of the first `used` slots of `src`, owned by `owner`.
  static Result<std::shared_ptr<Chunk>> copy_of(const Chunk& src, std::uint32_t used,
                                                std::uint64_t owner);
  // Makes this chunk (same record size and capacity, owned by the caller) a copy of the
  // first `used` slots of `src`: records, ids, live flags, dead count and frontier.
  void copy_from(const Chunk& src, std::uint32_t used);
  struct Key {  // lets make_shared build a Chunk (one allocation with its control block)
   private:
    friend class Chunk;
    Key() = default;
  };
  explicit Chunk(Key) {}
  ~Chunk();
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;

  std::byte* records() { return mem_; }
  const std::byte* records() const { return mem_; }
  std::uint64_t* ids() { return ids_; }
  const std::uint64_t* ids() const { return ids_; }
  std::uint8_t* alive() { return alive_; }
  const std::uint8_t* alive() const { return alive_; }
  std::uint32_t capacity() const { return capacity_; }
  std::uint32_t record_size() const { return record_size_; }
  std::uint64_t owner() const { return owner_; }
  // Dead slots in this chunk (fixed once the chunk is published).
  std::uint32_t dead() const { return dead_; }
  void add_dead() { ++dead_; }

  // Claims slot `expected` for an in-place append; true when this writer may write it.
  bool claim(std::uint32_t expected) {
    return frontier_.compare_exchange_strong(expected, expected + 1, std::memory_order_acq_rel);
  }
  std::uint32_t frontier() const { return frontier_.load(std::memory_order_acquire); }
  // The owner writes freely; it moves the frontier with what it wrote.
  void set_frontier(std::uint32_t f) { frontier_.store(f, std::memory_order_release); }
  std::size_t bytes() const { return bytes_; }

  // ---- change history (see the top) ----
  static constexpr std::size_t kLineage = 8;
  static constexpr std::uint32_t kLineageBits = 512;
  using WrittenBits = std::array<std::uint64_t, kLineageBits / 64>;
  std::uint64_t serial() const { return serial_; }
  // The slots written since the ancestor with this serial (bit b: slots [b*g, (b+1)*g) with
  // g = lineage_group()), or nullptr when it is not within kLineage copies (or the history
  // was forgotten).
  const WrittenBits* written_since(std::uint64_t serial) const {
    for (std::size_t i = 0; i < kLineage; ++i)
      if (lineage_serial_[i] == serial && serial != 0) return &lineage_written_[i];
    return nullptr;
  }
  // Slots per bit of a WrittenBits (capacity / kLineageBits, at least 1).
  std::uint32_t lineage_group() const { return group_; }
  // The owner wrote (or deleted) the record in `slot`.
  void mark_written(std::uint32_t slot) {
    const std::uint32_t bit = slot / group_;
    for (WrittenBits& w : lineage_written_) w[bit / 64] |= std::uint64_t{1} << (bit % 64);
  }
  // The owner writes any slot without marking: no ancestor can be trusted any more.
  void forget_lineage() { lineage_serial_ = {}; }
  // Bytes at the front of a Chunk up to the nearest ancestor's serial (see the members).
  static constexpr std::size_t kDiffHeaderBytes = 40;

 private:
  void init(std::byte* mem, std::size_t bytes, std::size_t rec_bytes, std::size_t id_bytes,
            std::uint32_t record_size, std::uint32_t capacity, std::uint64_t owner);
  // What a diff reads of a cold chunk (version_diff.h) comes first: the pointers, the dead
  // count, the serial and the nearest ancestors' serials; a diff whose `before` is the
  // nearest ancestor (the usual case) reads the first kDiffHeaderBytes of each header, one
  // cache line or two. (Aligning Chunk to a cache line would make that always one, but
  // glibc's aligned allocation made every chunk copy slower: BM_UpdateOne 3.9 -> 5.3 us.)
  std::byte* mem_ = nullptr;
  std::uint64_t* ids_ = nullptr;
  std::uint32_t dead_ = 0;
  std::uint32_t group_ = 1;
  std::uint64_t serial_ = 0;
  // Nearest ancestor first; serial 0: none.
  std::array<std::uint64_t, kLineage> lineage_serial_{};
  std::uint8_t* alive_ = nullptr;
  std::size_t bytes_ = 0;
  std::uint32_t capacity_ = 0;
  std::uint32_t record_size_ = 0;
  std::uint64_t owner_ = 0;
  std::atomic<std::uint32_t> frontier_{0};
  std::array<WrittenBits, kLineage> lineage_written_{};
};

// Pool of freed chunk memory, shared by all tables.
std::size_t chunk_pool_limit();
void set_chunk_pool_limit(std::size_t bytes);
std::size_t chunk_pool_bytes();

// A persistent vector of chunks with fanout 16 (a path copy bumps the reference counts of
// every sibling on the path, cold in a large table: 16 measured best for updates at 10M
// records against 64 and 32). Copying a ChunkTree is O(1); set/push_back
// copy only the nodes on the path that `owner` does not own yet.
class ChunkTree {
 public:
#ifndef TICKDB_TREE_SHIFT
#define TICKDB_TREE_SHIFT 4
#endif
  static constexpr unsigned kShift = TICKDB_TREE_SHIFT;
  static constexpr std::size_t kFan = std::size_t{1} << kShift;

  std::size_t size() const {
    return size_;
  }
  const Chunk* get(std::size_t i) const {
    return static_cast<const Chunk*>(slot(i));
  }
  Chunk* get_mut(std::size_t i) const {
    return static_cast<Chunk*>(slot(i));
  }
  std::shared_ptr<Chunk> get_shared(std::size_t i) const;
  // Chunks [first, first + n) into out (first + n <= size()): one descent per leaf node, not
  // one per chunk, for walks over every chunk of a tree (a diff walks two).
  void get_range(std::size_t first, std::size_t n, const Chunk** out) const;
  // set/push_back/truncate allocate tree nodes and may throw std::bad_alloc; the tree is
  // left whole (TableVersion turns it into resource_exhausted).
  void set(std::size_t i, std::shared_ptr<Chunk> c, std::uint64_t owner);
  void push_back(std::shared_ptr<Chunk> c, std::uint64_t owner);
  // Drops the chunks at [n, size()).
  void truncate(std::size_t n, std::uint64_t owner);

 private:
  struct Node {
    std::array<std::shared_ptr<void>, kFan> slot;
    std::uint64_t owner = 0;
  };
  void* slot(std::size_t i) const;
  // The leaf node that holds chunk i (i < size()).
  const Node* leaf(std::size_t i) const;
  std::shared_ptr<void>& slot_ref(std::size_t i, std::uint64_t owner);

  std::shared_ptr<Node> root_;
  unsigned depth_ = 0;  // node levels; 0 when empty
  std::size_t size_ = 0;
};

}  // namespace tickdb
