#include "core/version_cell.h"

#include <algorithm>
#include <cassert>

namespace tickdb::detail {

namespace {

// Hazard records: a lock-free list that only grows; a thread takes one record for its life
// and gives it back when it exits. A record has a few slots, so a thread may hold a few pins
// at once (e.g. two cells); which slots are in use is the owning thread's private mask.
constexpr int kSlots = 4;
struct alignas(64) HazardRecord {  // one cache line each: a reader writes only its own
  std::atomic<const void*> ptr[kSlots] = {};
  std::atomic<bool> taken{false};
  HazardRecord* next = nullptr;
};

std::atomic<HazardRecord*> g_hazards{nullptr};

HazardRecord* acquire_record() {
  for (HazardRecord* r = g_hazards.load(std::memory_order_acquire); r; r = r->next) {
    bool expected = false;
    if (!r->taken.load(std::memory_order_relaxed) &&
        r->taken.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
      return r;
  }
  auto* r = new HazardRecord();  // never freed: the list only grows (one per concurrent thread)
  r->taken.store(true, std::memory_order_relaxed);
  HazardRecord* head = g_hazards.load(std::memory_order_relaxed);
  do {
    r->next = head;
  } while (!g_hazards.compare_exchange_weak(head, r, std::memory_order_release, std::memory_order_relaxed));
  return r;
}

struct ThreadHazard {
  HazardRecord* rec = acquire_record();
  HazardRecord* spare = nullptr;  // for load() when every slot of rec holds a pin
  unsigned used = 0;              // bit i: slot i of rec holds a pin
  ~ThreadHazard() {
    for (HazardRecord* r : {rec, spare}) {
      if (!r) continue;
      for (auto& p : r->ptr) p.store(nullptr, std::memory_order_release);
      r->taken.store(false, std::memory_order_release);
    }
  }
  int free_slot() const {
    for (int i = 0; i < kSlots; ++i)
      if (!(used & (1u << i))) return i;
    return -1;
  }
};

ThreadHazard& my_hazard() {
  thread_local ThreadHazard h;
  return h;
}

}  // namespace

ErasedVersionCell::Box* ErasedVersionCell::protect(std::atomic<const void*>& h) const {
  Box* b = cur_.load(std::memory_order_acquire);
  while (true) {
    h.store(b, std::memory_order_seq_cst);
    Box* again = cur_.load(std::memory_order_seq_cst);
    if (again == b) return b;  // published in h before the writer's scan could miss it
    b = again;
  }
}

ErasedVersionCell::ErasedVersionCell(std::shared_ptr<const void> initial)
    : cur_(new Box{std::move(initial)}) {}

ErasedVersionCell::~ErasedVersionCell() {
  // No reader may use a cell that is being destroyed: free everything.
  delete cur_.load(std::memory_order_acquire);
  for (Box* b : retired_) delete b;
}

ErasedVersionCell::Pinned ErasedVersionCell::pin() const {
  ThreadHazard& th = my_hazard();
  Pinned p;
  p.slot = th.free_slot();
  if (p.slot < 0) {  // every slot busy: hold a reference instead
    p.held = load();
    p.value = p.held.get();
    return p;
  }
  Box* b = protect(th.rec->ptr[p.slot]);
  th.used |= 1u << p.slot;
  p.value = b->v.get();  // alive while the hazard names the box that holds it
  return p;
}

void ErasedVersionCell::unpin(int slot) {
  ThreadHazard& th = my_hazard();
  assert((th.used & (1u << slot)) && "a Pin must be released on the thread that took it");
  th.rec->ptr[slot].store(nullptr, std::memory_order_release);
  th.used &= ~(1u << slot);
}

std::shared_ptr<const void> ErasedVersionCell::load() const {
  ThreadHazard& th = my_hazard();
  int slot = th.free_slot();
  if (slot < 0 && !th.spare) th.spare = acquire_record();
  std::atomic<const void*>& h = slot >= 0 ? th.rec->ptr[slot] : th.spare->ptr[0];
  Box* b = protect(h);
  std::shared_ptr<const void> v = b->v;  // the box cannot be freed while h names it
  h.store(nullptr, std::memory_order_release);
  return v;
}

void ErasedVersionCell::publish(std::shared_ptr<const void> v) {
  auto* fresh = new Box{std::move(v)};
  std::lock_guard<std::mutex> g(writers_);
  Box* old = cur_.exchange(fresh, std::memory_order_seq_cst);
  retire_locked(old);
}

bool ErasedVersionCell::publish_if(const void* expected, std::shared_ptr<const void> v) {
  std::lock_guard<std::mutex> g(writers_);
  Box* cur = cur_.load(std::memory_order_acquire);  // only writers change it, and we hold them
  if (cur->v.get() != expected) return false;
  auto* fresh = new Box{std::move(v)};
  cur_.store(fresh, std::memory_order_seq_cst);
  retire_locked(cur);
  return true;
}

void ErasedVersionCell::retire_locked(Box* old) {
  retired_.push_back(old);
  scan_locked();
}

void ErasedVersionCell::scan_locked() {
  std::vector<const void*> held;
  for (HazardRecord* r = g_hazards.load(std::memory_order_acquire); r; r = r->next)
    for (const auto& slot : r->ptr)
      if (const void* p = slot.load(std::memory_order_seq_cst)) held.push_back(p);
  std::vector<Box*> keep;
  for (Box* b : retired_) {
    if (std::find(held.begin(), held.end(), b) != held.end()) keep.push_back(b);
    else delete b;
  }
  retired_.swap(keep);
}

std::size_t ErasedVersionCell::retired_count() const {
  std::lock_guard<std::mutex> g(writers_);
  return retired_.size();
}

}  // namespace tickdb::detail
