#include "actors/cluster.h"

#include <atomic>
#include <caf/actor_companion.hpp>
#include <caf/io/all.hpp>
#include <charconv>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "actors/cluster_messages.h"
#include "actors/forward_table.h"
#include "actors/runtime.h"

namespace tickdb {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

using sweep_atom = caf::atom_constant<caf::atom("c_sweep")>;  // request deadlines
// (address as peers reach us): published; join the peers now
using begin_atom = caf::atom_constant<caf::atom("c_begin")>;
using refresh_atom = caf::atom_constant<caf::atom("c_refresh")>;  // (RefreshDone): ping all now

// A forwarded answer travels in pieces of at most this many body bytes, so that no message on
// the link is much over 1 MiB (one big message blocks the link for everything else).
constexpr std::size_t kReplyChunk = 512 * 1024;
constexpr std::chrono::milliseconds kSweepEvery{50};
// How long Cluster::stop waits for the node actor to end (it ends in microseconds).
constexpr std::chrono::milliseconds kStopWait{5000};

// Cluster::refresh's callback: called once, when every peer pinged has answered or failed,
// or when the node actor goes away first.
struct RefreshDone {
  std::function<void()> fn;
  void call() {
    if (!fn) return;
    auto f = std::move(fn);
    fn = nullptr;
    f();
  }
  ~RefreshDone() { call(); }
};

// The owner's end of a stream a peer relays (Cluster::StreamHandler's StreamOut): frames go
// from our sink to the relaying node's sink, which sent the opening.
class ServedStream final : public StreamOut {
 public:
  ServedStream(caf::actor sink, caf::actor origin, std::uint64_t id)
      : sink_(std::move(sink)), origin_(std::move(origin)), id_(id) {}

  void send(const std::string& text) override {
    caf::actor from, to;
    {
      std::lock_guard lk(mu_);
      if (ended_ || closed_) return;
      from = sink_;
      to = origin_;
    }
    if (!to) return;
    sent_.fetch_add(text.size(), std::memory_order_relaxed);
    if (text.size() <= kReplyChunk) {
      caf::send_as(from, to, stream_frame_atom::value, id_, std::uint32_t{0}, true, text);
      return;
    }
    std::uint32_t piece = 0;
    for (std::size_t off = 0; off < text.size(); off += kReplyChunk, ++piece)
      caf::send_as(from, to, stream_frame_atom::value, id_, piece, off + kReplyChunk >= text.size(),
                   text.substr(off, kReplyChunk));
  }
  void end(int code, const std::string& reason) override {
    caf::actor from, to;
    {
      std::lock_guard lk(mu_);
      if (ended_ || closed_) return;
      ended_ = true;
      from = sink_;
      to = origin_;
    }
    if (to) caf::send_as(from, to, stream_end_atom::value, id_, std::int32_t{code}, reason);
    if (forget_) forget_();  // nothing more to hear from the relaying node about it
  }
  std::uint64_t unacked_bytes() const override {
    const auto sent = sent_.load(std::memory_order_relaxed);
    const auto acked = acked_.load(std::memory_order_relaxed);
    return sent > acked ? sent - acked : 0;
  }
  void on_closed(std::function<void()> fn) override {
    {
      std::lock_guard lk(mu_);
      if (!closed_) {
        closed_fn_ = std::move(fn);
        return;
      }
    }
    fn();
  }

  void acked(std::uint64_t bytes) { acked_.fetch_add(bytes, std::memory_order_relaxed); }
  // Set once before the stream is shared: takes it out of the Cluster's table when it ends.
  void set_forget(std::function<void()> fn) { forget_ = std::move(fn); }
  // The relaying node closed it or went away, or this node stops: no more sends, and no actor
  // handle kept (none may outlive the actor system).
  void close() {
    std::function<void()> fn;
    {
      std::lock_guard lk(mu_);
      if (closed_) return;
      closed_ = true;
      fn = std::move(closed_fn_);
      sink_ = nullptr;
      origin_ = nullptr;
    }
    if (fn) fn();
  }

 private:
  mutable std::mutex mu_;
  caf::actor sink_, origin_;
  const std::uint64_t id_;
  std::atomic<std::uint64_t> sent_{0}, acked_{0};
  bool ended_ = false, closed_ = false;
  std::function<void()> closed_fn_;
  std::function<void()> forget_;
};

}  // namespace
}  // namespace tickdb

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<tickdb::RefreshDone>)

namespace tickdb {

struct Cluster::Impl {
  ClusterOptions opts;
  Runtime* rt = nullptr;
  Handler handler;
  StreamHandler stream_handler;
  caf::actor node;
  // The sink: the sender of our forwarded calls, so their answers come back to it. A
  // companion: an answer ends its call in `calls` on the thread that receives it (CAF's
  // middleman or its BASP worker), with no actor and no thread to wake in between. (Calls
  // peers forward here run in the node actor: a slow one must not hold the middleman.)
  caf::actor sink;
  ForwardTable calls;
  // Our calls waiting to leave, by peer address: the first of a batch schedules its flush.
  struct Outbox {
    caf::actor to;
    ForwardBatch batch;
    bool scheduled = false;
  };
  struct Outboxes {
    std::mutex mu;
    std::map<std::string, Outbox, std::less<>> by_peer;
    caf::actor sink;  // (null once the node stopped)
    void flush(const std::string& address);
    caf::actor current_sink() {
      std::lock_guard lk(mu);
      return sink;
    }
  };
  std::shared_ptr<Outboxes> outboxes = std::make_shared<Outboxes>();
  std::uint16_t port = 0;
  std::uint64_t incarnation = 0;
  std::string self_address;  // address:port as peers reach us

  struct PeerView {
    std::string address, node, http;
    bool up = false;
    std::string state = "connecting";
    double rtt_ms = -1;
    std::vector<std::string> tables;
    std::uint64_t reconnects = 0;
    caf::actor handle;  // its node actor: where HTTP threads send forwarded calls
  };
  mutable std::mutex mu;  // the view below: written by the node actor, read by HTTP threads
  bool stopped = false;
  std::vector<PeerView> peers;
  std::map<std::string, std::string, std::less<>> directory;  // table -> node (peers only)
  std::uint64_t directory_epoch = 0;

  // Relayed streams. Those this node relays (open_stream), by their id here; those peers relay
  // from here, by (the peer's sink, its id). Written by HTTP threads, the node actor and the
  // sink's thread.
  struct Relayed {
    std::string address;  // the owner's cluster address
    caf::actor to;        // its node actor
    std::shared_ptr<StreamReceiver> rx;
    std::string partial;  // the pieces of a big frame so far
    std::uint32_t next_piece = 0;
  };
  mutable std::mutex streams_mu;
  bool streams_stopped = false;
  std::uint64_t next_stream = 1;
  std::map<std::uint64_t, Relayed> relayed;
  std::map<std::pair<caf::actor_addr, std::uint64_t>, std::shared_ptr<ServedStream>> served;

  // Where calls for `node` go: its address and, when it is up, its node actor.
  struct Route {
    bool stopped = false, known = false;
    std::string address;
    caf::actor to;  // null when the node is down or unknown
  };
  Route route(std::string_view node) const {
    std::lock_guard lk(mu);
    Route r;
    r.stopped = stopped;
    for (const auto& p : peers)
      if (p.node == node) {
        r.known = true;
        r.address = p.address;
        r.to = p.up ? p.handle : caf::actor();
      }
    return r;
  }

  void say(int level, const std::string& m) const {
    if (opts.log) opts.log(level, m);
  }
};

namespace {

struct Peer {
  std::string address, host;
  std::uint16_t port = 0;
  caf::actor handle;
  bool up = false;
  bool connecting = false;
  bool refused = false;  // another cluster: said once
  int attempt = 0;
  PeerHello hello;
  bool have_hello = false;
  Clock::time_point last_answer{};
  double rtt_ms = -1;
  std::uint64_t reconnects = 0;
  std::string last_error;
};

struct NodeState {
  Cluster::Impl* impl = nullptr;
  // Ours as peers reach us (begin_atom: known once published; the Impl's copy is written by
  // the thread that starts the cluster, so the actor keeps its own).
  std::string self_address;
  std::map<std::string, Peer> peers;  // by cluster address
  std::uint64_t epoch = 0;
  std::vector<std::string> tables;  // ours, as last told
  std::mt19937_64 rng{std::random_device{}()};
};

using node_ptr = caf::stateful_actor<NodeState>*;

// A stream message to the owner's node actor `to`, from our sink (nothing once the node
// stopped, or when the owner was never reached).
template <class... Ts>
void tell_owner(Cluster::Impl& m, const caf::actor& to, Ts&&... xs) {
  if (!to) return;
  if (auto sink = m.outboxes->current_sink()) caf::send_as(sink, to, std::forward<Ts>(xs)...);
}

// The streams this node relays from the owner at `address` end: it went down or did not
// answer (each client's stream closes with 1001; its EventSource reconnects). The owner is
// told too, in case it is only slow.
void end_relayed_of(Cluster::Impl& m, const std::string& address, const std::string& why) {
  std::vector<std::pair<std::uint64_t, Cluster::Impl::Relayed>> ended;
  {
    std::lock_guard lk(m.streams_mu);
    for (auto it = m.relayed.begin(); it != m.relayed.end();)
      if (it->second.address == address) {
        ended.emplace_back(it->first, std::move(it->second));
        it = m.relayed.erase(it);
      } else {
        ++it;
      }
  }
  for (auto& [id, r] : ended) {
    tell_owner(m, r.to, stream_close_atom::value, id);
    r.rx->ended(1001, why);
  }
}

// The streams peers on `node` relay from here end: that node went down or did not answer.
// It is told too (if it is only slow, its client's stream then closes and reconnects).
void drop_served_of(Cluster::Impl& m, const caf::node_id& node, const std::string& why) {
  std::vector<std::shared_ptr<ServedStream>> dropped;
  {
    std::lock_guard lk(m.streams_mu);
    for (auto it = m.served.begin(); it != m.served.end();)
      if (it->first.first.node() == node) {
        dropped.push_back(std::move(it->second));
        it = m.served.erase(it);
      } else {
        ++it;
      }
  }
  for (auto& s : dropped) {
    s->end(1001, why);
    s->close();
  }
}

// A peer at `address` (its node actor `handle`) is gone or hung: its calls and streams end.
void peer_lost(Cluster::Impl& m, const std::string& address, const caf::actor& handle,
               const std::string& why) {
  m.calls.fail_peer(address, why);
  end_relayed_of(m, address, "the stream's node is unavailable: " + why);
  if (handle) drop_served_of(m, handle.node(), "the relaying node is unavailable: " + why);
}

bool split_address(const std::string& a, std::string& host, std::uint16_t& port) {
  const auto colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = a.substr(0, colon);
  unsigned long p = 0;
  try {
    p = std::stoul(a.substr(colon + 1));
  } catch (...) {
    return false;
  }
  if (p == 0 || p > 65535) return false;
  port = static_cast<std::uint16_t>(p);
  return true;
}

PeerHello my_hello(node_ptr self) {
  auto& st = self->state;
  auto* m = st.impl;
  std::vector<std::string> tables;
  const auto db = m->rt->current();  // held: a publish may free the version mid-loop
  for (const auto& [name, t] : db->tables()) tables.push_back(name);
  if (tables != st.tables) {
    st.tables = tables;
    ++st.epoch;
  }
  PeerHello h;
  h.cluster = m->opts.name;
  h.node = m->opts.node;
  h.http = m->opts.http;
  h.address = st.self_address;
  h.incarnation = m->incarnation;
  h.epoch = st.epoch;
  h.tables = std::move(tables);
  for (const auto& [addr, p] : st.peers)
    if (p.up) h.peers.push_back(addr);
  return h;
}

// Copies what HTTP threads read (peers, the directory) into the Impl.
void publish_view(node_ptr self) {
  auto& st = self->state;
  auto* m = st.impl;
  std::vector<Cluster::Impl::PeerView> views;
  std::map<std::string, std::string, std::less<>> dir;
  for (const auto& [addr, p] : st.peers) {
    Cluster::Impl::PeerView v;
    v.address = addr;
    v.node = p.have_hello ? p.hello.node : std::string();
    v.http = p.have_hello ? p.hello.http : std::string();
    v.up = p.up;
    v.state = p.up           ? "up"
              : p.refused    ? "refused"
              : p.handle     ? "unresponsive"
              : p.connecting ? "connecting"
                             : "down";
    v.rtt_ms = p.rtt_ms;
    if (p.have_hello) v.tables = p.hello.tables;
    v.reconnects = p.reconnects;
    v.handle = p.handle;
    if (p.have_hello)
      for (const auto& t : p.hello.tables) dir.emplace(t, p.hello.node);
    views.push_back(std::move(v));
  }
  std::lock_guard lk(m->mu);
  if (m->stopped)  // no handle may outlive the actor system (Cluster::stop)
    for (auto& v : views) v.handle = nullptr;
  if (dir != m->directory) ++m->directory_epoch;
  m->directory = std::move(dir);
  m->peers = std::move(views);
}

void schedule_connect(node_ptr self, Peer& p) {
  const std::int64_t d = std::min<std::int64_t>(1000, std::int64_t{100} << std::min(p.attempt, 4));
  std::uniform_int_distribution<std::int64_t> jitter(d / 2, d);
  ++p.attempt;
  self->delayed_send(self, std::chrono::milliseconds(jitter(self->state.rng)),
                     connect_try_atom::value, p.address);
}

Peer& add_peer(node_ptr self, const std::string& address) {
  auto& st = self->state;
  auto it = st.peers.find(address);
  if (it != st.peers.end()) return it->second;
  Peer& p = st.peers[address];
  p.address = address;
  split_address(address, p.host, p.port);
  return p;
}

void learn(node_ptr self, Peer& p, PeerHello h) {
  auto& st = self->state;
  const bool restarted = p.have_hello && p.hello.incarnation != h.incarnation;
  if (!p.up || restarted)
    st.impl->say(0, "cluster: peer '" + h.node + "' at " + p.address + " is up" +
                        (restarted ? " (restarted)" : ""));
  p.up = true;
  p.last_answer = Clock::now();
  p.attempt = 0;
  std::vector<std::string> more = h.peers;
  p.hello = std::move(h);
  p.have_hello = true;
  // Every node joins every other one.
  for (const auto& a : more)
    if (a != st.self_address && !st.peers.count(a)) {
      add_peer(self, a);
      self->send(self, connect_try_atom::value, a);
    }
  publish_view(self);
}

// Pings the peer at `address` with our hello and learns its answer; `after` (if any) runs once
// the ping was answered or failed. False when there is no connection to ping.
bool ping(node_ptr self, const std::string& address, std::function<void()> after = {}) {
  auto it = self->state.peers.find(address);
  if (it == self->state.peers.end() || !it->second.handle) return false;
  const auto sent = Clock::now();
  self->request(it->second.handle, self->state.impl->opts.failure_timeout, hello_atom::value,
                my_hello(self))
      .then(
          [=](PeerHello& h) {
            auto it2 = self->state.peers.find(address);
            if (it2 != self->state.peers.end()) {
              it2->second.rtt_ms =
                  std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
              learn(self, it2->second, std::move(h));
            }
            if (after) after();
          },
          [=](caf::error&) {
            auto it2 = self->state.peers.find(address);
            Peer* p = it2 == self->state.peers.end() ? nullptr : &it2->second;
            if (p && p->up &&
                Clock::now() - p->last_answer >= self->state.impl->opts.failure_timeout) {
              p->up = false;
              peer_lost(*self->state.impl, p->address, p->handle, "no answer to pings");
              self->state.impl->say(1, "cluster: peer '" + p->hello.node + "' at " + p->address +
                                           " does not answer: down");
              publish_view(self);
            }
            if (after) after();
          });
  return true;
}

void connect(node_ptr self, const std::string& address) {
  auto& st = self->state;
  Peer& p = add_peer(self, address);
  if (p.handle || p.connecting) return;
  if (p.host.empty()) {
    st.impl->say(2, "cluster: peer address '" + address + "' is not host:port");
    return;
  }
  p.connecting = true;
  publish_view(self);
  auto mm = self->system().middleman().actor_handle();
  self->request(mm, std::chrono::seconds(2), caf::connect_atom::value, p.host, p.port)
      .then(
          [=](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
            auto it = self->state.peers.find(address);
            if (it == self->state.peers.end()) return;
            Peer& q = it->second;
            q.connecting = false;
            if (!ptr) {
              schedule_connect(self, q);
              return;
            }
            auto h = caf::actor_cast<caf::actor>(std::move(ptr));
            if (h == self) {  // a seed that is this node
              self->state.peers.erase(it);
              publish_view(self);
              return;
            }
            if (q.have_hello) ++q.reconnects;
            q.handle = h;
            q.refused = false;
            self->monitor(h);
            ping(self, address);
          },
          [=](caf::error& e) {
            auto it = self->state.peers.find(address);
            if (it == self->state.peers.end()) return;
            Peer& q = it->second;
            q.connecting = false;
            const std::string why = self->system().render(e);
            if (e.category() == caf::atom("system") &&
                e.code() == static_cast<std::uint8_t>(caf::sec::incompatible_application_ids)) {
              if (!q.refused)
                self->state.impl->say(
                    2, "cluster: peer " + address + " refused: it belongs to another cluster (" +
                           "cluster.name is '" + self->state.impl->opts.name + "' here)");
              q.refused = true;
            } else if (why != q.last_error) {
              self->state.impl->say(
                  1, "cluster: cannot reach peer " + address + ": " + why + " (retrying)");
            }
            q.last_error = why;
            publish_view(self);
            schedule_connect(self, q);
          });
}

// Sends our answer to a peer's forwarded call, in pieces of at most kReplyChunk body bytes,
// from our sink (from any thread: pieces sent from one thread arrive in order).
void send_reply(const caf::actor& sink, const caf::actor& origin, std::uint64_t call,
                ForwardReply r) {
  if (!origin) return;
  if (r.body.size() <= kReplyChunk) {
    caf::send_as(sink, origin, fwd_reply_atom::value, call, std::uint32_t{0}, true, std::move(r));
    return;
  }
  std::string body = std::move(r.body);
  std::uint32_t piece = 0;
  for (std::size_t off = 0; off < body.size(); off += kReplyChunk, ++piece) {
    ForwardReply part;
    if (piece == 0) {
      part = r;
      part.body.clear();
    }
    part.body = body.substr(off, kReplyChunk);
    caf::send_as(sink, origin, fwd_reply_atom::value, call, piece, off + kReplyChunk >= body.size(),
                 std::move(part));
  }
}

// Whether the answer to a stream's opening says it runs (200 with kStreamHeader: a handler
// that took the request for something else answers without it).
bool stream_opened(const ForwardReply& r) {
  if (r.status != 200) return false;
  for (std::size_t i = 0; i + 1 < r.headers.size(); i += 2)
    if (r.headers[i] == kStreamHeader) return true;
  return false;
}

// The relaying node's id of a stream whose opening `r` is (kStreamHeader), if it is one.
std::optional<std::uint64_t> stream_id(const ForwardRequest& r) {
  for (std::size_t i = 0; i + 1 < r.headers.size(); i += 2)
    if (r.headers[i] == kStreamHeader) {
      std::uint64_t id = 0;
      const std::string& v = r.headers[i + 1];
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), id);
      if (ec != std::errc() || end != v.data() + v.size() || id == 0) return std::nullopt;
      return id;
    }
  return std::nullopt;
}

// Runs the calls a peer (`origin`: its sink) forwarded here, in the node actor. The answers
// the handler gave at once (reads) leave together; the others (writes: they come later, from
// another thread) leave alone when they come. Answers are sent as our sink.
void run_forwarded(Cluster::Impl& m, const caf::actor& origin, ForwardBatch& batch) {
  struct Slot {
    std::mutex mu;
    bool returned = false;
    std::optional<ForwardReply> reply;
  };
  const caf::actor sink = m.outboxes->current_sink();
  ReplyBatch ready;
  for (std::size_t i = 0; i < batch.calls.size() && i < batch.requests.size(); ++i) {
    const std::uint64_t call = batch.calls[i];
    auto slot = std::make_shared<Slot>();
    auto reply = [sink, origin, call, slot](ForwardReply r) {
      {
        std::lock_guard lk(slot->mu);
        if (!slot->returned) {
          slot->reply = std::move(r);
          return;
        }
      }
      send_reply(sink, origin, call, std::move(r));
    };
    if (auto id = stream_id(batch.requests[i]); id && m.stream_handler && origin && sink) {
      // The opening of a stream the peer relays: registered before the handler runs (its
      // first frame may leave before its answer); dropped again unless it answers 200.
      auto out = std::make_shared<ServedStream>(sink, origin, *id);
      const auto key = std::make_pair(origin.address(), *id);
      auto forget = [&m, key, weak = std::weak_ptr<ServedStream>(out)] {
        std::lock_guard lk(m.streams_mu);
        auto it = m.served.find(key);
        if (it != m.served.end() && it->second == weak.lock()) m.served.erase(it);
      };
      out->set_forget(forget);
      {
        std::lock_guard lk(m.streams_mu);
        if (!m.streams_stopped) m.served[key] = out;
      }
      m.stream_handler(std::move(batch.requests[i]), out,
                       [out, forget, reply = std::move(reply)](ForwardReply r) {
                         if (!stream_opened(r)) {
                           forget();
                           out->close();
                         }
                         reply(std::move(r));
                       });
    } else {
      m.handler(std::move(batch.requests[i]), std::move(reply));
    }
    std::optional<ForwardReply> r;
    {
      std::lock_guard lk(slot->mu);
      slot->returned = true;
      r = std::move(slot->reply);
    }
    if (!r) continue;  // answered later
    if (r->body.size() > kReplyChunk) {
      send_reply(sink, origin, call, std::move(*r));
      continue;
    }
    ready.calls.push_back(call);
    ready.replies.push_back(std::move(*r));
  }
  if (!ready.calls.empty() && origin)
    caf::send_as(sink, origin, reply_batch_atom::value, std::move(ready));
}

caf::behavior node_actor(node_ptr self, Cluster::Impl* impl) {
  self->state.impl = impl;
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [addr, p] : self->state.peers) {
      if (!p.handle || p.handle.address() != dm.source) continue;
      if (p.up)
        self->state.impl->say(1, "cluster: lost peer '" + p.hello.node + "' at " + addr + ": " +
                                     self->system().render(dm.reason));
      p.up = false;
      const caf::actor gone = std::move(p.handle);
      p.handle = nullptr;
      p.attempt = 0;
      peer_lost(*self->state.impl, p.address, gone, self->system().render(dm.reason));
      publish_view(self);
      schedule_connect(self, p);
    }
  });
  return {
      [=](begin_atom, const std::string& address) {
        // Published: peers may be joined (our hello names this address).
        self->state.self_address = address;
        for (const auto& a : self->state.impl->opts.peers) {
          add_peer(self, a);
          self->send(self, connect_try_atom::value, a);
        }
        self->send(self, ping_all_atom::value);
        self->send(self, sweep_atom::value);
      },
      [=](connect_try_atom, const std::string& address) { connect(self, address); },
      [=](ping_all_atom) {
        std::vector<std::string> addrs;
        for (const auto& [a, p] : self->state.peers) addrs.push_back(a);
        for (const auto& a : addrs) ping(self, a);
        self->delayed_send(self, self->state.impl->opts.heartbeat, ping_all_atom::value);
      },
      [=](announce_atom) {
        std::vector<std::string> addrs;
        for (const auto& [a, p] : self->state.peers) addrs.push_back(a);
        for (const auto& a : addrs) ping(self, a);
      },
      [=](refresh_atom, std::shared_ptr<RefreshDone>& done) {
        // Pings every peer at once; `done` runs when the last has answered or failed (each
        // within cluster.failure_timeout_ms), with the directory their hellos gave.
        std::vector<std::string> addrs;
        for (const auto& [a, p] : self->state.peers) addrs.push_back(a);
        auto left = std::make_shared<std::size_t>(addrs.size() + 1);
        auto one_done = [left, done] {
          if (--*left == 0) done->call();
        };
        for (const auto& a : addrs)
          if (!ping(self, a, one_done)) one_done();
        one_done();
      },
      [=](hello_atom, PeerHello& h) -> PeerHello {
        // A peer's ping, or a node that joins us: answer with ours, and learn it.
        if (h.cluster == self->state.impl->opts.name && !h.address.empty() &&
            h.address != self->state.self_address) {
          Peer& p = add_peer(self, h.address);
          if (!p.handle) {
            if (auto s = caf::actor_cast<caf::actor>(self->current_sender())) {
              p.handle = s;
              self->monitor(s);
            }
          }
          learn(self, p, std::move(h));
        }
        return my_hello(self);
      },
      [=](fwd_batch_atom, ForwardBatch& batch) {
        run_forwarded(*self->state.impl, caf::actor_cast<caf::actor>(self->current_sender()),
                      batch);
      },
      [=](stream_ack_atom, std::uint64_t id, std::uint64_t bytes) {
        auto& m = *self->state.impl;
        if (!self->current_sender()) return;
        std::lock_guard lk(m.streams_mu);
        auto it = m.served.find({self->current_sender()->address(), id});
        if (it != m.served.end()) it->second->acked(bytes);
      },
      [=](stream_close_atom, std::uint64_t id) {
        auto& m = *self->state.impl;
        std::shared_ptr<ServedStream> s;
        if (!self->current_sender()) return;
        {
          std::lock_guard lk(m.streams_mu);
          auto it = m.served.find({self->current_sender()->address(), id});
          if (it == m.served.end()) return;
          s = std::move(it->second);
          m.served.erase(it);
        }
        s->close();
      },
      [=](sweep_atom) {
        self->state.impl->calls.expire(Clock::now(),
                                       self->state.impl->opts.request_timeout.count());
        self->delayed_send(self, kSweepEvery, sweep_atom::value);
      },
  };
}

caf::actor_companion* companion(const caf::actor& a) {
  return static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(a));
}

// A piece of a frame of a stream this node relays (on the sink's thread): a whole frame goes
// to its receiver; a piece out of order ends the stream (the owner is told).
void stream_piece(Cluster::Impl& m, const caf::node_id& from, std::uint64_t id, std::uint32_t n,
                  bool last, std::string text) {
  std::shared_ptr<StreamReceiver> rx;
  bool broken = false;
  caf::actor to;
  {
    std::lock_guard lk(m.streams_mu);
    auto it = m.relayed.find(id);
    // Closed meanwhile, or not from the stream's owner.
    if (it == m.relayed.end() || !it->second.to || it->second.to.node() != from) return;
    auto& r = it->second;
    if (n != r.next_piece) {
      broken = true;
      to = r.to;
      rx = std::move(r.rx);
      m.relayed.erase(it);
    } else if (!last) {
      r.partial += text;
      ++r.next_piece;
      return;
    } else {
      if (n) text = std::move(r.partial) + text;
      r.partial.clear();
      r.next_piece = 0;
      rx = r.rx;
    }
  }
  if (broken) {
    tell_owner(m, to, stream_close_atom::value, id);
    rx->ended(1011, "a frame of the stream came incomplete");
    return;
  }
  rx->frame(std::move(text));
}

// Ends the sink while the actor system lives: no handler runs after this, and the sink leaves
// the system's registry (a peer's messages put it there). A companion left to end with its
// last reference ends in the system's destructor, after the parts its cleanup uses.
void end_sink(caf::actor_system& sys, const caf::actor& sink) {
  auto* c = companion(sink);
  c->on_enqueue(nullptr);  // waits for a handler that runs
  caf::scoped_execution_unit ctx(&sys);
  c->cleanup(caf::make_error(caf::exit_reason::user_shutdown), &ctx);
}

// Ends the node actor and waits (at most kStopWait) until it has: no handler of it, all of
// which use the Impl, runs afterwards.
void end_node_actor(Cluster::Impl& m) {
  if (!m.node) return;
  caf::scoped_actor self{m.rt->system()};
  self->monitor(m.node);
  self->send_exit(m.node, caf::exit_reason::user_shutdown);
  bool ended = false;
  self->receive([&](const caf::down_msg&) { ended = true; }, caf::after(kStopWait) >> [] {});
  if (!ended)
    m.say(2, "cluster: the node actor did not end within " + std::to_string(kStopWait.count()) +
                 " ms of the stop");
  m.node = nullptr;
}

}  // namespace

Cluster::Cluster() : impl_(std::make_unique<Impl>()) {}
Cluster::~Cluster() {
  stop();
}

Result<std::unique_ptr<Cluster>> Cluster::start(ClusterOptions opts, Runtime& rt, Handler handler,
                                                StreamHandler streams) {
  std::unique_ptr<Cluster> c(new Cluster());
  Impl& m = *c->impl_;
  m.opts = std::move(opts);
  m.rt = &rt;
  m.handler = std::move(handler);
  m.stream_handler = std::move(streams);
  m.incarnation = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  auto& sys = rt.system();
  // Hidden: nothing of the system waits for it; Cluster::stop ends it (end_sink).
  m.sink = sys.spawn<caf::actor_companion, caf::hidden>();
  // Runs on the sender's thread (the middleman's, for a peer's answer): thread-safe, short.
  companion(m.sink)->on_enqueue([impl = &m](caf::mailbox_element_ptr e) {
    if (!e) return;
    auto& c = e->content();
    if (c.match_elements<reply_batch_atom, ReplyBatch>()) {
      auto& b = c.get_mutable_as<ReplyBatch>(1);
      for (std::size_t i = 0; i < b.calls.size() && i < b.replies.size(); ++i)
        impl->calls.piece(b.calls[i], 0, true, std::move(b.replies[i]));
    } else if (c.match_elements<fwd_reply_atom, std::uint64_t, std::uint32_t, bool,
                                ForwardReply>()) {
      impl->calls.piece(c.get_as<std::uint64_t>(1), c.get_as<std::uint32_t>(2), c.get_as<bool>(3),
                        std::move(c.get_mutable_as<ForwardReply>(4)));
    } else if (c.match_elements<stream_frame_atom, std::uint64_t, std::uint32_t, bool,
                                std::string>()) {
      if (!e->sender) return;
      stream_piece(*impl, e->sender->node(), c.get_as<std::uint64_t>(1), c.get_as<std::uint32_t>(2),
                   c.get_as<bool>(3), std::move(c.get_mutable_as<std::string>(4)));
    } else if (c.match_elements<stream_end_atom, std::uint64_t, std::int32_t, std::string>()) {
      std::shared_ptr<StreamReceiver> rx;
      if (!e->sender) return;
      {
        std::lock_guard lk(impl->streams_mu);
        auto it = impl->relayed.find(c.get_as<std::uint64_t>(1));
        if (it == impl->relayed.end() || !it->second.to ||
            it->second.to.node() != e->sender->node())
          return;
        rx = std::move(it->second.rx);
        impl->relayed.erase(it);
      }
      rx->ended(c.get_as<std::int32_t>(2), std::move(c.get_mutable_as<std::string>(3)));
    }
  });
  m.outboxes->sink = m.sink;
  m.node = sys.spawn(node_actor, &m);
  // Blocking, once, at start-up (not on an I/O thread, not in an actor).
  auto port = sys.middleman().publish(m.node, m.opts.port, m.opts.address.c_str(), true);
  if (!port) {
    end_node_actor(m);  // the Cluster, its Impl with it, ends as this returns
    end_sink(sys, m.sink);
    m.sink = nullptr;
    return make_error(Errc::invalid_argument, "cannot publish the cluster node on " +
                                                  m.opts.address + ":" +
                                                  std::to_string(m.opts.port) +
                                                  " (cluster.port): " + sys.render(port.error()));
  }
  m.port = *port;
  m.self_address = m.opts.address + ":" + std::to_string(m.port);
  // Only now: the node actor joined the peers with its hello (which names this address) while
  // this thread was still writing it (ThreadSanitizer's find).
  caf::anon_send(m.node, begin_atom::value, m.self_address);
  return c;
}

void Cluster::stop() {
  if (!impl_ || !impl_->node) return;
  // The node actor has ended when this returns: its handlers use the Impl, which may go right
  // after (a Cluster can end before the actor system). Sending it the exit and going on let a
  // down handler's publish_view write into a freed Impl: "free(): invalid pointer" in the
  // cluster routing test, once in about 50 runs under load.
  end_node_actor(*impl_);
  // After this no answer reaches the table.
  end_sink(impl_->rt->system(), impl_->sink);
  // No handle of an actor may outlive the actor system (the Cluster may): drop them all.
  impl_->sink = nullptr;
  {
    std::lock_guard lk(impl_->outboxes->mu);
    impl_->outboxes->sink = nullptr;
    impl_->outboxes->by_peer.clear();
  }
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopped = true;
    for (auto& p : impl_->peers) p.handle = nullptr;
  }
  impl_->calls.fail_all("the node stopped before the answer came");
  // Streams end on both sides: ours close their clients' streams; the peers' lose their sends.
  std::map<std::uint64_t, Impl::Relayed> relayed;
  std::vector<std::shared_ptr<ServedStream>> served;
  {
    std::lock_guard lk(impl_->streams_mu);
    impl_->streams_stopped = true;
    relayed.swap(impl_->relayed);
    for (auto& [k, s] : impl_->served) served.push_back(std::move(s));
    impl_->served.clear();
  }
  for (auto& s : served) s->close();
  for (auto& [id, r] : relayed) r.rx->ended(1001, "this node is stopping");
}

std::uint16_t Cluster::port() const {
  return impl_->port;
}
const ClusterOptions& Cluster::options() const {
  return impl_->opts;
}

std::optional<Cluster::Owner> Cluster::owner(std::string_view table) const {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->directory.find(table);
  if (it == impl_->directory.end()) return std::nullopt;
  Owner o{it->second, false};
  for (const auto& p : impl_->peers)
    if (p.node == it->second) o.up = o.up || p.up;
  return o;
}

std::optional<bool> Cluster::peer_up(std::string_view node) const {
  std::lock_guard lk(impl_->mu);
  std::optional<bool> out;
  for (const auto& p : impl_->peers)
    if (p.node == node) out = (out && *out) || p.up;
  return out;
}

void Cluster::forward(const std::string& node, ForwardRequest req,
                      std::function<void(ForwardReply)> done, const Defer& defer) {
  Impl& m = *impl_;
  req.from = m.opts.node;
  // The calling (HTTP) thread sends the call to the owner's node actor itself, with the sink
  // as its sender: the answer comes back to the sink on the middleman's thread. No actor of
  // ours in between (each was a thread to wake, twice per call).
  Impl::Route r = m.route(node);  // (a named object: clang 14 cannot capture bindings)
  if (r.stopped) return done(forward_error_reply(Errc::node_unavailable, "this node is stopping"));
  if (!r.to) {
    if (r.known) m.calls.count_unavailable(r.address);
    return done(forward_error_reply(Errc::node_unavailable,
                                    "node '" + node + "', which owns this, is down"));
  }
  const std::uint64_t call =
      m.calls.open(r.address, node, Clock::now() + m.opts.request_timeout, std::move(done));
  bool first = false;
  {
    std::lock_guard lk(m.outboxes->mu);
    Impl::Outbox& o = m.outboxes->by_peer[r.address];
    o.to = std::move(r.to);
    o.batch.calls.push_back(call);
    o.batch.requests.push_back(std::move(req));
    first = !o.scheduled;
    o.scheduled = true;
  }
  if (!first) return;  // it leaves with the flush the batch's first call scheduled
  if (defer)
    defer([boxes = m.outboxes, address = r.address] { boxes->flush(address); });
  else
    m.outboxes->flush(r.address);
}

void Cluster::Impl::Outboxes::flush(const std::string& address) {
  caf::actor from, dest;
  ForwardBatch batch;
  {
    std::lock_guard lk(mu);
    auto it = by_peer.find(address);
    if (it == by_peer.end()) return;
    it->second.scheduled = false;
    from = sink;  // (Cluster::stop clears it under this lock)
    dest = it->second.to;
    batch = std::move(it->second.batch);
    it->second.batch = ForwardBatch{};
  }
  if (!batch.calls.empty()) caf::send_as(from, dest, fwd_batch_atom::value, std::move(batch));
}

std::uint64_t Cluster::open_stream(const std::string& node, ForwardRequest req,
                                   std::shared_ptr<StreamReceiver> rx) {
  Impl& m = *impl_;
  const Impl::Route to_owner = m.route(node);
  std::uint64_t id = 0;
  {
    std::lock_guard lk(m.streams_mu);
    if (!m.streams_stopped) {
      id = m.next_stream++;
      m.relayed[id] = Impl::Relayed{to_owner.address, to_owner.to, rx, {}, 0};
    }
  }
  if (id == 0) {
    rx->opened(forward_error_reply(Errc::node_unavailable, "this node is stopping"));
    return 0;
  }
  req.headers.push_back(kStreamHeader);
  req.headers.push_back(std::to_string(id));
  // The opening is a forwarded call: its answer, or its 503 / 504, says whether the stream
  // runs. One that failed here may still have opened there (an answer too late): the owner
  // is told to close it.
  forward(node, std::move(req), [impl = &m, id](ForwardReply r) {
    std::shared_ptr<StreamReceiver> got;
    caf::actor owner;
    {
      std::lock_guard lk(impl->streams_mu);
      auto it = impl->relayed.find(id);
      if (it == impl->relayed.end()) return;  // closed meanwhile
      got = it->second.rx;
      owner = it->second.to;
      if (!stream_opened(r)) impl->relayed.erase(it);
    }
    if (!stream_opened(r)) {
      tell_owner(*impl, owner, stream_close_atom::value, id);
      if (r.status == 200)  // a node that does not serve streams answered it as a request
        r = forward_error_reply(Errc::internal,
                                "the node of this table did not open the stream (is it older?)");
    }
    got->opened(std::move(r));
  });
  return id;
}

void Cluster::stream_written(std::uint64_t stream, std::uint64_t bytes) {
  caf::actor to;
  {
    std::lock_guard lk(impl_->streams_mu);
    auto it = impl_->relayed.find(stream);
    if (it == impl_->relayed.end()) return;
    to = it->second.to;
  }
  tell_owner(*impl_, to, stream_ack_atom::value, stream, bytes);
}

void Cluster::close_stream(std::uint64_t stream) {
  caf::actor to;
  {
    std::lock_guard lk(impl_->streams_mu);
    auto it = impl_->relayed.find(stream);
    if (it == impl_->relayed.end()) return;
    to = std::move(it->second.to);
    impl_->relayed.erase(it);
  }
  tell_owner(*impl_, to, stream_close_atom::value, stream);
}

std::size_t Cluster::relayed_streams() const {
  std::lock_guard lk(impl_->streams_mu);
  return impl_->relayed.size();
}
std::size_t Cluster::served_streams() const {
  std::lock_guard lk(impl_->streams_mu);
  return impl_->served.size();
}

void Cluster::announce() {
  if (impl_->node) caf::anon_send(impl_->node, announce_atom::value);
}

void Cluster::refresh(std::function<void()> done) {
  auto d = std::make_shared<RefreshDone>();
  d->fn = std::move(done);
  if (impl_->node) caf::anon_send(impl_->node, refresh_atom::value, std::move(d));
}

json Cluster::view() const {
  const Impl& m = *impl_;
  json nodes = json::array();
  json mine = json::array();
  const auto db = m.rt->current();  // held: a publish may free the version mid-loop
  for (const auto& [name, t] : db->tables()) mine.push_back(name);
  nodes.push_back({{"name", m.opts.node},
                   {"address", m.self_address},
                   {"http", m.opts.http},
                   {"up", true},
                   {"state", "self"},
                   {"rtt_ms", 0},
                   {"tables", std::move(mine)}});
  std::lock_guard lk(m.mu);
  for (const auto& p : m.peers)
    nodes.push_back({{"name", p.node.empty() ? p.address : p.node},
                     {"address", p.address},
                     {"http", p.http},
                     {"up", p.up},
                     {"state", p.state},
                     {"rtt_ms", p.rtt_ms < 0 ? json(nullptr) : json(p.rtt_ms)},
                     {"tables", p.tables}});
  return {{"node", m.opts.node}, {"directory_epoch", m.directory_epoch}, {"nodes", nodes}};
}

std::vector<Cluster::PeerFigures> Cluster::figures() const {
  std::lock_guard lk(impl_->mu);
  std::vector<PeerFigures> out;
  for (const auto& p : impl_->peers) {
    auto c = impl_->calls.counts(p.address);
    out.push_back({p.node.empty() ? p.address : p.node, p.up, p.rtt_ms, p.reconnects, c.forwarded,
                   c.timeouts, c.unavailable, std::move(c.answered)});
  }
  return out;
}

}  // namespace tickdb
