#include "core/ordered_index.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

namespace tickdb {

using detail::OiNode;
using detail::OiPtr;

void detail::destroy_node(OiNode* n) {
  if (!n->leaf)
    for (std::uint32_t i = 0; i < n->cap; ++i) n->kids()[i].~OiPtr();
  n->~OiNode();
  ::operator delete(static_cast<void*>(n));
}

namespace {
std::size_t node_bytes(bool leaf, std::uint32_t cap, std::uint32_t ks) {
  return sizeof(OiNode) + (leaf ? 0 : std::size_t{cap} * sizeof(OiPtr)) + std::size_t{cap} * ks;
}

OiPtr make_node(bool leaf, std::uint32_t cap, std::uint32_t ks, std::uint64_t owner) {
  void* mem = ::operator new(node_bytes(leaf, cap, ks));
  auto* n = new (mem) OiNode;
  n->owner = owner;
  n->cap = cap;
  n->leaf = leaf;
  if (!leaf)
    for (std::uint32_t i = 0; i < cap; ++i) new (&n->kids()[i]) OiPtr();
  return OiPtr(n);
}

// memcmp order, inlined: keys are short (a few words), and a libc call per probe of a binary
// search cost a fifth of an indexed update.
inline int cmp(const std::byte* a, const std::byte* b, std::size_t len) {
  static_assert(std::endian::native == std::endian::little);
  for (; len >= 8; a += 8, b += 8, len -= 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a, 8);
    std::memcpy(&y, b, 8);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
  }
  for (; len; ++a, ++b, --len)
    if (*a != *b) return std::to_integer<unsigned>(*a) < std::to_integer<unsigned>(*b) ? -1 : 1;
  return 0;
}

// First i in [from, n) with key_i (first len bytes) >= probe (strict) or > probe (!strict).
std::uint32_t search(const std::byte* keys, std::uint32_t from, std::uint32_t n, std::uint32_t ks,
                     const std::byte* probe, std::size_t len, bool strict) {
  std::uint32_t lo = from, hi = n;
  while (lo < hi) {
    std::uint32_t mid = lo + (hi - lo) / 2;
    int c = cmp(keys + std::size_t{mid} * ks, probe, len);
    if (strict ? c < 0 : c <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// A binary search over a cold node touches several cache lines, one after the other: asking
// for all of the node's keys first makes those misses overlap (one round trip per level).
inline void prefetch_keys(const OiNode* n, std::uint32_t ks) {
  const char* k = reinterpret_cast<const char*>(n->keys());
  const std::size_t bytes = std::size_t{n->n} * ks;
  for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(k + off);
}

// The child of an inner node to descend into: the last one whose lower bound is < probe
// (strict) or <= probe (!strict); child 0 when there is none.
std::uint32_t child_for(const OiNode* n, std::uint32_t ks, const std::byte* probe, std::size_t len,
                        bool strict) {
  prefetch_keys(n, ks);
  std::uint32_t i = search(n->keys(), 1, n->n, ks, probe, len, strict);
  return i - 1;
}

const std::byte* min_key(const OiNode* n) {
  return n->keys();
}
}  // namespace

namespace {
// The node sizes, from the build's defaults or (for tuning runs of the benchmarks) the
// environment: TICKDB_INDEX_FAN (4..256), TICKDB_INDEX_LEAF_BYTES (64..65536).
std::uint32_t tuned(const char* var, std::uint32_t dflt, std::uint32_t lo, std::uint32_t hi) {
  const char* v = std::getenv(var);
  if (!v) return dflt;
  const unsigned long x = std::strtoul(v, nullptr, 10);
  return x < lo || x > hi ? dflt : static_cast<std::uint32_t>(x);
}
const std::uint32_t kFan = tuned("TICKDB_INDEX_FAN", TICKDB_INDEX_FAN, 4, 256);
const std::uint32_t kLeafBytes =
    tuned("TICKDB_INDEX_LEAF_BYTES", TICKDB_INDEX_LEAF_BYTES, 64, 65536);
// The capacity of the first leaf of a tree (it doubles up to a full leaf as the tree grows).
constexpr std::uint32_t kFirstLeafKeys = 8;
}  // namespace

OrderedIndex::OrderedIndex(std::uint32_t key_size) : key_size_(key_size), fan_(kFan) {
  leaf_cap_ = std::max<std::uint32_t>(8, kLeafBytes / std::max<std::uint32_t>(key_size, 1));
}

OiPtr OrderedIndex::new_leaf(std::uint64_t owner, std::uint32_t cap) const {
  return make_node(true, cap ? cap : leaf_cap_, key_size_, owner);
}
OiPtr OrderedIndex::new_inner(std::uint64_t owner) const {
  return make_node(false, fan_, key_size_, owner);
}

OiPtr OrderedIndex::copy_node(const OiNode& n, std::uint64_t owner, std::uint32_t cap) const {
  OiPtr c = make_node(n.leaf, cap ? cap : n.cap, key_size_, owner);
  c->n = n.n;
  if (!n.leaf) {
    // The copy bumps every child's reference count; the children are cold in a large index,
    // so ask for them all first and let the misses overlap.
    for (std::uint32_t i = 0; i < n.n; ++i)
      __builtin_prefetch(static_cast<const char*>(static_cast<const void*>(n.kids()[i].get())), 1);
    for (std::uint32_t i = 0; i < n.n; ++i) c->kids()[i] = n.kids()[i];
  }
  std::memcpy(c->keys(), n.keys(), std::size_t{n.n} * key_size_);
  return c;
}

void OrderedIndex::own(OiPtr& slot, std::uint64_t owner) const {
  if (slot->owner != owner) slot = copy_node(*slot.get(), owner);
}

// Puts `key` at `pos` of leaf `l`; when the leaf is full it splits, and the new right half is
// returned.
OiPtr OrderedIndex::leaf_insert(OiNode* l, std::uint32_t pos, const std::byte* key,
                                std::uint64_t owner) const {
  const std::uint32_t ks = key_size_;
  OiPtr split;
  OiNode* into = l;
  if (l->n == l->cap) {
    split = new_leaf(owner);
    // Appending at a leaf's end (rising keys: ids, times) leaves it full and starts the next
    // one, instead of leaving half-empty leaves behind.
    const std::uint32_t h = pos == l->n ? l->n : l->n / 2;
    std::memcpy(split->keys(), l->keys() + std::size_t{h} * ks, std::size_t{l->n - h} * ks);
    split->n = l->n - h;
    l->n = h;
    if (pos > h || pos == l->cap) {  // the second half, or (appending) the new node
      into = split.get();
      pos -= h;
    }
  }
  std::byte* k = into->keys();
  std::memmove(k + std::size_t{pos + 1} * ks, k + std::size_t{pos} * ks,
               std::size_t{into->n - pos} * ks);
  std::memcpy(k + std::size_t{pos} * ks, key, ks);
  ++into->n;
  return split;
}

// Puts `child` (with its lower bound) at `pos` of inner node `in`, splitting it when full.
OiPtr OrderedIndex::inner_insert(OiNode* in, std::uint32_t pos, OiPtr child,
                                 std::uint64_t owner) const {
  const std::uint32_t ks = key_size_;
  OiPtr split;
  OiNode* into = in;
  if (in->n == in->cap) {
    split = new_inner(owner);
    const std::uint32_t h = pos == in->n ? in->n : in->n / 2;
    for (std::uint32_t j = h; j < in->n; ++j) split->kids()[j - h] = std::move(in->kids()[j]);
    std::memcpy(split->keys(), in->keys() + std::size_t{h} * ks, std::size_t{in->n - h} * ks);
    split->n = in->n - h;
    in->n = h;
    if (pos > h || pos == in->cap) {  // the second half, or (appending) the new node
      into = split.get();
      pos -= h;
    }
  }
  OiPtr* kids = into->kids();
  std::move_backward(kids + pos, kids + into->n, kids + into->n + 1);
  kids[pos] = std::move(child);
  std::byte* k = into->keys();
  std::memmove(k + std::size_t{pos + 1} * ks, k + std::size_t{pos} * ks,
               std::size_t{into->n - pos} * ks);
  std::memcpy(k + std::size_t{pos} * ks, min_key(kids[pos].get()), ks);
  ++into->n;
  return split;
}

// One descent finds the leaf and the position (copying nothing), a second pass owns the
// path top-down (no search), then the change and any splits go bottom-up.
bool OrderedIndex::insert(const std::byte* key, std::uint64_t owner) {
  const std::uint32_t ks = key_size_;
  if (!root_) {
    root_ = new_leaf(owner, std::min(leaf_cap_, kFirstLeafKeys));
    depth_ = 1;
  }
  std::uint32_t idx[kMaxDepth];
  std::uint32_t d = 0;
  const OiNode* n = root_.get();
  while (!n->leaf) {
    idx[d] = child_for(n, ks, key, ks, false);
    n = n->kids()[idx[d++]].get();
  }
  prefetch_keys(n, ks);
  const std::uint32_t pos = search(n->keys(), 0, n->n, ks, key, ks, true);
  if (pos < n->n && cmp(n->keys() + std::size_t{pos} * ks, key, ks) == 0) return false;
  OiNode* nodes[kMaxDepth];
  OiPtr* slot = &root_;
  for (std::uint32_t l = 0; l < d; ++l) {
    own(*slot, owner);
    nodes[l] = slot->get();
    slot = &nodes[l]->kids()[idx[l]];
  }
  own(*slot, owner);
  if (d == 0 && root_->n == root_->cap && root_->cap < leaf_cap_) {
    // A root leaf smaller than a full leaf grows before it splits: a small tree (the ids of
    // one value of a hash index) takes the bytes it needs, not a full leaf's.
    root_ = copy_node(*root_.get(), owner, std::min(leaf_cap_, root_->cap * 2));
  }
  OiPtr split = leaf_insert(slot->get(), pos, key, owner);
  for (std::uint32_t l = d; split && l-- > 0;)
    split = inner_insert(nodes[l], idx[l] + 1, std::move(split), owner);
  if (split) {
    OiPtr r = new_inner(owner);
    std::memcpy(r->keys(), min_key(root_.get()), ks);
    std::memcpy(r->keys() + ks, min_key(split.get()), ks);
    r->kids()[0] = std::move(root_);
    r->kids()[1] = std::move(split);
    r->n = 2;
    root_ = std::move(r);
    ++depth_;
  }
  ++size_;
  return true;
}

bool OrderedIndex::erase(const std::byte* key, std::uint64_t owner) {
  const std::uint32_t ks = key_size_;
  if (!root_) return false;
  std::uint32_t idx[kMaxDepth];
  std::uint32_t d = 0;
  const OiNode* n = root_.get();
  while (!n->leaf) {
    idx[d] = child_for(n, ks, key, ks, false);
    n = n->kids()[idx[d++]].get();
  }
  prefetch_keys(n, ks);
  const std::uint32_t pos = search(n->keys(), 0, n->n, ks, key, ks, true);
  if (pos >= n->n || cmp(n->keys() + std::size_t{pos} * ks, key, ks) != 0) return false;
  OiNode* nodes[kMaxDepth];
  OiPtr* slot = &root_;
  for (std::uint32_t l = 0; l < d; ++l) {
    own(*slot, owner);
    nodes[l] = slot->get();
    slot = &nodes[l]->kids()[idx[l]];
  }
  own(*slot, owner);
  OiNode* leaf = slot->get();
  std::byte* k = leaf->keys();
  std::memmove(k + std::size_t{pos} * ks, k + std::size_t{pos + 1} * ks,
               std::size_t{leaf->n - pos - 1} * ks);
  --leaf->n;
  --size_;
  // Unlink emptied nodes bottom-up.
  for (std::uint32_t l = d; l-- > 0;) {
    OiNode* in = nodes[l];
    const std::uint32_t i = idx[l];
    if (in->kids()[i]->n != 0) break;
    OiPtr* kids = in->kids();
    std::move(kids + i + 1, kids + in->n, kids + i);
    kids[in->n - 1].reset();
    std::byte* sk = in->keys();
    std::memmove(sk + std::size_t{i} * ks, sk + std::size_t{i + 1} * ks,
                 std::size_t{in->n - i - 1} * ks);
    --in->n;
  }
  if (root_->n == 0) {
    root_.reset();
    depth_ = 0;
    return true;
  }
  while (!root_->leaf && root_->n == 1) {
    OiPtr only = root_->kids()[0];
    root_ = std::move(only);
    --depth_;
  }
  return true;
}

bool OrderedIndex::contains(const std::byte* key) const {
  Cursor c = lower_bound({key, key_size_});
  return c.valid() && cmp(c.key(), key, key_size_) == 0;
}

OrderedIndex OrderedIndex::build(std::uint32_t key_size, const std::byte* keys, std::size_t n,
                                 std::uint64_t owner) {
  OrderedIndex t(key_size);
  if (n == 0) return t;
  std::vector<OiPtr> level;
  const std::uint32_t per_leaf = std::max<std::uint32_t>(1, t.leaf_cap_ - t.leaf_cap_ / 8);
  // A tree of one leaf gets a leaf of its size (with room for growth; insert grows it).
  const std::uint32_t cap =
      n <= per_leaf ? std::min(t.leaf_cap_, std::max(kFirstLeafKeys, static_cast<std::uint32_t>(n)))
                    : t.leaf_cap_;
  for (std::size_t at = 0; at < n; at += per_leaf) {
    OiPtr l = t.new_leaf(owner, cap);
    l->n = static_cast<std::uint32_t>(std::min<std::size_t>(per_leaf, n - at));
    std::memcpy(l->keys(), keys + at * key_size, std::size_t{l->n} * key_size);
    level.push_back(std::move(l));
  }
  t.depth_ = 1;
  const std::uint32_t per_inner = std::max<std::uint32_t>(2, t.fan_ - t.fan_ / 8);
  while (level.size() > 1) {
    std::vector<OiPtr> up;
    for (std::size_t at = 0; at < level.size(); at += per_inner) {
      OiPtr in = t.new_inner(owner);
      in->n = static_cast<std::uint32_t>(std::min<std::size_t>(per_inner, level.size() - at));
      for (std::uint32_t j = 0; j < in->n; ++j) {
        std::memcpy(in->keys() + std::size_t{j} * key_size, min_key(level[at + j].get()), key_size);
        in->kids()[j] = std::move(level[at + j]);
      }
      up.push_back(std::move(in));
    }
    level = std::move(up);
    ++t.depth_;
  }
  t.root_ = std::move(level.front());
  t.size_ = n;
  return t;
}

std::size_t OrderedIndex::bytes() const {
  if (!root_) return 0;
  const std::size_t leaf_bytes = node_bytes(true, leaf_cap_, key_size_);
  const std::size_t inner_bytes = node_bytes(false, fan_, key_size_);
  std::size_t total = 0;
  auto walk = [&](auto& self, const OiNode* n, std::uint32_t level) -> void {
    if (n->leaf) {  // the root leaf may be smaller than a full one; the others are full
      total += node_bytes(true, n->cap, key_size_);
      return;
    }
    total += inner_bytes;
    if (level + 2 == depth_) {  // the children are leaves: count them without touching them
      total += std::size_t{n->n} * leaf_bytes;
      return;
    }
    for (std::uint32_t i = 0; i < n->n; ++i) self(self, n->kids()[i].get(), level + 1);
  };
  walk(walk, root_.get(), 0);
  return total;
}

// ---------------- cursors ----------------

OrderedIndex::Cursor OrderedIndex::seek(std::span<const std::byte> probe, bool strict) const {
  Cursor c;
  c.key_size_ = key_size_;
  if (!root_) return c;
  const OiNode* n = root_.get();
  while (true) {
    c.path_[c.depth_] = n;
    if (n->leaf) {
      c.idx_[c.depth_++] =
          search(n->keys(), 0, n->n, key_size_, probe.data(), probe.size(), strict);
      break;
    }
    std::uint32_t i = child_for(n, key_size_, probe.data(), probe.size(), strict);
    c.idx_[c.depth_++] = i;
    n = n->kids()[i].get();
  }
  c.settle();
  return c;
}

OrderedIndex::Cursor OrderedIndex::lower_bound(std::span<const std::byte> probe) const {
  return seek(probe, true);
}
OrderedIndex::Cursor OrderedIndex::upper_bound(std::span<const std::byte> probe) const {
  return seek(probe, false);
}

OrderedIndex::Cursor OrderedIndex::begin() const {
  return seek({}, true);
}

OrderedIndex::Cursor OrderedIndex::end() const {
  Cursor c;
  c.key_size_ = key_size_;
  if (!root_) return c;
  const OiNode* n = root_.get();
  while (true) {
    c.path_[c.depth_] = n;
    if (n->leaf) {
      c.idx_[c.depth_++] = n->n;
      return c;
    }
    c.idx_[c.depth_++] = n->n - 1;
    n = n->kids()[n->n - 1].get();
  }
}

void OrderedIndex::Cursor::settle() {
  if (!depth_ || idx_[depth_ - 1] < path_[depth_ - 1]->n) return;
  for (std::uint32_t up = depth_ - 1; up-- > 0;) {
    if (idx_[up] + 1 >= path_[up]->n) continue;
    ++idx_[up];
    const OiNode* n = path_[up]->kids()[idx_[up]].get();
    for (std::uint32_t l = up + 1; l < depth_; ++l) {
      path_[l] = n;
      idx_[l] = 0;
      if (!n->leaf) n = n->kids()[0].get();
    }
    return;
  }
  // No key after this leaf: the end (the leaf is the last one).
}

void OrderedIndex::Cursor::next() {
  if (!valid()) return;
  ++idx_[depth_ - 1];
  settle();
}

void OrderedIndex::Cursor::prev() {
  if (!depth_) return;
  if (idx_[depth_ - 1] > 0) {
    --idx_[depth_ - 1];
    return;
  }
  for (std::uint32_t up = depth_ - 1; up-- > 0;) {
    if (idx_[up] == 0) continue;
    --idx_[up];
    const OiNode* n = path_[up]->kids()[idx_[up]].get();
    for (std::uint32_t l = up + 1; l < depth_; ++l) {
      path_[l] = n;
      idx_[l] = n->n - 1;
      if (!n->leaf) n = n->kids()[n->n - 1].get();
    }
    return;
  }
  depth_ = 0;  // before the first key
}

std::size_t OrderedIndex::count_range(std::span<const std::byte> lo,
                                      std::span<const std::byte> hi) const {
  std::size_t count = 0;
  for (Cursor c = lower_bound(lo); c.valid(); c.next()) {
    if (!hi.empty() && cmp(c.key(), hi.data(), hi.size()) >= 0) break;
    ++count;
  }
  return count;
}

}  // namespace tickdb
