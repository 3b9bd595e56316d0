// TableVersion: one table's records at one version, in chunked copy-on-write storage.
//
// Records live in chunks (see chunk.h) in id order: slot i of the table is slot i % rpc of
// chunk i / rpc, with rpc (records per chunk) a power of two. A delete leaves a dead slot
// (its id stays, so the ids stay sorted and a lookup is a binary search with an O(1) guess
// for dense ids); dead slots are dropped when the table is re-laid out (schema change) or
// reloaded.
//
// A published TableVersion is immutable: readers use the const API from any thread for as
// long as they hold it. The mutating methods belong to the one Transaction that made this
// copy (its `owner` id): they copy a chunk the first time they touch it (or append in place
// past the chunk's frontier), so a write costs the same whatever the table's size and an
// append copies nothing that is already there.
//
// The table's secondary indexes (table_index.h) belong to the version too: a reader of
// version v sees the records and indexes of v, and one publish covers both. writable_copy
// copies them in O(1); the writer keeps them in step through index_insert / index_erase /
// index_update (Transaction does, for every write path) or rebuild_indexes().
#pragma once

#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/chunk.h"
#include "core/record.h"
#include "core/table_index.h"

namespace tickdb {

// The standard typedefs of a forward iterator that yields T by value.
template <class T>
struct ValueIterator {
  using iterator_category = std::forward_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = T;
};

// A chunk's used slots, for plain loops over contiguous bytes. Iterating it yields the
// live records as RecordViews: a loop per chunk is the fastest way through a table.
struct ChunkSpan {
  const std::byte* records = nullptr;
  const std::uint64_t* ids = nullptr;
  const std::uint8_t* alive = nullptr;  // nullptr when every slot is live
  std::uint32_t count = 0;              // used slots
  std::uint32_t record_size = 0;
  const TableSchema* schema = nullptr;
  // The next chunk's records (nullptr for the last chunk): a loop over this chunk's records
  // may prefetch the same place of the next one as it goes (CompiledFilter does).
  const std::byte* next_records = nullptr;

  class iterator : public ValueIterator<RecordView> {
   public:
    iterator() = default;
    RecordView operator*() const { return RecordView(rec_, ids_[i_], schema_); }
    iterator& operator++() {
      ++i_;
      rec_ += rs_;
      if (alive_) [[unlikely]]
        skip_dead();  // only chunks with deleted records
      return *this;
    }
    iterator operator++(int) {
      auto c = *this;
      ++*this;
      return c;
    }
    bool operator==(const iterator& o) const { return i_ == o.i_; }  // of the same span

   private:
    friend struct ChunkSpan;
    iterator(const ChunkSpan& s, std::uint32_t i)
        : rec_(s.records + std::size_t{i} * s.record_size),
          ids_(s.ids),
          alive_(s.alive),
          schema_(s.schema),
          i_(i),
          n_(s.count),
          rs_(s.record_size) {
      if (alive_) skip_dead();
    }
    void skip_dead() {
      while (i_ < n_ && !alive_[i_]) {
        ++i_;
        rec_ += rs_;
      }
    }
    const std::byte* rec_ = nullptr;
    const std::uint64_t* ids_ = nullptr;
    const std::uint8_t* alive_ = nullptr;
    const TableSchema* schema_ = nullptr;
    std::uint32_t i_ = 0, n_ = 0, rs_ = 0;
  };
  iterator begin() const { return iterator(*this, 0); }
  iterator end() const { return iterator(*this, count); }
};

// A chunk's used slots for a writer (a chunk the writer owns).
struct MutableChunkSpan {
  std::byte* records = nullptr;
  const std::uint64_t* ids = nullptr;
  const std::uint8_t* alive = nullptr;  // never nullptr here: alive[i] != 0 for live slots
  std::uint32_t count = 0;
  std::uint32_t record_size = 0;
  bool all_alive = false;  // no dead slot among the first `count`: loops may skip the checks
};

// One chunk of a parallel update (see TableVersion::begin_parallel_update): the version's
// chunk `src` and the writer's chunk `dst` that replaces it (src == dst when the writer
// already owned it).
struct ChunkWork {
  const Chunk* src = nullptr;
  Chunk* dst = nullptr;
  std::uint32_t count = 0;  // used slots
  std::uint32_t record_size = 0;
  std::uint64_t owner = 0;
  std::shared_ptr<Chunk> fresh;  // the replacement made by fill(), installed by finish

  // Phase 2, on any thread, once per ChunkWork: unless the writer owns src already, makes a
  // fresh chunk and copies src's used slots into it (records, ids, live flags). Only then may
  // dst be read or written. resource_exhausted when memory runs out.
  Status fill();
  // Makes the fresh chunks of a run of works in one trip to the pool (fill() then copies).
  static Status allocate(std::span<ChunkWork> works);
  MutableChunkSpan span() const {
    return MutableChunkSpan{dst->records(), dst->ids(),  dst->alive(),
                            count,          record_size, dst->dead() == 0};
  }
};

class TableVersion {
 public:
  // An empty table owned by `owner` (the creating transaction).
  TableVersion(std::shared_ptr<const TableSchema> schema, std::uint64_t owner);

  const std::shared_ptr<const TableSchema>& schema() const { return schema_; }
  const std::string& name() const { return schema_->name(); }
  std::uint32_t record_size() const { return schema_->record_size(); }
  std::uint64_t count() const { return live_; }   // live records
  std::uint64_t slots() const { return slots_; }  // used slots, live or dead
  std::uint64_t capacity() const { return std::uint64_t{tree_.size()} * rpc_; }
  std::uint64_t next_id() const { return next_id_; }
  std::uint32_t records_per_chunk() const { return rpc_; }
  std::size_t chunk_count() const { return tree_.size(); }
  // Chunks that hold used slots.
  std::size_t used_chunk_count() const {
    return static_cast<std::size_t>((slots_ + rpc_ - 1) / rpc_);
  }
  const Chunk* chunk(std::size_t k) const { return tree_.get(k); }
  // Chunks [first, first + n) into out (first + n <= chunk_count()), faster than n chunk()s.
  void chunks(std::size_t first, std::size_t n, const Chunk** out) const {
    tree_.get_range(first, n, out);
  }
  ChunkSpan chunk_span(std::size_t k) const;
  // The chunks that hold used slots, as ChunkSpans: for (ChunkSpan c : t.chunks())
  //   for (RecordView r : c) ...   -- the fastest iteration (a plain loop per chunk).
  class ChunkRange {
   public:
    class iterator : public ValueIterator<ChunkSpan> {
     public:
      iterator() = default;
      iterator(const TableVersion* t, std::size_t k) : t_(t), k_(k) {}
      ChunkSpan operator*() const {
        t_->prefetch_ahead(k_);
        return t_->chunk_span(k_);
      }
      iterator& operator++() {
        ++k_;
        return *this;
      }
      iterator operator++(int) {
        auto c = *this;
        ++k_;
        return c;
      }
      bool operator==(const iterator& o) const { return k_ == o.k_; }

     private:
      const TableVersion* t_ = nullptr;
      std::size_t k_ = 0;
    };
    explicit ChunkRange(const TableVersion* t) : t_(t) {}
    iterator begin() const { return iterator(t_, 0); }
    iterator end() const { return iterator(t_, t_->used_chunk_count()); }

   private:
    const TableVersion* t_;
  };
  ChunkRange chunks() const { return ChunkRange(this); }
  // Scans call this at chunk k: starts loading chunk k+1's records and chunk k+2's header,
  // so the next chunk's stream is under way before the loop gets there.
  void prefetch_ahead(std::size_t k) const;
  std::uint64_t data_bytes() const { return live_ * schema_->record_size(); }

  // Slot of a live record with this id.
  std::optional<std::uint64_t> find_slot(std::uint64_t id) const;
  std::optional<RecordView> get(std::uint64_t id) const;
  bool contains(std::uint64_t id) const { return find_slot(id).has_value(); }
  // Bounds-checked access by slot: not_found for a slot out of range or dead.
  Result<RecordView> at_slot(std::uint64_t slot) const;
  // Slot access without checks (hot loops, behind an already-checked range).
  RecordView slot_unchecked(std::uint64_t slot) const {
    const Chunk* c = tree_.get(slot >> shift_);
    auto i = static_cast<std::uint32_t>(slot & (rpc_ - 1));
    return RecordView(c->records() + std::size_t{i} * schema_->record_size(), c->ids()[i],
                      schema_.get());
  }
  bool slot_alive(std::uint64_t slot) const {
    return tree_.get(slot >> shift_)->alive()[slot & (rpc_ - 1)] != 0;
  }

  // Iterates live records in id order, yielding RecordViews (no allocation). The state is a
  // plain struct the slow paths take and return by value, so the compiler keeps it in
  // registers in the per-record fast path.
  class iterator : public ValueIterator<RecordView> {
   public:
    iterator() = default;
    RecordView operator*() const { return RecordView(s_.rec, s_.ids[s_.i], s_.schema); }
    iterator& operator++() {
      s_.rec += s_.rs;
      if (++s_.i == s_.stop) [[unlikely]]
        s_ = next(s_);
      return *this;
    }
    iterator operator++(int) {
      auto c = *this;
      ++*this;
      return c;
    }
    bool operator==(const iterator& o) const { return s_.rec == o.s_.rec && s_.i == o.s_.i; }

   private:
    friend class TableVersion;
    // The fast path runs i up to `stop`: the next dead slot or the chunk's end.
    struct State {
      const std::byte* rec = nullptr;
      std::uint32_t i = 0, stop = 0, rs = 0, n = 0;
      const std::uint64_t* ids = nullptr;
      const std::uint8_t* alive = nullptr;
      std::size_t chunk = 0;
      const TableVersion* t = nullptr;
      const TableSchema* schema = nullptr;
    };
    explicit iterator(State s) : s_(s) {}
    static State load_chunk(State s);
    static State next(State s);  // at `stop`: skip dead slots, or go to the next chunk
    State s_;
  };
  iterator begin() const;
  iterator end() const { return iterator(); }

  // ---- writer API: only the transaction that owns this copy calls these ----

  // A mutable copy of a published version for transaction `owner`.
  std::shared_ptr<TableVersion> writable_copy(std::uint64_t owner) const;
  // Appends a record (record_size bytes) with the given id, which must be >= next_id().
  Status append(std::span<const std::byte> record, std::uint64_t id);
  // Loading (snapshots): appends n records (packed, n * record_size bytes) with their ids,
  // a chunk-sized run at a time. Ids must rise strictly, above every id already in the
  // table, and be neither 0 nor the reserved maximum; next_id() follows the last one.
  // invalid_argument naming the first bad id, before anything is appended; when memory runs
  // out half-way (resource_exhausted) the table is partly loaded: discard it.
  Status load_append(const std::byte* records, const std::uint64_t* ids, std::size_t n);
  // A writable pointer to the record in `slot` (copies its chunk once per transaction; marks
  // the slot written in the chunk's change history, chunk.h).
  Result<std::byte*> mutable_slot(std::uint64_t slot);
  // Marks the record in `slot` dead.
  Status kill_slot(std::uint64_t slot);
  // Capacity management: room for at least `records` slots / release unused chunks.
  Status reserve(std::uint64_t records);
  void shrink_to_fit();
  // The same live records under a new schema: fields kept by name get their values, new
  // fields their default. Dead slots are dropped. Ids and next_id are kept.
  Result<std::shared_ptr<TableVersion>> relayout(std::shared_ptr<const TableSchema> schema,
                                                 std::uint64_t owner) const;
  // Mutable spans over chunk k's used slots (copies the chunk once per transaction and forgets
  // its change history: a diff then compares every slot of it). Not
  // thread-safe: it may path-copy the tree. Take every span on one thread, then hand the
  // spans (disjoint memory) to workers.
  Result<MutableChunkSpan> mutable_chunk_span(std::size_t k);
  // Parallel updates. Phase 1 (one thread): one ChunkWork per used chunk. Phase 2 (workers):
  // ChunkWork::fill() on each, then the work on its span(). Phase 3 (one thread):
  // finish_parallel_update() puts the fresh chunks into the table (their change history
  // forgotten: phase 2 may have written any slot). Nothing of the table
  // changes before phase 3, so dropping the work at any point leaves it as it was (but the
  // chunks this writer already owned, which phase 2 changed in place: on failure, discard
  // the writer).
  std::vector<ChunkWork> begin_parallel_update() const;
  Status finish_parallel_update(std::vector<ChunkWork>& work);
  void set_next_id(std::uint64_t id) { next_id_ = id; }
  void rename(std::shared_ptr<const TableSchema> schema) { schema_ = std::move(schema); }
  std::uint64_t owner() const { return owner_; }

  // ---- indexes ----
  const std::vector<TableIndex>& indexes() const { return indexes_; }
  const TableIndex* find_index(std::string_view name) const;
  // The descriptions of every index, in name order (what GET /table/{name}/indexes lists).
  std::vector<IndexDescription> describe_indexes() const;
  // Writer API. The index_* calls keep every index in step with one record's change;
  // resource_exhausted when memory runs out (the indexes are then half-changed: poison).
  std::vector<TableIndex>& mutable_indexes() { return indexes_; }
  Status index_insert(const std::byte* record, std::uint64_t id);
  Status index_erase(const std::byte* record, std::uint64_t id);
  // `was` and `now` are the record's bytes before and after; only indexes whose fields
  // changed are touched. `changed_unique`, when given, gets the unique indexes touched.
  Status index_update(const std::byte* was, const std::byte* now, std::uint64_t id,
                      std::vector<std::string>* changed_unique = nullptr);
  // Every index rebuilt from the records (with check_unique, unique_violation when a unique
  // one has duplicates; the indexes are then as they were).
  Status rebuild_indexes(bool check_unique = true);

 private:
  Result<Chunk*> own_chunk(std::size_t k);
  // The chunk slot slots_ goes into: a fresh one at the end of the tree when the last is
  // full; else the last, owned (claim_one: by claiming that one slot when another writer's).
  Result<Chunk*> tail_chunk(bool claim_one);

  std::shared_ptr<const TableSchema> schema_;
  ChunkTree tree_;
  std::uint64_t slots_ = 0;
  std::uint64_t live_ = 0;
  std::uint64_t next_id_ = 1;
  std::uint32_t rpc_ = 1;
  unsigned shift_ = 0;
  std::uint64_t owner_ = 0;
  std::vector<TableIndex> indexes_;
};

}  // namespace tickdb
