// HashIndex: a persistent (copy-on-write, path-copying) hash trie of (value bytes -> ids),
// the structure behind `hash` indexes: one lookup finds every id whose indexed fields hold
// one value, in O(1) expected node visits.
//
// The trie is keyed by XXH3-64 of the encoded value (index_key.h: -0.0 and 0.0 encode the
// same, so they hash the same). Inner nodes have 16 children, one per 4 bits of the hash
// (a copy bumps every child's count: 16 measured faster than 32 for BM_UpdateIndexed);
// leaves hold up to 16 entries (unbounded once the 64 bits are used up). An entry holds one
// value, its hash and its ids: up to kInlineIds of them inline (most values of a hash index
// are held by a few records: a lookup then reads no other node), all of them in an
// OrderedIndex of 8-byte big-endian ids beyond that (so a value held by millions of records
// costs O(log n) per write). A leaf is one block: its header, each entry's hash and value
// side by side (the scan for a value reads a line or two), then the entries; the copy a
// write makes is sized for what the leaf holds plus what the write adds.
//
// Nodes carry the owner id of the writer that made them, as in ChunkTree and OrderedIndex: a
// copy is O(1), a write copies only the nodes on its path the writer does not own yet.
//
// Thread-safety: a published HashIndex is immutable; const methods are safe from many threads
// while the caller holds it. insert/erase belong to the owner, before publication; they may
// throw std::bad_alloc, leaving this copy unspecified (the caller poisons the transaction).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "core/index_key.h"
#include "core/ordered_index.h"

namespace tickdb {

namespace detail {
inline constexpr std::uint32_t kInlineIds = 4;
// The ids of one value in 32 bytes: up to kInlineIds of them inline, ascending, the unused
// slots 0 (a record id is never 0 nor the largest u64: table.h); or all of them (more than
// kInlineIds) in a tree, whose pointer takes the first slots while the last holds kSpilled.
class HashEntry {
 public:
  using Tree = std::shared_ptr<const OrderedIndex>;
  static constexpr std::uint64_t kSpilled = ~std::uint64_t{0};

  HashEntry() = default;
  explicit HashEntry(std::uint64_t id) { set_id(0, id); }
  HashEntry(const HashEntry& o) { copy_from(o); }
  HashEntry(HashEntry&& o) noexcept { move_from(o); }
  HashEntry& operator=(const HashEntry& o) {
    if (this != &o) {
      clear();
      copy_from(o);
    }
    return *this;
  }
  HashEntry& operator=(HashEntry&& o) noexcept {
    if (this != &o) {
      clear();
      move_from(o);
    }
    return *this;
  }
  ~HashEntry() { clear(); }

  bool spilled() const { return word(kInlineIds - 1) == kSpilled; }
  // Inline: how many ids, and the i-th.
  std::uint32_t count() const {
    std::uint32_t n = 0;
    while (n < kInlineIds && word(n) != 0) ++n;
    return n;
  }
  std::uint64_t id(std::uint32_t i) const { return word(i); }
  void set_id(std::uint32_t i, std::uint64_t v) { std::memcpy(raw_ + 8 * i, &v, 8); }
  // Spilled: the tree of every id (8-byte big-endian keys).
  const Tree& tree() const { return *std::launder(reinterpret_cast<const Tree*>(raw_)); }
  void set_tree(Tree t) {
    clear();
    new (raw_) Tree(std::move(t));
    set_id(kInlineIds - 1, kSpilled);
  }
  std::size_t size() const { return spilled() ? tree()->size() : count(); }
  // Back to no ids (the tree, if any, released).
  void clear() {
    if (spilled()) std::launder(reinterpret_cast<Tree*>(raw_))->~Tree();
    std::memset(raw_, 0, sizeof raw_);
  }

 private:
  static_assert(sizeof(Tree) <= 8 * (kInlineIds - 1));
  std::uint64_t word(std::uint32_t i) const {
    std::uint64_t v;
    std::memcpy(&v, raw_ + 8 * i, 8);
    return v;
  }
  void copy_from(const HashEntry& o) {
    if (o.spilled())
      set_tree(o.tree());
    else
      std::memcpy(raw_, o.raw_, sizeof raw_);
  }
  void move_from(HashEntry& o) noexcept {
    if (o.spilled()) {
      new (raw_) Tree(std::move(*std::launder(reinterpret_cast<Tree*>(o.raw_))));
      set_id(kInlineIds - 1, kSpilled);
      o.clear();
    } else {
      std::memcpy(raw_, o.raw_, sizeof raw_);
    }
  }
  alignas(8) std::byte raw_[8 * kInlineIds] = {};
};
static_assert(sizeof(HashEntry) == 8 * kInlineIds);
// Nodes are counted intrusively (as OrderedIndex's): an 8-byte child pointer, and a leaf is
// one block (its header, then its keys, then its entries).
struct HashNode {
  std::atomic<std::uint32_t> refs{1};
  bool leaf = false;
  std::uint64_t owner = 0;
};
void destroy_hash_node(HashNode* n);
class HashPtr {
 public:
  HashPtr() = default;
  explicit HashPtr(HashNode* adopt) : p_(adopt) {}
  HashPtr(const HashPtr& o) : p_(o.p_) {
    if (p_) p_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  HashPtr(HashPtr&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  HashPtr& operator=(HashPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~HashPtr() { reset(); }
  void reset() {
    if (p_ && p_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy_hash_node(p_);
    p_ = nullptr;
  }
  HashNode* get() const { return p_; }
  HashNode* operator->() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  HashNode* p_ = nullptr;
};
inline constexpr unsigned kHashBits = 4;  // children per inner node: 1 << kHashBits
struct HashInner : HashNode {
  HashPtr kids[std::size_t{1} << kHashBits];
};
// A leaf of `cap` entries, `n` of them used. After the header: per entry its hash (8 bytes,
// native order) then its value (`stride` = 8 + value size bytes in all), `cap` of them; then,
// 8-aligned, the entries (the first `n` constructed).
struct HashLeaf : HashNode {
  std::uint32_t n = 0, cap = 0, stride = 0;
  std::byte* keys() { return reinterpret_cast<std::byte*>(this + 1); }
  const std::byte* keys() const { return reinterpret_cast<const std::byte*>(this + 1); }
  static std::size_t entries_offset(std::uint32_t cap, std::uint32_t stride) {
    return (sizeof(HashLeaf) + std::size_t{cap} * stride + 7) & ~std::size_t{7};
  }
  HashEntry* entries() {
    return std::launder(reinterpret_cast<HashEntry*>(reinterpret_cast<std::byte*>(this) +
                                                     entries_offset(cap, stride)));
  }
  const HashEntry* entries() const { return const_cast<HashLeaf*>(this)->entries(); }
  static std::size_t block_bytes(std::uint32_t cap, std::uint32_t stride) {
    return entries_offset(cap, stride) + std::size_t{cap} * sizeof(HashEntry);
  }
};
}  // namespace detail

class HashIndex {
 public:
  static constexpr unsigned kBits = detail::kHashBits;
  static constexpr std::size_t kLeafEntries = 16;

  HashIndex() = default;
  explicit HashIndex(std::uint32_t value_size) : value_size_(value_size) {}

  // The hash of an encoded value (value_size bytes).
  static std::uint64_t hash(const std::byte* value, std::size_t n);

  std::uint32_t value_size() const { return value_size_; }
  std::size_t size() const { return size_; }  // (value, id) pairs
  std::size_t bytes() const;                  // of the nodes this version reaches

  // ---- writer API ----
  // Adds (value, id): false when it was there. Ids are record ids: never 0 nor the largest
  // u64 (std::invalid_argument).
  bool insert(const std::byte* value, std::uint64_t id, std::uint64_t owner);
  // Removes (value, id): false when it was not there.
  bool erase(const std::byte* value, std::uint64_t id, std::uint64_t owner);

  // ---- readers ----
  // The ids of one value; valid while the caller holds the index.
  class Match {
   public:
    std::size_t size() const { return e_ ? e_->size() : 0; }
    bool empty() const { return e_ == nullptr; }
    // Calls fn(id) for each id in ascending order until fn returns false.
    template <class F>
    void for_each(F&& fn) const {
      if (!e_) return;
      if (!e_->spilled()) {
        for (std::uint32_t i = 0; i < detail::kInlineIds && e_->id(i) != 0; ++i)
          if (!fn(e_->id(i))) return;
        return;
      }
      for (auto c = e_->tree()->begin(); c.valid(); c.next())
        if (!fn(decode_id(c.key()))) return;
    }
    std::vector<std::uint64_t> ids() const {
      std::vector<std::uint64_t> out;
      out.reserve(size());
      for_each([&](std::uint64_t id) {
        out.push_back(id);
        return true;
      });
      return out;
    }

   private:
    friend class HashIndex;
    const detail::HashEntry* e_ = nullptr;
  };
  Match find(const std::byte* value) const;
  bool contains(const std::byte* value, std::uint64_t id) const;

 private:
  // The entry of `value` in `leaf`, or -1.
  std::ptrdiff_t entry_of(const detail::HashLeaf& leaf, std::uint64_t h,
                          const std::byte* value) const;
  // Appends an entry of (h, value) holding `e` to `leaf` (which has room).
  void push_entry(detail::HashLeaf& leaf, std::uint64_t h, const std::byte* value,
                  detail::HashEntry e) const;
  detail::HashPtr new_leaf(std::uint32_t cap, std::uint64_t owner) const;
  // The leaf in `slot`, owned by `owner` and with room for `need` entries: copied (to
  // exactly `need`) when another owner made it, grown when it is this owner's but full.
  detail::HashLeaf& own_leaf(detail::HashPtr& slot, std::uint64_t owner, std::uint32_t need) const;
  std::size_t stride() const { return 8 + std::size_t{value_size_}; }

  detail::HashPtr root_;
  std::size_t size_ = 0;
  std::uint32_t value_size_ = 0;
};

}  // namespace tickdb
