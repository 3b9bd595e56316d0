#include "core/chunk.h"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace tickdb {

namespace {

std::size_t round_up(std::size_t n, std::size_t a) {
  return (n + a - 1) / a * a;
}

// Freed chunk blocks by size. A mutex is fine here: it is on the write/free path only.
class ChunkPool {
 public:
  static ChunkPool& instance() {
    static ChunkPool* p = new ChunkPool();  // never destroyed: chunks may die at exit
    return *p;
  }
  void* take(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        pooled_ -= bytes;
        return p;
      }
    }
    return ::operator new(bytes, std::align_val_t(kCacheLine));  // may throw bad_alloc
  }
  // n blocks under one lock (parallel updates take thousands at once).
  void take_many(std::size_t bytes, std::size_t n, std::vector<void*>& out) {
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end())
        while (out.size() < n && !it->second.empty()) {
          out.push_back(it->second.back());
          it->second.pop_back();
          pooled_ -= bytes;
        }
    }
    try {
      while (out.size() < n) out.push_back(::operator new(bytes, std::align_val_t(kCacheLine)));
    } catch (...) {
      for (void* p : out) give(p, bytes);
      out.clear();
      throw;
    }
  }
  void give(void* p, std::size_t bytes) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (pooled_ + bytes <= limit_) {
        free_[bytes].push_back(p);
        pooled_ += bytes;
        return;
      }
    }
    ::operator delete(p, std::align_val_t(kCacheLine));
  }
  void set_limit(std::size_t l) {
    std::vector<std::pair<void*, std::size_t>> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      limit_ = l;
      for (auto& [sz, v] : free_)
        while (pooled_ > limit_ && !v.empty()) {
          drop.emplace_back(v.back(), sz);
          v.pop_back();
          pooled_ -= sz;
        }
    }
    for (auto& [p, sz] : drop) ::operator delete(p, std::align_val_t(kCacheLine));
  }
  std::size_t limit() {
    std::lock_guard<std::mutex> g(mu_);
    return limit_;
  }
  std::size_t pooled() {
    std::lock_guard<std::mutex> g(mu_);
    return pooled_;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t pooled_ = 0;
  std::size_t limit_ = std::size_t{512} << 20;
};

}  // namespace

std::size_t chunk_pool_limit() {
  return ChunkPool::instance().limit();
}
void set_chunk_pool_limit(std::size_t bytes) {
  ChunkPool::instance().set_limit(bytes);
}
std::size_t chunk_pool_bytes() {
  return ChunkPool::instance().pooled();
}

std::uint32_t records_per_chunk(std::uint32_t record_size) {
  std::size_t rs = record_size == 0 ? 1 : record_size;
  std::uint32_t n = 1;
  while (std::size_t{n} * 2 * rs <= kChunkTargetBytes) n *= 2;
  return n;
}

namespace {
struct ChunkLayout {
  std::size_t rec_bytes, id_bytes, total;
  ChunkLayout(std::uint32_t record_size, std::uint32_t capacity)
      : rec_bytes(round_up(std::size_t{record_size} * capacity, kCacheLine)),
        id_bytes(round_up(std::size_t{capacity} * sizeof(std::uint64_t), kCacheLine)),
        total(std::max(kCacheLine, rec_bytes + id_bytes + round_up(capacity, kCacheLine))) {}
};
}  // namespace

void Chunk::init(std::byte* mem, std::size_t bytes, std::size_t rec_bytes, std::size_t id_bytes,
                 std::uint32_t record_size, std::uint32_t capacity, std::uint64_t owner) {
  // What a diff reads of a chunk comes first (see the members).
  static_assert(offsetof(Chunk, lineage_serial_) + sizeof(std::uint64_t) == kDiffHeaderBytes);
  mem_ = mem;
  bytes_ = bytes;
  ids_ = reinterpret_cast<std::uint64_t*>(mem_ + rec_bytes);
  alive_ = reinterpret_cast<std::uint8_t*>(mem_ + rec_bytes + id_bytes);
  capacity_ = capacity;
  record_size_ = record_size;
  owner_ = owner;
  static std::atomic<std::uint64_t> next_serial{1};
  serial_ = next_serial.fetch_add(1, std::memory_order_relaxed);
  group_ = std::max<std::uint32_t>(1, capacity / kLineageBits);
}

Result<std::shared_ptr<Chunk>> Chunk::make(std::uint32_t record_size, std::uint32_t capacity,
                                           std::uint64_t owner) {
  const ChunkLayout l(record_size, capacity);
  try {
    auto c = std::make_shared<Chunk>(Key{});
    c->init(static_cast<std::byte*>(ChunkPool::instance().take(l.total)), l.total, l.rec_bytes,
            l.id_bytes, record_size, capacity, owner);
    return c;
  } catch (const std::bad_alloc&) {
    return make_error(Errc::resource_exhausted,
                      "out of memory allocating a chunk of " + std::to_string(l.total) + " bytes");
  }
}

Status Chunk::make_many(std::uint32_t record_size, std::uint32_t capacity, std::uint64_t owner,
                        std::size_t n, std::vector<std::shared_ptr<Chunk>>& out) {
  const ChunkLayout l(record_size, capacity);
  std::vector<void*> mem;
  try {
    mem.reserve(n);
    out.reserve(out.size() + n);
    ChunkPool::instance().take_many(l.total, n, mem);
    std::size_t i = 0;
    try {
      for (; i < n; ++i) {
        auto c = std::make_shared<Chunk>(Key{});
        c->init(static_cast<std::byte*>(mem[i]), l.total, l.rec_bytes, l.id_bytes, record_size,
                capacity, owner);
        out.push_back(std::move(c));
      }
    } catch (...) {
      for (std::size_t j = i; j < n; ++j) ChunkPool::instance().give(mem[j], l.total);
      out.resize(out.size() - i);  // as it was (the chunks made give their memory back)
      throw;
    }
    return {};
  } catch (const std::bad_alloc&) {
    return make_error(Errc::resource_exhausted, "out of memory allocating " + std::to_string(n) +
                                                    " chunks of " + std::to_string(l.total) +
                                                    " bytes");
  }
}

Result<std::shared_ptr<Chunk>> Chunk::copy_of(const Chunk& src, std::uint32_t used,
                                              std::uint64_t owner) {
  assert(used <= src.capacity_);
  const std::size_t rec_bytes = std::size_t{src.record_size_} * used;
  // The source is usually cold (a random chunk of a large table): ask for all of it at once
  // so the misses overlap, while the destination is being allocated.
  for (std::size_t off = 0; off < rec_bytes; off += kCacheLine) __builtin_prefetch(src.mem_ + off);
  for (std::size_t off = 0; off < sizeof(std::uint64_t) * used; off += kCacheLine)
    __builtin_prefetch(reinterpret_cast<const std::byte*>(src.ids_) + off);
  auto c = make(src.record_size_, src.capacity_, owner);
  if (!c) return c;
  (*c)->copy_from(src, used);
  return c;
}

void Chunk::copy_from(const Chunk& src, std::uint32_t used) {
  assert(used <= src.capacity_ && src.record_size_ == record_size_ && src.capacity_ == capacity_);
  if (used) {
    std::memcpy(mem_, src.mem_, std::size_t{src.record_size_} * used);
    std::memcpy(ids_, src.ids_, sizeof(std::uint64_t) * used);
    std::memcpy(alive_, src.alive_, used);
    // Dead slots only arise inside the view of the transaction that owned the chunk, and
    // every later view is at least that long: the source's count is exact for `used`.
    dead_ = src.dead_;
  }
  frontier_.store(used, std::memory_order_relaxed);
  // This chunk now descends from src: src first (nothing written since), then src's own
  // ancestors with what was written since each of them.
  lineage_serial_[0] = src.serial_;
  lineage_written_[0] = {};
  for (std::size_t i = 1; i < kLineage; ++i) {
    lineage_serial_[i] = src.lineage_serial_[i - 1];
    lineage_written_[i] = src.lineage_written_[i - 1];
  }
}

Chunk::~Chunk() {
  if (mem_) ChunkPool::instance().give(mem_, bytes_);
}

const ChunkTree::Node* ChunkTree::leaf(std::size_t i) const {
  assert(i < size_);
  const Node* n = root_.get();
  for (unsigned level = depth_ - 1; level > 0; --level)
    n = static_cast<const Node*>(n->slot[(i >> (kShift * level)) & (kFan - 1)].get());
  return n;
}

void* ChunkTree::slot(std::size_t i) const {
  return leaf(i)->slot[i & (kFan - 1)].get();
}

void ChunkTree::get_range(std::size_t first, std::size_t n, const Chunk** out) const {
  assert(first + n <= size_);
  const std::size_t end = first + n;
  for (std::size_t i = first; i < end;) {
    const Node* node = leaf(i);
    const std::size_t leaf_end = std::min(end, (i | (kFan - 1)) + 1);
    for (; i < leaf_end; ++i) *out++ = static_cast<const Chunk*>(node->slot[i & (kFan - 1)].get());
  }
}

std::shared_ptr<Chunk> ChunkTree::get_shared(std::size_t i) const {
  return std::static_pointer_cast<Chunk>(leaf(i)->slot[i & (kFan - 1)]);
}

std::shared_ptr<void>& ChunkTree::slot_ref(std::size_t i, std::uint64_t owner) {
  auto own = [owner](std::shared_ptr<Node>& n) {
    if (!n) {
      n = std::make_shared<Node>();
      n->owner = owner;
    } else if (n->owner != owner) {
      // The copy bumps every child's reference count. The children are cold in a large
      // table; touching them all first lets the misses overlap instead of serializing
      // behind each locked increment.
      for (const auto& c : n->slot)
        if (c) __builtin_prefetch(static_cast<const char*>(c.get()) - 16, 1);
      auto copy = std::make_shared<Node>(*n);
      copy->owner = owner;
      n = std::move(copy);
    }
  };
  own(root_);
  Node* n = root_.get();
  for (unsigned level = depth_ - 1; level > 0; --level) {
    auto& s = n->slot[(i >> (kShift * level)) & (kFan - 1)];
    auto child = std::static_pointer_cast<Node>(s);
    own(child);
    s = child;
    n = child.get();
  }
  return n->slot[i & (kFan - 1)];
}

void ChunkTree::set(std::size_t i, std::shared_ptr<Chunk> c, std::uint64_t owner) {
  assert(i < size_);
  slot_ref(i, owner) = std::move(c);
}

void ChunkTree::push_back(std::shared_ptr<Chunk> c, std::uint64_t owner) {
  std::size_t cap = depth_ == 0 ? 0 : std::size_t{1} << (kShift * depth_);
  if (size_ == cap) {
    auto r = std::make_shared<Node>();
    r->owner = owner;
    if (root_) r->slot[0] = root_;
    root_ = std::move(r);
    ++depth_;
  }
  // slot_ref may throw bad_alloc: grow size_ only once the slot exists, so the tree stays
  // whole (an extra empty root level is harmless).
  slot_ref(size_, owner) = std::move(c);
  ++size_;
}

void ChunkTree::truncate(std::size_t n, std::uint64_t owner) {
  while (size_ > n) {
    slot_ref(size_ - 1, owner).reset();
    --size_;
  }
  if (size_ == 0) {
    root_.reset();
    depth_ = 0;
    return;
  }
  while (depth_ > 1 && size_ <= (std::size_t{1} << (kShift * (depth_ - 1)))) {
    root_ = std::static_pointer_cast<Node>(root_->slot[0]);
    --depth_;
  }
}

}  // namespace tickdb
