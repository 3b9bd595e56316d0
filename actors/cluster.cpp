#include "actors/cluster.h"

#include <caf/io/all.hpp>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "actors/cluster_messages.h"
#include "actors/runtime.h"

namespace tickdb {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

using lforward_atom = caf::atom_constant<caf::atom("c_lfwd")>;    // a forward from HTTP
using deliver_atom = caf::atom_constant<caf::atom("c_deliver")>;  // our answer to a peer's
using sweep_atom = caf::atom_constant<caf::atom("c_sweep")>;      // request deadlines
using flush_atom = caf::atom_constant<caf::atom("c_flush")>;      // (address): send the outbox
using refresh_atom = caf::atom_constant<caf::atom("c_refresh")>;  // (RefreshDone): ping all now

// A forwarded answer travels in pieces of at most this many body bytes, so that no message on
// the link is much over 1 MiB (one big message blocks the link for everything else).
constexpr std::size_t kReplyChunk = 512 * 1024;
constexpr std::chrono::milliseconds kSweepEvery{50};

// Where the answer of one forwarded call goes; a call that dies unanswered (the node stops)
// answers 503.
struct ForwardDone {
  std::function<void(ForwardReply)> fn;
  void send(ForwardReply r) {
    if (!fn) return;
    auto f = std::move(fn);
    fn = nullptr;
    f(std::move(r));
  }
  ~ForwardDone();
};

ForwardReply error_reply(Errc code, const std::string& message) {
  ForwardReply r;
  r.status = errc_http_status(code);
  r.body = json{{"error", {{"code", errc_name(code)}, {"message", message}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
  if (code == Errc::node_unavailable) r.headers = {"Retry-After", "1"};
  return r;
}

ForwardDone::~ForwardDone() {
  send(error_reply(Errc::node_unavailable, "the node stopped before the answer came"));
}

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

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<tickdb::ForwardDone>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<tickdb::RefreshDone>)

namespace tickdb {

struct Cluster::Impl {
  ClusterOptions opts;
  Runtime* rt = nullptr;
  Handler handler;
  caf::actor node;
  std::uint16_t port = 0;
  std::uint64_t incarnation = 0;
  std::string self_address;  // address:port as peers reach us

  struct PeerView {
    std::string address, node, http;
    bool up = false;
    std::string state = "connecting";
    double rtt_ms = -1;
    std::vector<std::string> tables;
    std::uint64_t reconnects = 0, forwarded = 0, timeouts = 0, unavailable = 0;
    std::vector<std::pair<int, std::uint64_t>> answered;
  };
  mutable std::mutex mu;  // the view below: written by the node actor, read by HTTP threads
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
  std::uint64_t reconnects = 0, forwarded = 0, timeouts = 0, unavailable = 0;
  std::map<int, std::uint64_t> answered;  // forwarded calls by the status they got
  std::string last_error;
  // Forwarded calls sent and not answered yet (504 past their deadline, or at once when the
  // peer goes down), with the pieces of their answer received so far.
  struct Call {
    std::shared_ptr<ForwardDone> done;
    Clock::time_point deadline;
    ForwardReply reply;
    std::uint32_t next_piece = 0;
  };
  std::map<std::uint64_t, Call> in_flight;
  ForwardBatch outbox;  // calls queued for the next flush
  bool flush_sent = false;
};

// The peer is down: its calls in flight will not be answered (their outcome is unknown).
void fail_in_flight(Peer& p, const std::string& why) {
  auto calls = std::move(p.in_flight);
  p.in_flight.clear();
  for (auto& [id, call] : calls) {
    ++p.timeouts;
    ++p.answered[504];
    call.done->send(
        error_reply(Errc::node_timeout, "node '" + p.hello.node + "' went down (" + why +
                                            ") with the call in flight; the outcome is unknown"));
  }
}

struct NodeState {
  Cluster::Impl* impl = nullptr;
  std::map<std::string, Peer> peers;  // by cluster address
  std::map<std::uint64_t, caf::typed_response_promise<ForwardReply>> answering;  // peers' forwards
  std::uint64_t next_id = 1;
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
    v.forwarded = p.forwarded;
    v.answered.assign(p.answered.begin(), p.answered.end());
    v.timeouts = p.timeouts;
    v.unavailable = p.unavailable;
    if (p.have_hello)
      for (const auto& t : p.hello.tables) dir.emplace(t, p.hello.node);
    views.push_back(std::move(v));
  }
  std::lock_guard lk(m->mu);
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
              fail_in_flight(*p, "no answer to pings");
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

// Sends our answer to a peer's forwarded call, in pieces of at most kReplyChunk body bytes.
void send_reply(node_ptr self, const caf::actor& origin, std::uint64_t call, ForwardReply r) {
  if (!origin) return;
  if (r.body.size() <= kReplyChunk) {
    self->send(origin, fwd_reply_atom::value, call, std::uint32_t{0}, true, std::move(r));
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
    self->send(origin, fwd_reply_atom::value, call, piece, off + kReplyChunk >= body.size(),
               std::move(part));
  }
}

// Runs a call a peer forwarded here: its answer when the handler gave it at once (a read),
// else nullopt (it comes later, from another thread, through deliver_atom).
std::optional<ForwardReply> run_forwarded(node_ptr self, const caf::actor& origin,
                                          std::uint64_t call, ForwardRequest req) {
  struct Slot {
    std::mutex mu;
    bool returned = false;
    std::optional<ForwardReply> reply;
  };
  auto slot = std::make_shared<Slot>();
  caf::actor me = caf::actor_cast<caf::actor>(self);
  self->state.impl->handler(std::move(req), [me, origin, call, slot](ForwardReply r) {
    {
      std::lock_guard lk(slot->mu);
      if (!slot->returned) {
        slot->reply = std::move(r);
        return;
      }
    }
    caf::anon_send(me, deliver_atom::value, origin, call, std::move(r));
  });
  std::lock_guard lk(slot->mu);
  slot->returned = true;
  return std::move(slot->reply);
}

// A piece of the answer of one of our forwarded calls.
void complete(node_ptr self, std::uint64_t call, std::uint32_t piece, bool last, ForwardReply r) {
  for (auto& [addr, p] : self->state.peers) {
    auto it = p.in_flight.find(call);
    if (it == p.in_flight.end()) continue;
    auto& c = it->second;
    if (piece != c.next_piece++) {  // a piece lost: the answer cannot be trusted
      c.done->send(error_reply(Errc::node_timeout,
                               "the answer of node '" + p.hello.node + "' came incomplete"));
      p.in_flight.erase(it);
      return;
    }
    if (piece == 0)
      c.reply = std::move(r);
    else
      c.reply.body += r.body;
    if (last) {
      ++p.answered[c.reply.status];
      c.done->send(std::move(c.reply));
      p.in_flight.erase(it);
    }
    return;
  }
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
      fail_in_flight(p, self->system().render(dm.reason));
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
        caf::actor origin = caf::actor_cast<caf::actor>(self->current_sender());
        ReplyBatch ready;
        for (std::size_t i = 0; i < batch.calls.size() && i < batch.requests.size(); ++i) {
          auto r = run_forwarded(self, origin, batch.calls[i], std::move(batch.requests[i]));
          if (!r) continue;  // answered later, through deliver_atom
          if (r->body.size() > kReplyChunk) {
            send_reply(self, origin, batch.calls[i], std::move(*r));
            continue;
          }
          ready.calls.push_back(batch.calls[i]);
          ready.replies.push_back(std::move(*r));
        }
        if (!ready.calls.empty() && origin)
          self->send(origin, reply_batch_atom::value, std::move(ready));
      },
      [=](reply_batch_atom, ReplyBatch& batch) {
        for (std::size_t i = 0; i < batch.calls.size() && i < batch.replies.size(); ++i)
          complete(self, batch.calls[i], 0, true, std::move(batch.replies[i]));
      },
      [=](flush_atom, const std::string& address) {
        auto it = self->state.peers.find(address);
        if (it == self->state.peers.end()) return;
        Peer& p = it->second;
        p.flush_sent = false;
        if (p.outbox.calls.empty()) return;
        ForwardBatch batch = std::move(p.outbox);
        p.outbox = ForwardBatch{};
        if (p.handle) self->send(p.handle, fwd_batch_atom::value, std::move(batch));
      },
      [=](deliver_atom, caf::actor& origin, std::uint64_t call, ForwardReply& r) {
        send_reply(self, origin, call, std::move(r));
      },
      [=](fwd_reply_atom, std::uint64_t call, std::uint32_t piece, bool last, ForwardReply& r) {
        complete(self, call, piece, last, std::move(r));
      },
      [=](sweep_atom) {
        const auto now = Clock::now();
        for (auto& [addr, p] : self->state.peers)
          for (auto it = p.in_flight.begin(); it != p.in_flight.end();) {
            if (it->second.deadline > now) {
              ++it;
              continue;
            }
            ++p.timeouts;
            ++p.answered[504];
            it->second.done->send(error_reply(
                Errc::node_timeout,
                "node '" + p.hello.node + "' did not answer within cluster.request_timeout_ms (" +
                    std::to_string(self->state.impl->opts.request_timeout.count()) +
                    "); the outcome is unknown"));
            it = p.in_flight.erase(it);
          }
        self->delayed_send(self, kSweepEvery, sweep_atom::value);
      },
      [=](lforward_atom, const std::string& node, ForwardRequest& req,
          std::shared_ptr<ForwardDone>& done) {
        Peer* target = nullptr;
        for (auto& [a, p] : self->state.peers)
          if (p.have_hello && p.hello.node == node) target = &p;
        if (!target || !target->up || !target->handle) {
          if (target) {
            ++target->unavailable;
            ++target->answered[503];
          }
          done->send(
              error_reply(Errc::node_unavailable, "node '" + node + "', which owns this, is down"));
          return;
        }
        ++target->forwarded;
        const std::uint64_t call = self->state.next_id++;
        target->in_flight.emplace(
            call, Peer::Call{done, Clock::now() + self->state.impl->opts.request_timeout, {}, 0});
        // A plain send matched by `call` (not a CAF request): the answer may come in pieces,
        // and the deadlines are swept by one timer instead of one CAF timeout per call. Calls
        // queued behind this one in our mailbox go in the same message (flush_atom runs after
        // them).
        target->outbox.calls.push_back(call);
        target->outbox.requests.push_back(std::move(req));
        if (!target->flush_sent) {
          target->flush_sent = true;
          self->send(self, flush_atom::value, target->address);
        }
      },
  };
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
  m.node = sys.spawn(node_actor, &m);
  // Blocking, once, at start-up (not on an I/O thread, not in an actor).
  auto port = sys.middleman().publish(m.node, m.opts.port, m.opts.address.c_str(), true);
  if (!port) {
    caf::anon_send_exit(m.node, caf::exit_reason::user_shutdown);
    m.node = nullptr;
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
  caf::anon_send_exit(impl_->node, caf::exit_reason::user_shutdown);
  impl_->node = nullptr;
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
                      std::function<void(ForwardReply)> done) {
  auto d = std::make_shared<ForwardDone>();
  d->fn = std::move(done);
  if (!impl_->node) {
    d->send(error_reply(Errc::node_unavailable, "this node is stopping"));
    return;
  }
  req.from = impl_->opts.node;
  caf::anon_send(impl_->node, lforward_atom::value, node, std::move(req), std::move(d));
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
  for (const auto& p : impl_->peers)
    out.push_back({p.node.empty() ? p.address : p.node, p.up, p.rtt_ms, p.reconnects, p.forwarded,
                   p.timeouts, p.unavailable, p.answered});
  return out;
}

}  // namespace tickdb
