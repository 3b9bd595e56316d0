// IdempotencyCache: the first answer of every write that carried an `Idempotency-Key`, so that
// a retry (after a timeout, a lost connection, a node that answered 504) is answered with it
// instead of being applied again (API.md, Cluster).
//
// A key is at most 64 printable ASCII characters. It belongs to the request it came with
// (method, target and body): the same key with another request is 409 `conflict`, not the
// first answer. A repeat that arrives while the first is still running waits for its answer.
// Answers are kept for `ttl` and at most `max_keys` of them (the oldest go first), in memory.
// What the writes did outlives a restart below this cache: the router opens an
// IdempotencyScope while the route runs, and the runtime's IdempotencyLedger (durable with the
// commit log and the snapshots) answers the keyed calls of a repeat that this cache no longer
// knows (actors/idempotency_ledger.h).
//
// Thread-safety: every method is safe from many threads (one mutex, never held while a
// request runs or an answer is sent).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/message.h"

namespace tickdb {

class IdempotencyCache {
 public:
  using Clock = std::chrono::steady_clock;
  IdempotencyCache(double ttl_s, std::uint64_t max_keys);

  // invalid_argument when `key` is not a valid key.
  static Status check_key(std::string_view key);

  // For a write carrying `key`: false when this request is the first (run it and pass its
  // answer to finish()); true when `done` was taken: it gets (now, or once the first request
  // is answered) the first answer, or 409 when the key came with another request.
  // `fingerprint` identifies the request (method, target, body).
  bool begin(const std::string& key, std::uint64_t fingerprint, Done& done);
  // The first request's answer: given to the repeats waiting for it and kept for later ones,
  // unless it is a 503 (nothing was done: a retry must run again) or says retry_runs (a part
  // was not done; the parts that were are answered by the runtime's IdempotencyLedger when it
  // runs again), which forgets the key.
  void finish(const std::string& key, const HttpResponse& answer);

  struct Figures {
    std::uint64_t keys = 0, replayed = 0, conflicts = 0;
  };
  Figures figures() const;

 private:
  struct Entry {
    std::uint64_t fingerprint = 0;
    bool done = false;
    HttpResponse answer;
    std::vector<Done> waiting;
    Clock::time_point expires;
  };
  void expire(Clock::time_point now);  // under mu_

  const Clock::duration ttl_;
  const std::uint64_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<Clock::time_point, std::string>> order_;  // by expiry (= by arrival)
  std::uint64_t replayed_ = 0, conflicts_ = 0;
};

// The fingerprint of a request for IdempotencyCache::begin.
std::uint64_t request_fingerprint(const HttpRequest& req);

// The key of call `index` of a keyed JSON-RPC batch when that call alone is forwarded to the
// node of its table: "fwd-<XXH3-64 of the key, 16 hex digits>-<index>" (valid at any key length).
std::string forwarded_call_key(std::string_view key, std::size_t index);

}  // namespace tickdb
