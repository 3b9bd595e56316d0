#include "core/hash_index.h"

#include <xxhash.h>

#include <cstring>

namespace tickdb {

using detail::HashEntry;
using detail::HashInner;
using detail::HashLeaf;
using detail::HashNode;

namespace {
// Levels that still have hash bits: a leaf below them never splits.
constexpr unsigned kLevels = (64 + HashIndex::kBits - 1) / HashIndex::kBits;

unsigned slot_at(std::uint64_t h, unsigned level) {
  return static_cast<unsigned>((h >> (HashIndex::kBits * level)) & ((1u << HashIndex::kBits) - 1));
}

HashLeaf& own_leaf(std::shared_ptr<HashNode>& slot, std::uint64_t owner) {
  if (slot->owner != owner) {
    auto c = std::make_shared<HashLeaf>(static_cast<const HashLeaf&>(*slot));
    c->owner = owner;
    slot = std::move(c);
  }
  return static_cast<HashLeaf&>(*slot);
}

HashInner& own_inner(std::shared_ptr<HashNode>& slot, std::uint64_t owner) {
  if (slot->owner != owner) {
    const auto& src = static_cast<const HashInner&>(*slot);
    for (const auto& k : src.kids)
      if (k) __builtin_prefetch(reinterpret_cast<const char*>(k.get()) - 16, 1);
    auto c = std::make_shared<HashInner>(src);
    c->owner = owner;
    slot = std::move(c);
  }
  return static_cast<HashInner&>(*slot);
}

std::shared_ptr<HashLeaf> new_leaf(std::uint64_t owner) {
  auto l = std::make_shared<HashLeaf>();
  l->owner = owner;
  l->leaf = true;
  return l;
}

std::string id_key(std::uint64_t id) {
  std::string k(8, '\0');
  encode_id(id, reinterpret_cast<std::byte*>(k.data()));
  return k;
}
}  // namespace

std::uint64_t HashIndex::hash(const std::byte* value, std::size_t n) {
  return XXH3_64bits(value, n);
}

std::ptrdiff_t HashIndex::entry_of(const HashLeaf& leaf, std::uint64_t h,
                                   const std::byte* value) const {
  for (std::size_t i = 0; i < leaf.entries.size(); ++i)
    if (leaf.entries[i].hash == h &&
        (value_size_ == 0 ||
         std::memcmp(leaf.values.data() + i * value_size_, value, value_size_) == 0))
      return static_cast<std::ptrdiff_t>(i);
  return -1;
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
  if (i >= 0) m.e_ = &leaf.entries[static_cast<std::size_t>(i)];
  return m;
}

bool HashIndex::contains(const std::byte* value, std::uint64_t id) const {
  Match m = find(value);
  if (m.empty()) return false;
  if (!m.e_->more) return m.e_->id == id;
  return m.e_->more->contains(reinterpret_cast<const std::byte*>(id_key(id).data()));
}

// insert and erase walk once, owning the path as they go: a pair that is there (insert) or
// not (erase) costs a path copy and changes nothing, which callers do not do.
bool HashIndex::insert(const std::byte* value, std::uint64_t id, std::uint64_t owner) {
  const std::uint64_t h = hash(value, value_size_);
  std::shared_ptr<HashNode>* slot = &root_;
  for (unsigned level = 0;; ++level) {
    if (!*slot) *slot = new_leaf(owner);
    if (!(*slot)->leaf) {
      slot = &own_inner(*slot, owner).kids[slot_at(h, level)];
      continue;
    }
    HashLeaf& leaf = own_leaf(*slot, owner);
    auto i = entry_of(leaf, h, value);
    if (i >= 0) {  // another id of a value that is there
      HashEntry& e = leaf.entries[static_cast<std::size_t>(i)];
      if (!e.more && e.id == id) return false;
      auto more = e.more ? std::make_shared<OrderedIndex>(*e.more)
                         : std::make_shared<OrderedIndex>(kIdKeyBytes);
      if (!e.more) more->insert(reinterpret_cast<const std::byte*>(id_key(e.id).data()), owner);
      if (!more->insert(reinterpret_cast<const std::byte*>(id_key(id).data()), owner)) return false;
      e.more = std::move(more);
      ++size_;
      return true;
    }
    if (leaf.entries.size() < kLeafEntries || level + 1 >= kLevels) {
      leaf.entries.push_back({h, id, nullptr});
      leaf.values.insert(leaf.values.end(), value, value + value_size_);
      ++size_;
      return true;
    }
    // A full leaf: becomes an inner node over leaves one level down; then try again there.
    auto inner = std::make_shared<HashInner>();
    inner->owner = owner;
    for (std::size_t j = 0; j < leaf.entries.size(); ++j) {
      auto& kid = inner->kids[slot_at(leaf.entries[j].hash, level)];
      if (!kid) kid = new_leaf(owner);
      auto& kl = static_cast<HashLeaf&>(*kid);
      kl.entries.push_back(leaf.entries[j]);
      const std::byte* v = leaf.values.data() + j * value_size_;
      kl.values.insert(kl.values.end(), v, v + value_size_);
    }
    *slot = std::move(inner);
    slot = &static_cast<HashInner&>(**slot).kids[slot_at(h, level)];
  }
}

bool HashIndex::erase(const std::byte* value, std::uint64_t id, std::uint64_t owner) {
  const std::uint64_t h = hash(value, value_size_);
  std::shared_ptr<HashNode>* path[kLevels + 1];
  std::shared_ptr<HashNode>* slot = &root_;
  unsigned depth = 0;
  if (!*slot) return false;
  for (unsigned level = 0; !(*slot)->leaf; ++level) {
    path[depth++] = slot;
    slot = &own_inner(*slot, owner).kids[slot_at(h, level)];
    if (!*slot) return false;
  }
  HashLeaf& leaf = own_leaf(*slot, owner);
  const auto found = entry_of(leaf, h, value);
  if (found < 0) return false;
  const auto i = static_cast<std::size_t>(found);
  HashEntry& e = leaf.entries[i];
  if (!e.more && e.id != id) return false;
  if (e.more) {
    auto more = std::make_shared<OrderedIndex>(*e.more);
    if (!more->erase(reinterpret_cast<const std::byte*>(id_key(id).data()), owner)) return false;
    --size_;
    if (more->size() == 1) {
      e.id = decode_id(more->begin().key());
      e.more.reset();
    } else {
      e.more = std::move(more);
    }
    return true;
  }
  --size_;
  // The value's only id: the entry goes (the last one takes its place).
  const std::size_t last = leaf.entries.size() - 1;
  if (i != last) {
    leaf.entries[i] = std::move(leaf.entries[last]);
    std::memcpy(leaf.values.data() + i * value_size_, leaf.values.data() + last * value_size_,
                value_size_);
  }
  leaf.entries.pop_back();
  leaf.values.resize(last * value_size_);
  if (!leaf.entries.empty()) return true;
  slot->reset();
  // Inner nodes left with no child are unlinked too.
  while (depth > 0) {
    auto* up = path[--depth];
    const auto& in = static_cast<const HashInner&>(**up);
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
      total +=
          sizeof(HashLeaf) + 16 + l.entries.capacity() * sizeof(HashEntry) + l.values.capacity();
      for (const auto& e : l.entries)
        if (e.more) total += e.more->bytes() + sizeof(OrderedIndex) + 16;
      return;
    }
    total += sizeof(HashInner) + 16;
    for (const auto& k : static_cast<const HashInner&>(*n).kids) self(self, k.get());
  };
  walk(walk, root_.get());
  return total;
}

}  // namespace tickdb
