// VersionCell<T>: the one place where the current version of something is published.
//
// load() gives the current std::shared_ptr<const T> without a mutex and without ever
// waiting for a writer: the box that holds the current shared_ptr is protected by a hazard
// pointer while the reader copies the shared_ptr out of it (two atomic loads, one store, one
// reference count increment). publish() swaps in a new version with one atomic exchange;
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
  void publish(std::shared_ptr<const void> v);
  // Publishes only when the current version is `expected` (compared by address).
  bool publish_if(const void* expected, std::shared_ptr<const void> v);
  std::size_t retired_count() const;

 private:
  struct Box {
    std::shared_ptr<const void> v;
  };
  void retire_locked(Box* old);
  void scan_locked();

  std::atomic<Box*> cur_;
  mutable std::mutex writers_;
  std::vector<Box*> retired_;
};
}  // namespace detail

template <class T>
class VersionCell {
 public:
  explicit VersionCell(std::shared_ptr<const T> initial) : cell_(std::move(initial)) {}
  std::shared_ptr<const T> load() const { return std::static_pointer_cast<const T>(cell_.load()); }
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
