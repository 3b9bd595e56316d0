// VersionCell<T>: the one place where the current version of something is published.
//
// load() gives the current std::shared_ptr<const T> without a mutex and without ever
// waiting for a writer: the box that holds the current shared_ptr is protected by a hazard
// pointer while the reader copies the shared_ptr out of it (two atomic loads, one store, one
// reference count increment). pin() is the cheaper read for short looks (one request): it
// keeps the hazard pointer for as long as the Pin lives and touches no reference count, so
// readers share no cache line with each other or with the writer. publish() swaps in a new version with one atomic exchange;
// the old box is freed once no reader's hazard pointer names it (deferred, never waited for).
// Writers serialize among themselves with a mutex; readers never touch it.
//
// (std::atomic<std::shared_ptr> is not lock-free in libstdc++: it takes a spin lock that a
// reader may have to wait on while a writer holds it.)
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace tickdb {

namespace detail {
// A cell over type-erased boxes; VersionCell<T> is the typed face of it.
class ErasedVersionCell {
 public:
  explicit ErasedVersionCell(std::shared_ptr<const void> initial);
  ~ErasedVersionCell();
  ErasedVersionCell(const ErasedVersionCell&) = delete;
  ErasedVersionCell& operator=(const ErasedVersionCell&) = delete;

  std::shared_ptr<const void> load() const;
  // Protects the current box in one of this thread's hazard slots (or, when a thread holds
  // more pins than it has slots, through a reference).
  struct Pinned {
    const void* value = nullptr;
    int slot = -1;
    std::shared_ptr<const void> held;  // set only when no slot was free
  };
  Pinned pin() const;
  static void unpin(int slot);
  void publish(std::shared_ptr<const void> v);
  // Publishes only when the current version is `expected` (compared by address).
  bool publish_if(const void* expected, std::shared_ptr<const void> v);
  std::size_t retired_count() const;

 private:
  struct Box {
    std::shared_ptr<const void> v;
  };
  Box* protect(std::atomic<const void*>& hazard) const;
  void retire_locked(Box* old);
  void scan_locked();

  // Readers touch only cur_; writers' state lives on other cache lines so a publish never
  // invalidates the line every reader loads.
  alignas(64) std::atomic<Box*> cur_;
  alignas(64) mutable std::mutex writers_;
  std::vector<Box*> retired_;
};
}  // namespace detail

template <class T>
class VersionCell {
 public:
  explicit VersionCell(std::shared_ptr<const T> initial) : cell_(std::move(initial)) {}
  std::shared_ptr<const T> load() const { return std::static_pointer_cast<const T>(cell_.load()); }

  // The current version, readable for as long as the Pin lives (keep it short: it holds
  // back the freeing of one old version). Not to be passed to another thread.
  class Pin {
   public:
    Pin(Pin&& o) noexcept : p_(std::move(o.p_)) { o.p_.slot = -1; }
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    Pin& operator=(Pin&&) = delete;
    ~Pin() {
      if (p_.slot >= 0) detail::ErasedVersionCell::unpin(p_.slot);
    }
    const T& operator*() const { return *get(); }
    const T* operator->() const { return get(); }
    const T* get() const { return static_cast<const T*>(p_.value); }

   private:
    friend class VersionCell;
    explicit Pin(detail::ErasedVersionCell::Pinned p) : p_(std::move(p)) {}
    detail::ErasedVersionCell::Pinned p_;
  };
  Pin pin() const { return Pin(cell_.pin()); }

  void publish(std::shared_ptr<const T> v) { cell_.publish(std::move(v)); }
  bool publish_if(const T* expected, std::shared_ptr<const T> v) {
    return cell_.publish_if(expected, std::move(v));
  }
  // Old boxes still waiting for a reader to let go (for tests and stats).
  std::size_t retired_count() const { return cell_.retired_count(); }

 private:
  detail::ErasedVersionCell cell_;
};

}  // namespace tickdb
