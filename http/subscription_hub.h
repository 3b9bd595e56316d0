// SubscriptionHub: live subscriptions (API.md, Live subscriptions; DESIGN.md, Subscriptions).
// One per node. Connections (WebSocket and SSE sessions) attach to it with a SubscriberLink,
// the way frames reach them; their ops (subscribe, unsubscribe) are queued to the hub's own
// thread, which answers with a snapshot of the connection's version and `ready`.
//
// Rounds: the hub is told of every publish (PublishListener) and runs a round as soon as a
// new version is there, but not more often than the tick rate (so many writes in one tick
// make one frame), and at least once a tick period without one (progress, rate_hz, stalls).
// A round compares each connection's version with the current one and sends one `delta` with
// the changes of all its subscriptions (ins/upd/del/out by its filter and select), or
// `progress` at least once a second when there was nothing to send. The work is shared: each
// (table, from, to) is diffed once, each distinct subscription (filter, select) classifies
// those changes once, and connections with the same subscriptions at the same version get the
// same frame bytes (one shared buffer, not a copy each).
//
// It keeps the versions of the last `subscriptions.retain_s` (and at most about
// `subscriptions.retain_bytes` of chunks they alone hold) for resumes (`since`). A connection
// whose queue is over its high-water mark gets nothing until it drains, then one merged delta
// (`"conflated": true`), or a reset when its version has left the ring meanwhile (a stalled
// reader never holds old versions alive); past `subscriptions.max_stall_s` it is closed with
// 4008 and its resume token.
//
// The tick loop never waits for the hub: it reads published versions (lock-free loads), and
// the publish listener only stores two atomics and may release a semaphore.
//
// Thread-safety: every public method may be called from any thread and never waits for a
// round: attach sends the hello itself; attach, detach, subscribe and unsubscribe go to an
// inbox (one short lock) that the hub's thread empties in order; the connections, the ring and
// the rounds are the hub's thread's alone; figures() reads what the hub last showed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/runtime.h"
#include "config/config.h"
#include "core/histogram.h"

namespace tickdb {

// One frame for a connection: JSON text, shared by every connection that gets the same bytes.
struct HubFrame {
  std::shared_ptr<const std::string> text;
  // A delta: when its `to` version was published (steady clock, ns since its epoch); the
  // link reports it back with SubscriptionHub::frame_written once the frame is on the wire.
  // 0: not a delta.
  std::int64_t published_ns = 0;
};

// A frame object as JSON text with "type" first (the other members follow in name order), so a
// client can tell a frame's type from its first bytes.
std::string frame_text(const nlohmann::json& frame);

// The message of a WebSocket `subscribe` for a table that lives on another node of the
// cluster (Errc::misdirected, 421): a connection is one chain of one node's versions. (An SSE
// stream of such a table is relayed from its node: sse_session.h.)
std::string misdirected_subscription(std::string_view table, std::string_view node);

// Where a connection's frames go (the WebSocket and SSE sessions implement it).
class SubscriberLink {
 public:
  virtual ~SubscriberLink() = default;
  // Queues one frame (any thread).
  virtual void send(HubFrame frame) = 0;
  // Bytes queued and not yet written (any thread).
  virtual std::size_t queued_bytes() const = 0;
  // Closes the connection with a WebSocket close code and reason (any thread).
  virtual void close(int code, std::string reason) = 0;
};

struct SubscriptionFigures {
  std::uint64_t connections = 0, subscriptions = 0;
  std::uint64_t frames = 0, bytes = 0, deltas = 0, snapshots = 0, resets = 0, resumes = 0;
  std::uint64_t conflations = 0, slow_closes = 0;
  std::uint64_t queue_bytes = 0;  // queued on the links and not yet written, last round
  std::uint64_t retained_versions = 0, retained_bytes = 0;  // the resume ring (bytes: estimate)
  std::vector<std::pair<std::string, std::uint64_t>> per_table;  // subscriptions, by table
  Histogram::Counts commit_to_wire;  // publish of a delta's `to` to its frame written
  Histogram::Counts fanout;          // a round that had a new version: diffs, frames, sends
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

  // A link wrote a frame whose HubFrame::published_ns was `published_ns` (any thread).
  void frame_written(std::int64_t published_ns);

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
