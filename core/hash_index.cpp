#include "core/hash_index.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>

namespace tickdb {

using detail::HashEntry;
using detail::HashInner;
using detail::HashLeaf;
using detail::HashNode;
using detail::HashPtr;

void detail::destroy_hash_node(HashNode* n) {
  if (!n->leaf) {
    delete static_cast<HashInner*>(n);
    return;
  }
  auto* l = static_cast<HashLeaf*>(n);
  HashEntry* e = l->entries();
  for (std::uint32_t i = 0; i < l->n; ++i) e[i].~HashEntry();
  l->~HashLeaf();
  ::operator delete(static_cast<void*>(l));
}

namespace {
// Levels that still have hash bits: a leaf below them never splits.
constexpr unsigned kLevels = (64 + HashIndex::kBits - 1) / HashIndex::kBits;

unsigned slot_at(std::uint64_t h, unsigned level) {
  return static_cast<unsigned>((h >> (HashIndex::kBits * level)) & ((1u << HashIndex::kBits) - 1));
}

HashInner& own_inner(HashPtr& slot, std::uint64_t owner) {
  if (slot->owner != owner) {
    const auto& src = static_cast<const HashInner&>(*slot.get());
    // The copy bumps every child's count: ask for them all first so the misses overlap.
    for (const auto& k : src.kids)
      if (k) __builtin_prefetch(k.get(), 1);
    auto* c = new HashInner;
    for (std::size_t i = 0; i < std::size(c->kids); ++i) c->kids[i] = src.kids[i];
    c->owner = owner;
    slot = HashPtr(c);
  }
  return static_cast<HashInner&>(*slot.get());
}

// An id as the key of an entry's tree.
struct IdKey {
  explicit IdKey(std::uint64_t id) { encode_id(id, bytes); }
  std::byte bytes[kIdKeyBytes];
};

// The ids of an entry about to hold more than kInlineIds: its inline ids and `extra`, in
// one tree (built bottom-up: the ids are sorted).
HashEntry::Tree spill(const HashEntry& e, std::uint64_t extra, std::uint64_t owner) {
  std::uint64_t ids[detail::kInlineIds + 1];
  std::uint32_t n = 0;
  for (std::uint32_t i = 0, c = e.count(); i < c; ++i) ids[n++] = e.id(i);
  ids[n++] = extra;
  std::sort(ids, ids + n);
  std::byte keys[(detail::kInlineIds + 1) * kIdKeyBytes];
  for (std::uint32_t i = 0; i < n; ++i) encode_id(ids[i], keys + i * kIdKeyBytes);
  return std::make_shared<const OrderedIndex>(OrderedIndex::build(kIdKeyBytes, keys, n, owner));
}
}  // namespace

std::uint64_t HashIndex::hash(const std::byte* value, std::size_t n) {
  return XXH3_64bits(value, n);
}

std::ptrdiff_t HashIndex::entry_of(const HashLeaf& leaf, std::uint64_t h,
                                   const std::byte* value) const {
  const std::size_t st = leaf.stride, count = leaf.n;
  const std::byte* k = leaf.keys();
  for (std::size_t i = 0; i < count; ++i, k += st) {
    std::uint64_t kh;
    std::memcpy(&kh, k, 8);
    if (kh == h && std::memcmp(k + 8, value, value_size_) == 0)
      return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

void HashIndex::push_entry(HashLeaf& leaf, std::uint64_t h, const std::byte* value,
                           HashEntry e) const {
  std::byte* k = leaf.keys() + std::size_t{leaf.n} * leaf.stride;
  std::memcpy(k, &h, 8);
  if (value_size_) std::memcpy(k + 8, value, value_size_);
  new (leaf.entries() + leaf.n) HashEntry(std::move(e));
  ++leaf.n;
}

HashPtr HashIndex::new_leaf(std::uint32_t cap, std::uint64_t owner) const {
  const auto st = static_cast<std::uint32_t>(stride());
  void* mem = ::operator new(HashLeaf::block_bytes(cap, st));
  auto* l = new (mem) HashLeaf;
  l->leaf = true;
  l->owner = owner;
  l->cap = cap;
  l->stride = st;
  return HashPtr(l);
}

HashLeaf& HashIndex::own_leaf(HashPtr& slot, std::uint64_t owner, std::uint32_t need) const {
  auto& src = static_cast<HashLeaf&>(*slot.get());
  if (src.owner == owner && src.cap >= need) return src;
  // Another owner's leaf is copied with room for this write only (copies are the common
  // case: a leaf stays as small as it can); this owner's own full leaf doubles.
  const std::uint32_t cap = src.owner == owner ? std::max(need, src.cap * 2) : std::max(need, 1u);
  HashPtr c = new_leaf(cap, owner);
  auto& dst = static_cast<HashLeaf&>(*c.get());
  std::memcpy(dst.keys(), src.keys(), std::size_t{src.n} * src.stride);
  const HashEntry* from = src.entries();
  HashEntry* to = dst.entries();
  for (std::uint32_t i = 0; i < src.n; ++i, ++dst.n) new (to + i) HashEntry(from[i]);
  slot = std::move(c);
  return dst;
}

HashIndex::Match HashIndex::find(const std::byte* value) const {
  Match m;
  const std::uint64_t h = hash(value, value_size_);
  const HashNode* n = root_.get();
  for (unsigned level = 0; n && !n->leaf; ++level)
    n = static_cast<const HashInner*>(n)->kids[slot_at(h, level)].get();
  if (!n) return m;
  const auto& leaf = static_cast<const HashLeaf&>(*n);
  auto i = entry_of(leaf, h, value);
  if (i >= 0) m.e_ = leaf.entries() + i;
  return m;
}

bool HashIndex::contains(const std::byte* value, std::uint64_t id) const {
  Match m = find(value);
  if (m.empty()) return false;
  const HashEntry& e = *m.e_;
  if (!e.spilled()) {
    for (std::uint32_t i = 0, c = e.count(); i < c; ++i)
      if (e.id(i) == id) return true;
    return false;
  }
  return e.tree()->contains(IdKey(id).bytes);
}

// insert and erase walk once, owning the path as they go: a pair that is there (insert) or
// not (erase) costs a path copy and changes nothing, which callers do not do.
bool HashIndex::insert(const std::byte* value, std::uint64_t id, std::uint64_t owner) {
  if (id == 0 || id == HashEntry::kSpilled)
    throw std::invalid_argument("hash index: " + std::to_string(id) + " is not a record id");
  const std::uint64_t h = hash(value, value_size_);
  HashPtr* slot = &root_;
  for (unsigned level = 0;; ++level) {
    if (!*slot) *slot = new_leaf(1, owner);
    if (!(*slot)->leaf) {
      slot = &own_inner(*slot, owner).kids[slot_at(h, level)];
      continue;
    }
    const bool bottom = level + 1 >= kLevels;
    auto& cur = static_cast<HashLeaf&>(*slot->get());
    const bool full = cur.n >= kLeafEntries && !bottom;
    // Room for one more entry, unless the leaf is full (then it splits, below, if the value
    // is not there already).
    HashLeaf& leaf = own_leaf(*slot, owner, full ? cur.n : cur.n + 1);
    auto i = entry_of(leaf, h, value);
    if (i >= 0) {  // another id of a value that is there
      HashEntry& e = leaf.entries()[i];
      if (!e.spilled()) {
        const std::uint32_t c = e.count();
        std::uint32_t at = 0;
        while (at < c && e.id(at) < id) ++at;
        if (at < c && e.id(at) == id) return false;
        if (c < detail::kInlineIds) {
          for (std::uint32_t j = c; j > at; --j) e.set_id(j, e.id(j - 1));
          e.set_id(at, id);
        } else {
          e.set_tree(spill(e, id, owner));
        }
        ++size_;
        return true;
      }
      auto more = std::make_shared<OrderedIndex>(*e.tree());
      if (!more->insert(IdKey(id).bytes, owner)) return false;
      e.set_tree(std::move(more));
      ++size_;
      return true;
    }
    if (!full) {
      push_entry(leaf, h, value, HashEntry(id));
      ++size_;
      return true;
    }
    // A full leaf: becomes an inner node over leaves one level down (each sized for what it
    // gets, the one the new value goes to with room for it); then try again there.
    std::uint32_t per[std::size_t{1} << kBits] = {};
    std::uint64_t hashes[kLeafEntries];
    for (std::uint32_t j = 0; j < leaf.n; ++j) {
      std::memcpy(&hashes[j], leaf.keys() + std::size_t{j} * leaf.stride, 8);
      ++per[slot_at(hashes[j], level)];
    }
    auto* inner = new HashInner;
    HashPtr held(inner);
    inner->owner = owner;
    for (std::uint32_t j = 0; j < leaf.n; ++j) {
      const unsigned at = slot_at(hashes[j], level);
      auto& kid = inner->kids[at];
      if (!kid) kid = new_leaf(per[at] + (at == slot_at(h, level) ? 1 : 0), owner);
      push_entry(static_cast<HashLeaf&>(*kid.get()), hashes[j],
                 leaf.keys() + std::size_t{j} * leaf.stride + 8, std::move(leaf.entries()[j]));
    }
    *slot = std::move(held);
    slot = &inner->kids[slot_at(h, level)];
  }
}

bool HashIndex::erase(const std::byte* value, std::uint64_t id, std::uint64_t owner) {
  const std::uint64_t h = hash(value, value_size_);
  HashPtr* path[kLevels + 1];
  HashPtr* slot = &root_;
  unsigned depth = 0;
  if (!*slot) return false;
  for (unsigned level = 0; !(*slot)->leaf; ++level) {
    path[depth++] = slot;
    slot = &own_inner(*slot, owner).kids[slot_at(h, level)];
    if (!*slot) return false;
  }
  HashLeaf& leaf = own_leaf(*slot, owner, static_cast<const HashLeaf&>(*slot->get()).n);
  const auto found = entry_of(leaf, h, value);
  if (found < 0) return false;
  const auto i = static_cast<std::uint32_t>(found);
  HashEntry& e = leaf.entries()[i];
  if (e.spilled()) {
    auto more = std::make_shared<OrderedIndex>(*e.tree());
    if (!more->erase(IdKey(id).bytes, owner)) return false;
    --size_;
    if (more->size() <= detail::kInlineIds) {  // back inline
      e.clear();
      std::uint32_t j = 0;
      for (auto c = more->begin(); c.valid(); c.next()) e.set_id(j++, decode_id(c.key()));
    } else {
      e.set_tree(std::move(more));
    }
    return true;
  }
  const std::uint32_t c = e.count();
  std::uint32_t at = 0;
  while (at < c && e.id(at) != id) ++at;
  if (at == c) return false;
  --size_;
  if (c > 1) {
    for (std::uint32_t j = at; j + 1 < c; ++j) e.set_id(j, e.id(j + 1));
    e.set_id(c - 1, 0);
    return true;
  }
  // The value's only id: the entry goes (the last one takes its place).
  const std::uint32_t last = leaf.n - 1;
  const std::size_t st = leaf.stride;
  if (i != last) {
    leaf.entries()[i] = std::move(leaf.entries()[last]);
    std::memcpy(leaf.keys() + i * st, leaf.keys() + last * st, st);
  }
  leaf.entries()[last].~HashEntry();
  --leaf.n;
  if (leaf.n) return true;
  slot->reset();
  // Inner nodes left with no child are unlinked too.
  while (depth > 0) {
    auto* up = path[--depth];
    const auto& in = static_cast<const HashInner&>(*up->get());
    for (const auto& k : in.kids)
      if (k) return true;
    up->reset();
  }
  return true;
}

std::size_t HashIndex::bytes() const {
  std::size_t total = 0;
  auto walk = [&](auto& self, const HashNode* n) -> void {
    if (!n) return;
    if (n->leaf) {
      const auto& l = static_cast<const HashLeaf&>(*n);
      total += HashLeaf::block_bytes(l.cap, l.stride);
      for (std::uint32_t i = 0; i < l.n; ++i)
        if (l.entries()[i].spilled())
          total += l.entries()[i].tree()->bytes() + sizeof(OrderedIndex) + 16;
      return;
    }
    total += sizeof(HashInner);
    for (const auto& k : static_cast<const HashInner&>(*n).kids) self(self, k.get());
  };
  walk(walk, root_.get());
  return total;
}

}  // namespace tickdb
