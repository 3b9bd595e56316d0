// OrderedIndex: a persistent (copy-on-write, path-copying) B+tree of fixed-size byte keys,
// compared with memcmp. Secondary indexes keep their order-preserving keys here (see
// index_key.h: the record id is the last key part, so every key is unique).
//
// Nodes carry the owner id of the writer that made them, as ChunkTree's do: a copy of an
// OrderedIndex is O(1) (it shares the root), and a write copies only the nodes on its path
// that the writing owner does not own yet, so one write costs O(log n) whatever the size and
// later writes of the same transaction to the same leaves copy nothing. Inner nodes hold, per
// child, a lower bound of the child's keys (the first key it had when it was made); erasing
// keeps that bound valid, and a node emptied by erases is unlinked. Underfull nodes are not
// merged: the depth stays that of the largest size the tree had. A tree's first leaf holds 8
// keys and doubles up to a full leaf before the tree splits, so a small tree (the ids of one
// value of a hash index) takes the bytes its keys need.
//
// Thread-safety: a published OrderedIndex (reachable from a published version) is immutable;
// const methods and cursors are safe from many threads for as long as the caller holds the
// index (a cursor points into its nodes). insert/erase belong to the one writer whose owner
// id is passed, before publication. They may throw std::bad_alloc, leaving this copy in an
// unspecified (but destructible) state: the caller poisons the transaction.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

namespace tickdb {

// Bytes of keys per leaf (capacity = this / key size, at least 8) and children per inner
// node, tuned with BM_UpdateIndexed and BM_InsertIndexed at 10M records (the environment
// variables of the same names override them for such runs): fan 16 / 1 KiB leaves measured
// 3.95 us per update and 951k inserts/s against 4.3-5.0 us and 690-700k/s for fans 32 and 64.
#ifndef TICKDB_INDEX_LEAF_BYTES
#define TICKDB_INDEX_LEAF_BYTES 1024
#endif
#ifndef TICKDB_INDEX_FAN
#define TICKDB_INDEX_FAN 16
#endif

namespace detail {
struct OiNode;
void destroy_node(OiNode* n);
// An intrusive reference to a node: one allocation per node, 8-byte children, and a copy
// can prefetch the child's count (it sits in the child's header).
class OiPtr {
 public:
  OiPtr() = default;
  explicit OiPtr(OiNode* adopt) : p_(adopt) {}
  OiPtr(const OiPtr& o);
  OiPtr(OiPtr&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  OiPtr& operator=(OiPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~OiPtr() { reset(); }
  void reset();
  OiNode* get() const { return p_; }
  OiNode* operator->() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  OiNode* p_ = nullptr;
};
struct OiNode {
  std::atomic<std::uint32_t> refs{1};
  std::uint32_t n = 0;    // leaf: keys; inner: children
  std::uint32_t cap = 0;  // capacity in keys / children
  bool leaf = true;
  std::uint64_t owner = 0;
  // Storage follows the header in the same block: inner nodes `cap` children then `cap`
  // lower bounds; leaves `cap` keys.
  OiPtr* kids() { return reinterpret_cast<OiPtr*>(this + 1); }
  const OiPtr* kids() const { return reinterpret_cast<const OiPtr*>(this + 1); }
  std::byte* keys() {
    return reinterpret_cast<std::byte*>(this + 1) + (leaf ? 0 : cap * sizeof(OiPtr));
  }
  const std::byte* keys() const { return const_cast<OiNode*>(this)->keys(); }
};
inline OiPtr::OiPtr(const OiPtr& o) : p_(o.p_) {
  if (p_) p_->refs.fetch_add(1, std::memory_order_relaxed);
}
inline void OiPtr::reset() {
  if (p_ && p_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy_node(p_);
  p_ = nullptr;
}
}  // namespace detail

class OrderedIndex {
 public:
  static constexpr unsigned kMaxDepth = 24;

  OrderedIndex() = default;
  explicit OrderedIndex(std::uint32_t key_size);

  std::uint32_t key_size() const { return key_size_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes of the nodes this version reaches (walks the inner nodes).
  std::size_t bytes() const;

  // ---- writer API (the owner's, before publication) ----
  // Adds a key (key_size() bytes): false when it was there already.
  bool insert(const std::byte* key, std::uint64_t owner);
  // Removes a key: false when it was not there.
  bool erase(const std::byte* key, std::uint64_t owner);
  // A tree of `n` keys (n * key_size bytes, sorted strictly ascending), built bottom-up in
  // O(n): rebuilding an index from a table's records sorts the keys and calls this.
  static OrderedIndex build(std::uint32_t key_size, const std::byte* keys, std::size_t n,
                            std::uint64_t owner);

  // ---- readers ----
  bool contains(const std::byte* key) const;

  // A position in the tree: at a key, or at the end (valid() false). next() and prev() move
  // by one key; prev() from the end goes to the last key, prev() from the first key makes
  // the cursor invalid for good.
  class Cursor {
   public:
    Cursor() = default;
    bool valid() const { return depth_ && idx_[depth_ - 1] < path_[depth_ - 1]->n; }
    // The key (key_size bytes); only while valid().
    const std::byte* key() const {
      const detail::OiNode* l = path_[depth_ - 1];
      return l->keys() + std::size_t{idx_[depth_ - 1]} * key_size_;
    }
    std::span<const std::byte> key_span() const { return {key(), key_size_}; }
    void next();
    void prev();

   private:
    friend class OrderedIndex;
    void settle();  // at a leaf's end: move to the next leaf's first key, if any
    const detail::OiNode* path_[kMaxDepth] = {};
    std::uint32_t idx_[kMaxDepth] = {};
    std::uint32_t depth_ = 0;
    std::uint32_t key_size_ = 0;
  };

  Cursor begin() const;
  Cursor end() const;
  // The first key whose first probe.size() bytes compare >= probe (memcmp order): with a
  // full key an exact lower bound, with a shorter probe (a prefix of the key parts) the
  // first key of that prefix or after it.
  Cursor lower_bound(std::span<const std::byte> probe) const;
  // The first key whose first probe.size() bytes compare > probe: the end of a prefix range.
  Cursor upper_bound(std::span<const std::byte> probe) const;
  // Keys with lo <= key[:lo.size()] and key[:hi.size()] < hi (hi empty: no upper end),
  // counted by walking them: O(log n + count).
  std::size_t count_range(std::span<const std::byte> lo, std::span<const std::byte> hi) const;

 private:
  detail::OiPtr new_leaf(std::uint64_t owner, std::uint32_t cap = 0) const;  // 0: leaf_cap_
  detail::OiPtr new_inner(std::uint64_t owner) const;
  // A copy of `n` owned by `owner`, with capacity `cap` (0: n's; a larger one to grow it).
  detail::OiPtr copy_node(const detail::OiNode& n, std::uint64_t owner,
                          std::uint32_t cap = 0) const;
  void own(detail::OiPtr& slot, std::uint64_t owner) const;
  detail::OiPtr leaf_insert(detail::OiNode* l, std::uint32_t pos, const std::byte* key,
                            std::uint64_t owner) const;
  detail::OiPtr inner_insert(detail::OiNode* in, std::uint32_t pos, detail::OiPtr child,
                             std::uint64_t owner) const;
  Cursor seek(std::span<const std::byte> probe, bool strict) const;

  detail::OiPtr root_;
  std::size_t size_ = 0;
  std::uint32_t key_size_ = 0;
  std::uint32_t depth_ = 0;  // node levels, 0 when empty
  std::uint32_t leaf_cap_ = 8;
  std::uint32_t fan_ = TICKDB_INDEX_FAN;
};

}  // namespace tickdb
