// tickdb-server's operator new and delete: malloc and free, counted against the budget of the
// procedure call running on this thread (actors/alloc_budget.h). Without a budget on, the
// cost is one thread-local flag test.
//
// Not built into sanitizer builds (ASan and TSan replace operator new themselves).
//
// Thread-safety: the budget is thread-local; malloc and free are thread-safe.
#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

// jemalloc's (linked into tickdb-server): a free that is told the size, as jemalloc's own
// operator delete does.
extern "C" void sdallocx(void* p, std::size_t size, int flags);

namespace {

struct Budget {
  bool on = false;
  std::int64_t left = 0;  // bytes the call may still take; below 0: exhausted
};
thread_local Budget t_budget;

void* take(std::size_t n, std::size_t align, bool nothrow) {
  if (n == 0) n = 1;
  void* p = align > alignof(std::max_align_t)
                ? std::aligned_alloc(align, (n + align - 1) / align * align)
                : std::malloc(n);
  if (p && t_budget.on) [[unlikely]] {
    t_budget.left -= static_cast<std::int64_t>(malloc_usable_size(p));
    if (t_budget.left < 0) {
      t_budget.left += static_cast<std::int64_t>(malloc_usable_size(p));
      std::free(p);
      p = nullptr;
    }
  }
  if (!p && !nothrow) throw std::bad_alloc();
  return p;
}

void give(void* p) noexcept {
  if (!p) return;
  if (t_budget.on) [[unlikely]]
    t_budget.left += static_cast<std::int64_t>(malloc_usable_size(p));
  std::free(p);
}

void give_sized(void* p, std::size_t n) noexcept {
  if (!p) return;
  if (t_budget.on) [[unlikely]] {
    give(p);
    return;
  }
  sdallocx(p, n == 0 ? 1 : n, 0);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) bool tickdb_alloc_budget_begin(
    std::uint64_t bytes) {
  t_budget.left = bytes > INT64_MAX ? INT64_MAX : static_cast<std::int64_t>(bytes);
  t_budget.on = true;
  return true;
}

extern "C" __attribute__((visibility("default"))) void tickdb_alloc_budget_end() {
  t_budget.on = false;
}

// ---- the replaceable allocation functions ----

void* operator new(std::size_t n) {
  return take(n, 0, false);
}
void* operator new[](std::size_t n) {
  return take(n, 0, false);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return take(n, 0, true);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return take(n, 0, true);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return take(n, static_cast<std::size_t>(a), false);
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return take(n, static_cast<std::size_t>(a), false);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return take(n, static_cast<std::size_t>(a), true);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return take(n, static_cast<std::size_t>(a), true);
}

void operator delete(void* p) noexcept {
  give(p);
}
void operator delete[](void* p) noexcept {
  give(p);
}
void operator delete(void* p, std::size_t n) noexcept {
  give_sized(p, n);
}
void operator delete[](void* p, std::size_t n) noexcept {
  give_sized(p, n);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  give(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  give(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  give(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  give(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  give(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  give(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  give(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  give(p);
}
