// IdempotencyLedger: the results of the write calls committed under an Idempotency-Key, kept
// as durably as the writes, so that a request retried after the node restarted is answered
// from what it did the first time instead of being applied again (API.md, Cluster).
//
// The HTTP layer keeps whole answers in memory (http/idempotency.h) and answers most repeats
// from there. This ledger is below it: a keyed call's key, request fingerprint and result are
// recorded when its version is published, in the same commit log entry as the call itself
// (core/commit_log.h), and in a key file beside each snapshot (core/key_file.h); recovery
// loads the snapshot's key file and replay records the keyed calls of the log after it. A
// repeat then runs its route again and every keyed call it makes is answered from here (the
// route encodes the answer as it did the first time). A request makes its keyed calls in the
// order of its body, so the n-th call is keyed `<key>#<n>` (the first: `<key>`).
//
// IdempotencyScope marks the request a thread is handling: the calls the runtime receives on
// that thread while the scope lives take their keys from it.
//
// Owned by the Database (actors/database.h). Thread-safety: IdempotencyLedger is safe from any
// thread (one mutex, never held while a call runs); an IdempotencyScope belongs to its thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/commit_log.h"
#include "core/json_codec.h"
#include "core/key_file.h"

namespace tickdb {

class IdempotencyLedger {
 public:
  struct Entry {
    std::uint64_t fingerprint = 0;
    json result;
    std::uint64_t version = 0;
    std::uint64_t unix_ms = 0;
  };
  IdempotencyLedger(double ttl_s = 300, std::uint64_t max_keys = 100'000);
  // Set before calls are made (Runtime::start).
  void configure(double ttl_s, std::uint64_t max_keys);

  // A keyed call committed (or replayed) in `e.version`; one that is past its time to live
  // already (a replayed old one) is not kept (false). The oldest go first past max_keys.
  bool record(const std::string& key, Entry e);
  // The unexpired entry of `key`, if any.
  std::optional<Entry> find(const std::string& key) const;
  // The unexpired entries committed at or before `version`, for a snapshot's key file.
  std::vector<KeyRecord> through(std::uint64_t version) const;
  // The log lost the entries after `version` (Database::roll_back): their calls are undone.
  void forget_after(std::uint64_t version);
  // Recovery: the records of a snapshot's key file (expired ones and bad JSON are skipped);
  // how many were kept.
  std::size_t load(const std::vector<KeyRecord>& records);
  std::size_t size() const;

  static std::uint64_t now_ms();  // Unix time in ms (the commit times in the log)

 private:
  bool expired(const Entry& e, std::uint64_t now) const { return e.unix_ms + ttl_ms_ <= now; }
  void trim(std::uint64_t now);  // under mu_

  mutable std::mutex mu_;
  std::uint64_t ttl_ms_;
  std::uint64_t max_keys_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<std::uint64_t, std::string>> order_;  // (commit ms, key), by arrival
};

// The Idempotency-Key of the request this thread is handling (see the top of this file).
class IdempotencyScope {
 public:
  // `replayed`: set when a call made under this scope was answered from the ledger.
  IdempotencyScope(std::string key, std::uint64_t fingerprint,
                   std::shared_ptr<std::atomic<bool>> replayed = nullptr);
  ~IdempotencyScope();
  IdempotencyScope(const IdempotencyScope&) = delete;
  IdempotencyScope& operator=(const IdempotencyScope&) = delete;

  // The key of the next write call under this thread's scope (empty key: no scope).
  static CallKey next_call();
  // True while this thread is under a scope; the scope's key (empty: none).
  static bool active();
  static std::string key();
  // The call keyed by the last next_call() was answered from the ledger.
  static void mark_replayed();

 private:
  std::string key_;
  std::uint64_t fingerprint_;
  std::shared_ptr<std::atomic<bool>> replayed_;
  std::uint32_t calls_ = 0;
  IdempotencyScope* outer_;
};

}  // namespace tickdb
