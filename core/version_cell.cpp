#include "core/version_cell.h"

#include <algorithm>

namespace tickdb::detail {

namespace {

// Hazard records: a lock-free list that only grows; a thread takes one record for its life
// and gives it back when it exits. A record protects one box at a time: load() never nests.
struct HazardRecord {
  std::atomic<const void*> ptr{nullptr};
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
  ~ThreadHazard() {
    rec->ptr.store(nullptr, std::memory_order_release);
    rec->taken.store(false, std::memory_order_release);
  }
};

HazardRecord* my_record() {
  thread_local ThreadHazard h;
  return h.rec;
}

}  // namespace

ErasedVersionCell::ErasedVersionCell(std::shared_ptr<const void> initial)
    : cur_(new Box{std::move(initial)}) {}

ErasedVersionCell::~ErasedVersionCell() {
  // No reader may use a cell that is being destroyed: free everything.
  delete cur_.load(std::memory_order_acquire);
  for (Box* b : retired_) delete b;
}

std::shared_ptr<const void> ErasedVersionCell::load() const {
  HazardRecord* h = my_record();
  Box* b = cur_.load(std::memory_order_acquire);
  while (true) {
    h->ptr.store(b, std::memory_order_seq_cst);
    Box* again = cur_.load(std::memory_order_seq_cst);
    if (again == b) break;
    b = again;
  }
  std::shared_ptr<const void> v = b->v;  // the box cannot be freed while h names it
  h->ptr.store(nullptr, std::memory_order_release);
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
    if (const void* p = r->ptr.load(std::memory_order_seq_cst)) held.push_back(p);
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
