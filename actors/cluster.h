// Cluster: this node's membership in a cluster of tickdb nodes joined over CAF's remote actors
// (DESIGN.md, Cluster; API.md, Cluster).
//
// A node actor is published on cluster.address:cluster.port. It connects to the seed peers of
// cluster.peers asynchronously (the middleman actor's connect request, never a blocking
// remote_actor()), monitors each peer, pings it every cluster.heartbeat_ms with this node's
// hello (name, HTTP address, incarnation, its tables, the peers it knows: so every node joins
// every other one), and reconnects with exponential backoff and jitter. CAF's own heartbeats
// (set from cluster.heartbeat_ms / cluster.failure_timeout_ms) catch a dead connection; the
// pings catch a node whose process is there but does not answer (SIGSTOP): a peer that has
// not answered a ping for cluster.failure_timeout_ms is down. cluster.name is CAF's app
// identifier, so a node of another cluster is refused (and logged: CAF logs nothing).
//
// The directory (table -> node) is what the peers' hellos say; a table created here is
// announced at once. forward() sends an HTTP request to the node that owns a table and hands
// back its answer: 503 node_unavailable (with Retry-After) for a node known to be down,
// 504 node_timeout when no answer came within cluster.request_timeout_ms. The calling thread
// sends the call itself (batched with the others its round forwards) to the peer's node
// actor, and the answer ends the call on the thread that receives it (ForwardTable): no actor
// of ours in between on this node.
//
// Live streams are relayed too (open_stream): a node asked for the event stream of a table
// of another node opens it there with a forwarded call, and the owner's subscription hub
// sends that stream's frames back to it over the same link, each acknowledged once it is
// written to the client, so the owner's back-pressure (conflation, reset, slow close) sees
// the client's pace. Either end or the link going down ends the stream on both nodes.
//
// No CAF in this header (the HTTP layer includes it). Messages between nodes are plain
// serializable values (actors/cluster_messages.h).
//
// Thread-safety: every method is safe from any thread; start/stop from one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace tickdb {

class Runtime;

struct ClusterOptions {
  std::string name = "tickdb";        // cluster.name
  std::string node = "tickdb";        // node.name
  std::string address = "127.0.0.1";  // cluster.address
  std::uint16_t port = 0;             // cluster.port (0: any free port)
  std::vector<std::string> peers;     // cluster.peers: "host:port" seeds
  std::string http;                   // this node's HTTP address:port, for /cluster
  std::chrono::milliseconds heartbeat{250};
  std::chrono::milliseconds failure_timeout{1000};
  std::chrono::milliseconds request_timeout{2000};
  // Where joins, refusals and losses are told (level: 0 info, 1 warning, 2 error).
  std::function<void(int level, const std::string& message)> log;
};

// An HTTP request on its way to the node that owns its table, and the answer that comes back.
struct ForwardRequest {
  std::string method, target, body, authorization;
  std::vector<std::string> headers;  // name, value, name, value, ...
  std::string from;                  // the node that forwarded it
};
struct ForwardReply {
  std::int32_t status = 500;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::string> headers;  // name, value, ...
};

// The request header that makes a forwarded call the opening of a relayed stream (its value:
// the stream's id on the node that relays it). Set by Cluster::open_stream only: a client's
// own is dropped before a request is forwarded.
inline constexpr const char* kStreamHeader = "x-tickdb-stream";

// The owner's end of a relayed stream (Cluster's StreamHandler gets one): frames go back to
// the node that relays it until either side ends it. Thread-safety: every method may be called
// from any thread; frames sent from one thread arrive in order.
class StreamOut {
 public:
  virtual ~StreamOut() = default;
  // One frame (JSON text); sent in pieces when it is big. Nothing once ended or closed.
  virtual void send(const std::string& text) = 0;
  // Ends the stream from this side (code and reason as a WebSocket close: 4008 slow, 1001
  // stopping); the relaying node closes its client's stream with them.
  virtual void end(int code, const std::string& reason) = 0;
  // Bytes of frames sent and not yet written to the client by the relaying node.
  virtual std::uint64_t unacked_bytes() const = 0;
  // `fn` runs once (on some thread) when the relaying node closed the stream or went down, or
  // this node stops; at once if that happened already.
  virtual void on_closed(std::function<void()> fn) = 0;
};

// The relaying node's end of a stream (Cluster::open_stream). Called on CAF's threads: short,
// thread-safe work only.
class StreamReceiver {
 public:
  virtual ~StreamReceiver() = default;
  // The owner's answer to the opening: 200 when the stream runs; else the answer to give the
  // client instead (the owner's error, or 503 / 504 when it is down or did not answer).
  // Frames may come before it.
  virtual void opened(ForwardReply reply) = 0;
  virtual void frame(std::string text) = 0;
  // The owner ended it, or the link to the owner went down, or this node stops: no more frames.
  virtual void ended(int code, std::string reason) = 0;
};

class Cluster {
 public:
  // Runs a request forwarded here by a peer (on any thread); `reply` answers it, once.
  using Handler = std::function<void(ForwardRequest, std::function<void(ForwardReply)> reply)>;
  // Opens a stream a peer asked for (a forwarded call with kStreamHeader), in the node actor:
  // `reply` answers the opening (200 with a kStreamHeader header: the stream runs and `out`
  // carries its frames; anything else, a plain 200 too: refused, and `out` is dropped).
  using StreamHandler = std::function<void(ForwardRequest, std::shared_ptr<StreamOut> out,
                                           std::function<void(ForwardReply)> reply)>;

  // Publishes the node actor (blocking: call it at start-up, not from an actor or an I/O
  // thread) and starts joining the peers. invalid_argument naming the key when the address
  // or port cannot be used. Without a stream handler, streams are answered by `handler`.
  static Result<std::unique_ptr<Cluster>> start(ClusterOptions opts, Runtime& rt, Handler handler,
                                                StreamHandler streams = {});
  ~Cluster();
  void stop();

  std::uint16_t port() const;
  const ClusterOptions& options() const;

  struct Owner {
    std::string node;
    bool up = false;
  };
  // The other node that owns `table`, if a peer said so.
  std::optional<Owner> owner(std::string_view table) const;
  // Whether `node` is a peer we know (up or down), and whether it is up.
  std::optional<bool> peer_up(std::string_view node) const;
  // Sends `req` to `node` and gives its answer to `done` (on some thread), or the 503/504 of
  // API.md. Calls go to a node in batches: `defer` (if given) runs its argument later on this
  // thread, and the calls made until then leave with this one; without it the call leaves now
  // (with any that wait).
  using Defer = std::function<void(std::function<void()>)>;
  void forward(const std::string& node, ForwardRequest req, std::function<void(ForwardReply)> done,
               const Defer& defer = {});
  // Opens the stream `req` asks `node` for (its `open` answer, then frames, reach `rx`); the
  // stream's id for the two calls below. On failure `rx->opened` gets the 503 / 504 at once
  // or when it happens.
  std::uint64_t open_stream(const std::string& node, ForwardRequest req,
                            std::shared_ptr<StreamReceiver> rx);
  // The client was written `bytes` of the stream's frames (their text's bytes).
  void stream_written(std::uint64_t stream, std::uint64_t bytes);
  // The client went away: the owner stops the stream. Frames on their way to `rx` may still
  // reach it (a receiver that closed drops them).
  void close_stream(std::uint64_t stream);
  // Streams this node relays, and streams peers relay from here (for tests and figures).
  std::size_t relayed_streams() const;
  std::size_t served_streams() const;

  // This node's tables changed: tell every peer now (not only with the next ping).
  void announce();
  // Asks every peer for its hello now and calls `done` (on some thread) once all have
  // answered or failed (at most cluster.failure_timeout_ms): the directory is then as fresh
  // as the peers can make it. At once when the node is stopping.
  void refresh(std::function<void()> done);

  // GET /cluster: {"node", "directory_epoch", "nodes": [...]} (this node first).
  nlohmann::json view() const;
  struct PeerFigures {
    std::string peer;  // its node name (or address until it said its name)
    bool up = false;
    double rtt_ms = -1;
    std::uint64_t reconnects = 0, forwarded = 0, timeouts = 0, unavailable = 0;
    std::vector<std::pair<int, std::uint64_t>> answered;  // forwarded calls by status
  };
  std::vector<PeerFigures> figures() const;

  struct Impl;

 private:
  Cluster();
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickdb
