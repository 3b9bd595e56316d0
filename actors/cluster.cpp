#include "actors/cluster.h"

#include <caf/actor_companion.hpp>
#include <caf/io/all.hpp>
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

using sweep_atom = caf::atom_constant<caf::atom("c_sweep")>;      // request deadlines
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

}  // namespace
}  // namespace tickdb

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<tickdb::RefreshDone>)

namespace tickdb {

struct Cluster::Impl {
  ClusterOptions opts;
  Runtime* rt = nullptr;
  Handler handler;
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
  std::map<std::string, Peer> peers;  // by cluster address
  std::uint64_t epoch = 0;
  std::vector<std::string> tables;  // ours, as last told
  std::mt19937_64 rng{std::random_device{}()};
};

using node_ptr = caf::stateful_actor<NodeState>*;

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
  h.address = m->self_address;
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
    if (a != st.impl->self_address && !st.peers.count(a)) {
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
              self->state.impl->calls.fail_peer(p->address, "no answer to pings");
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
    m.handler(std::move(batch.requests[i]), [sink, origin, call, slot](ForwardReply r) {
      {
        std::lock_guard lk(slot->mu);
        if (!slot->returned) {
          slot->reply = std::move(r);
          return;
        }
      }
      send_reply(sink, origin, call, std::move(r));
    });
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
      p.handle = nullptr;
      p.attempt = 0;
      self->state.impl->calls.fail_peer(p.address, self->system().render(dm.reason));
      publish_view(self);
      schedule_connect(self, p);
    }
  });
  for (const auto& a : impl->opts.peers) {
    add_peer(self, a);
    self->send(self, connect_try_atom::value, a);
  }
  self->send(self, ping_all_atom::value);
  self->send(self, sweep_atom::value);
  return {
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
            h.address != self->state.impl->self_address) {
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

Result<std::unique_ptr<Cluster>> Cluster::start(ClusterOptions opts, Runtime& rt, Handler handler) {
  std::unique_ptr<Cluster> c(new Cluster());
  Impl& m = *c->impl_;
  m.opts = std::move(opts);
  m.rt = &rt;
  m.handler = std::move(handler);
  m.incarnation = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  auto& sys = rt.system();
  // Hidden: nothing of the system waits for it; Cluster::stop ends it (end_sink).
  m.sink = sys.spawn<caf::actor_companion, caf::hidden>();
  // Runs on the sender's thread (the middleman's, for a peer's answer): thread-safe, short.
  companion(m.sink)->on_enqueue([calls = &m.calls](caf::mailbox_element_ptr e) {
    if (!e) return;
    auto& c = e->content();
    if (c.match_elements<reply_batch_atom, ReplyBatch>()) {
      auto& b = c.get_mutable_as<ReplyBatch>(1);
      for (std::size_t i = 0; i < b.calls.size() && i < b.replies.size(); ++i)
        calls->piece(b.calls[i], 0, true, std::move(b.replies[i]));
    } else if (c.match_elements<fwd_reply_atom, std::uint64_t, std::uint32_t, bool,
                                ForwardReply>()) {
      calls->piece(c.get_as<std::uint64_t>(1), c.get_as<std::uint32_t>(2), c.get_as<bool>(3),
                   std::move(c.get_mutable_as<ForwardReply>(4)));
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
  caf::actor to;
  std::string address;
  bool known = false, stopped = false;
  {
    std::lock_guard lk(m.mu);
    stopped = m.stopped;
    for (const auto& p : m.peers)
      if (p.node == node) {
        known = true;
        address = p.address;
        to = p.up ? p.handle : caf::actor();
      }
  }
  if (stopped) return done(forward_error_reply(Errc::node_unavailable, "this node is stopping"));
  if (!to) {
    if (known) m.calls.count_unavailable(address);
    return done(forward_error_reply(Errc::node_unavailable,
                                    "node '" + node + "', which owns this, is down"));
  }
  const std::uint64_t call =
      m.calls.open(address, node, Clock::now() + m.opts.request_timeout, std::move(done));
  bool first = false;
  {
    std::lock_guard lk(m.outboxes->mu);
    Impl::Outbox& o = m.outboxes->by_peer[address];
    o.to = std::move(to);
    o.batch.calls.push_back(call);
    o.batch.requests.push_back(std::move(req));
    first = !o.scheduled;
    o.scheduled = true;
  }
  if (!first) return;  // it leaves with the flush the batch's first call scheduled
  if (defer)
    defer([boxes = m.outboxes, address] { boxes->flush(address); });
  else
    m.outboxes->flush(address);
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
