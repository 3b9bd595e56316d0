// SubscriptionHub: live subscriptions (API.md, Live subscriptions; DESIGN.md, Subscriptions).
// One per node. Connections (WebSocket sessions) attach to it with a SubscriberLink, the way
// frames reach them; their ops (subscribe, unsubscribe) are queued to the hub's own thread,
// which answers with a snapshot of the connection's version and `ready`, and after every
// tick compares the connection's version with the current one and sends one `delta` with the
// changes of all its subscriptions (ins/upd/del/out by its filter and select), or `progress`
// at least once a second when there was nothing to send. It keeps the versions of the last
// `subscriptions.retain_s` for resumes (`since`). A connection whose queue is over its
// high-water mark gets nothing until it drains, then one merged delta (`"conflated": true`);
// past `subscriptions.max_stall_s` it is closed with 4008 and its resume token.
//
// The tick loop never waits for the hub: it reads published versions (lock-free loads).
//
// Thread-safety: every public method may be called from any thread; the hub's state is
// guarded by one mutex, taken briefly by callers and by the hub's thread between its steps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/runtime.h"
#include "config/config.h"

namespace tickdb {

// Where a connection's frames go (a WebSocket session implements it).
class SubscriberLink {
 public:
  virtual ~SubscriberLink() = default;
  // Queues one JSON text frame (any thread).
  virtual void send(std::string frame) = 0;
  // Bytes queued and not yet written (any thread).
  virtual std::size_t queued_bytes() const = 0;
  // Closes the connection with a WebSocket close code and reason (any thread).
  virtual void close(int code, std::string reason) = 0;
};

struct SubscriptionFigures {
  std::uint64_t connections = 0, subscriptions = 0;
  std::uint64_t frames = 0, bytes = 0, deltas = 0, snapshots = 0, resets = 0, resumes = 0;
  std::uint64_t conflations = 0, slow_closes = 0;
};

class SubscriptionHub {
 public:
  SubscriptionHub(Runtime& rt, const Config& cfg);
  ~SubscriptionHub();
  SubscriptionHub(const SubscriptionHub&) = delete;
  SubscriptionHub& operator=(const SubscriptionHub&) = delete;

  // The random id of this run of the node (resume tokens are "<epoch>:<version>").
  const std::string& epoch() const { return epoch_; }

  // A new connection; sends its `hello`. 0 when subscriptions.max_connections are attached
  // (the caller closes with 4029).
  std::uint64_t attach(std::shared_ptr<SubscriberLink> link);
  void detach(std::uint64_t conn);
  // {"op": "subscribe", "sub", "table", "filter"?, "select"?, "since"?, "rate_hz"?}: answered
  // on the hub's thread with snapshot + ready (or a resume), or `error`.
  void subscribe(std::uint64_t conn, nlohmann::json op);
  void unsubscribe(std::uint64_t conn, std::string sub);

  SubscriptionFigures figures() const;
  // Stops the hub's thread (the destructor does too).
  void stop();

 private:
  struct Impl;
  void run();

  Runtime& rt_;
  Config cfg_;
  std::string epoch_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace tickdb
