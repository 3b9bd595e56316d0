#include "http/subscription_hub.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <semaphore>
#include <unordered_map>

#include "actors/publish_listener.h"
#include "core/filter.h"
#include "core/json_codec.h"
#include "core/projection.h"
#include "core/query.h"
#include "core/version_diff.h"
#include "http/message.h"

namespace tickdb {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string random_epoch() {
  std::random_device rd;
  std::uint64_t v = (std::uint64_t{rd()} << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// What the connections' threads hand to the hub's thread, in the order they happened.
struct Op {
  enum class Kind { attach, detach, subscribe, unsubscribe } kind;
  std::uint64_t conn;
  json body;                            // subscribe
  std::string sub;                      // unsubscribe
  std::weak_ptr<SubscriberLink> link;   // attach
  std::shared_ptr<const DbVersion> at;  // attach: the version its hello named
  std::size_t hello_bytes = 0;          // attach
};

// A subscription of one connection, resolved against the schema of the table it was
// (re)subscribed at.
struct Sub {
  std::string name, table;
  json filter_json;  // as given (null: none)
  std::vector<std::string> select;
  std::string spec;  // table, filter and select as one key: equal specs classify alike
  std::shared_ptr<const TableSchema> schema;
  std::optional<CompiledFilter> filter;
  std::optional<Projection> proj;
};

struct Conn {
  std::weak_ptr<SubscriberLink> link;
  std::shared_ptr<const DbVersion> at;  // the version of the connection's last frame
  std::map<std::string, Sub> subs;
  std::string signature;  // the names and specs of subs: equal signatures get equal frames
  Clock::time_point last_frame = Clock::now();
  std::optional<Clock::time_point> stalled_since;
  // Stalled while `at` left the resume ring: `at` is let go (lost_version is where the client
  // is), every subscription is reset when it drains, and its ops wait until then.
  bool lost = false;
  std::uint64_t lost_version = 0;
  std::deque<Op> deferred;
  double rate_hz = 0;  // 0: every tick
  Clock::time_point next_delta = Clock::now();
};

std::int64_t steady_ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

void sign(Conn& c) {
  c.signature.clear();
  for (const auto& [name, s] : c.subs) {
    c.signature += name;
    c.signature += '\x1f';
    c.signature += s.spec;
    c.signature += '\x1e';
  }
}

}  // namespace

std::string misdirected_subscription(std::string_view table, std::string_view node) {
  return "table '" + std::string(table.substr(0, 64)) + "' lives on node '" +
         std::string(node.substr(0, 64)) +
         "': a WebSocket connection follows the tables of its node, subscribe there (GET "
         "/cluster lists each node's http address)";
}

std::string frame_text(const json& frame) {
  std::string out = "{\"type\":";
  out += json_text(frame.contains("type") ? frame["type"] : json("unknown"));
  for (const auto& [k, v] : frame.items()) {
    if (k == "type") continue;
    out += ',';
    append_json_string(out, k);
    out += ':';
    out += json_text(v);
  }
  out += '}';
  return out;
}

namespace {

void append_ids(std::string& out, const std::vector<std::uint64_t>& ids) {
  out += '[';
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
}

// One record that differs between two versions of a table (diff_tables' visit arguments).
struct Change {
  std::uint64_t id;
  const std::byte* before;  // nullptr: inserted
  const std::byte* after;   // nullptr: deleted
};
// nullopt: the two versions cannot be compared slot by slot (a relayout).
using Changes = std::optional<std::vector<Change>>;

Changes diff_of(const TableVersion& before, const TableVersion& after) {
  std::vector<Change> out;
  if (&before == &after) return out;
  auto d =
      diff_tables(before, after, [&](std::uint64_t id, const std::byte* b, const std::byte* a) {
        out.push_back(Change{id, b, a});
      });
  if (!d) return std::nullopt;
  return out;
}

// The changes as one subscription sees them, the body of its "<sub>": {...} member of a
// delta; empty when nothing concerns it.
// One subscription's changes by kind as they are found, then the body of its member.
struct Kinds {
  explicit Kinds(const Projection& p) : proj(p) {}
  const Projection& proj;
  std::string ins, upd;
  std::size_t n_ins = 0, n_upd = 0;
  std::vector<std::uint64_t> del, out;
  void row(std::string& into, std::size_t& n, const std::byte* rec, std::uint64_t id) {
    if (n++) into += ',';
    proj.append_record(into, rec, id);
  }
  void inserted(const std::byte* rec, std::uint64_t id) { row(ins, n_ins, rec, id); }
  void updated(const std::byte* rec, std::uint64_t id) { row(upd, n_upd, rec, id); }
  // {"ins":[...],"upd":[...],"del":[...],"out":[...]}, or empty when there is nothing.
  std::string body() const {
    if (!n_ins && !n_upd && del.empty() && out.empty()) return {};
    std::string m = "{\"ins\":[" + ins + "],\"upd\":[" + upd + "],\"del\":";
    append_ids(m, del);
    m += ",\"out\":";
    append_ids(m, out);
    m += '}';
    return m;
  }
};

std::string classify(const Sub& s, const std::vector<Change>& changes) {
  Kinds k(*s.proj);
  for (const Change& ch : changes) {
    const std::byte* b = ch.before;
    const std::byte* a = ch.after;
    const bool in_before = b && (!s.filter || s.filter->match(b, ch.id));
    const bool in_after = a && (!s.filter || s.filter->match(a, ch.id));
    if (!in_before && in_after)
      k.inserted(a, ch.id);
    else if (in_before && in_after && s.proj->differs(b, a))
      k.updated(a, ch.id);
    else if (in_before && !a)
      k.del.push_back(ch.id);
    else if (in_before && !in_after)
      k.out.push_back(ch.id);
  }
  return k.body();
}

// How a schema change between two versions of a subscription's table concerns it.
enum class SchemaChange { reset, ended, kept };
// `reset` when fields were added or changed type (the rows change shape); `ended` when a
// field it uses is gone (filtered on, selected, or any field without an explicit select);
// `kept` when only fields it does not use were removed: it goes on without a reset.
SchemaChange schema_change_for(const Sub& s, const TableSchema& before, const TableSchema& after) {
  bool removed = false;
  for (const Field& f : before.fields()) {
    auto i = after.index_of(f.name);
    if (!i) {
      removed = true;
      continue;
    }
    if (!(after.fields()[*i].type == f.type)) return SchemaChange::reset;
  }
  for (const Field& f : after.fields())
    if (!before.index_of(f.name)) return SchemaChange::reset;
  if (!removed) return SchemaChange::reset;  // laid out again for another reason
  return s.select.empty() ? SchemaChange::ended : SchemaChange::kept;
}

// classify() across a relayout that removed fields `now` does not use: records are matched
// by id (a relayout keeps ids in slot order, not slots), `was` judges the old records and
// `now` the new ones, and a row is `upd` when its selected fields' JSON differs.
std::string classify_across(const Sub& was, const Sub& now, const TableVersion& before,
                            const TableVersion& after) {
  Kinds k(*now.proj);
  auto b = before.begin(), be = before.end();
  auto a = after.begin(), ae = after.end();
  std::string jb, ja;
  while (b != be || a != ae) {
    const bool take_b = b != be && (a == ae || (*b).id() <= (*a).id());
    const bool take_a = a != ae && (b == be || (*a).id() <= (*b).id());
    const std::uint64_t id = take_b ? (*b).id() : (*a).id();
    const std::byte* rb = take_b ? (*b).data() : nullptr;
    const std::byte* ra = take_a ? (*a).data() : nullptr;
    const bool in_before = rb && (!was.filter || was.filter->match(rb, id));
    const bool in_after = ra && (!now.filter || now.filter->match(ra, id));
    if (!in_before && in_after) {
      k.inserted(ra, id);
    } else if (in_before && in_after) {
      jb.clear();
      ja.clear();
      was.proj->append_record(jb, rb, id);
      now.proj->append_record(ja, ra, id);
      if (jb != ja) k.updated(ra, id);
    } else if (in_before && !ra) {
      k.del.push_back(id);
    } else if (in_before) {
      k.out.push_back(id);
    }
    if (take_b) ++b;
    if (take_a) ++a;
  }
  return k.body();
}

void append_member(std::string& into, const std::string& name, const std::string& body) {
  if (!into.empty()) into += ',';
  append_json_string(into, name);
  into += ':';
  into += body;
}

// The bytes of the chunks of `v` that `prev` does not share (an estimate of what keeping
// `v` beside `prev` costs; index nodes are not counted).
std::uint64_t unshared_bytes(const DbVersion& v, const DbVersion* prev) {
  std::uint64_t n = 0;
  for (const auto& [name, t] : v.tables()) {
    const TableVersion* p = prev ? prev->table(name) : nullptr;
    if (p == t.get()) continue;
    const std::uint64_t chunk_bytes = std::uint64_t{t->records_per_chunk()} * t->record_size();
    const std::size_t k_prev = p ? p->chunk_count() : 0;
    for (std::size_t k = 0; k < t->chunk_count(); ++k)
      if (k >= k_prev || t->chunk(k) != p->chunk(k)) n += chunk_bytes;
  }
  return n;
}

}  // namespace

// Everything but the inbox, the figures shown and the atomics belongs to the hub's thread:
// connections' threads never wait for a round.
struct SubscriptionHub::Impl : PublishListener {
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> next_conn{1};
  std::atomic<std::uint64_t> attached{0};  // connections attached and not detached
  std::mutex inbox_mu;
  std::deque<Op> inbox;
  std::map<std::uint64_t, Conn> conns;
  void push(Op op) {
    {
      std::lock_guard lock(inbox_mu);
      inbox.push_back(std::move(op));
    }
    wake.release();  // an op is served at once, whatever a publish did
  }
  // Versions the connections may resume from, oldest first, with when the hub saw each and
  // the bytes of chunks it does not share with the one before it.
  struct Retained {
    std::shared_ptr<const DbVersion> db;
    Clock::time_point seen;
    std::uint64_t bytes;
  };
  std::deque<Retained> ring;
  std::uint64_t ring_bytes = 0;  // of every entry but the oldest (its chunks are the base)
  SubscriptionFigures fig;
  // What figures() answers: fig and the ring's and connections' figures as of the end of the
  // hub's last step, so a scrape never waits for a round (guarded by fig_mu, not mu).
  mutable std::mutex fig_mu;
  SubscriptionFigures shown;
  void show() {
    SubscriptionFigures f = fig;
    std::map<std::string, std::uint64_t> by_table;
    for (const auto& [id, c] : conns)
      for (const auto& [name, s] : c.subs) ++by_table[s.table];
    f.per_table.assign(by_table.begin(), by_table.end());
    f.retained_versions = ring.size();
    f.retained_bytes = ring_bytes;
    std::lock_guard lock(fig_mu);
    shown = std::move(f);
  }
  Histogram fanout;  // the hub's thread

  // ---- waking the hub: publishes and ops ----
  // An op always wakes the hub. A publish wakes it once per round: the first publish after a
  // round moves the next round to min_gap after the last one; the ones after it change
  // nothing, and waking a thread per commit (thousands a second under small writes) cost the
  // writers' CPUs more than the round itself. The hub clears `poked` when it starts a round.
  std::counting_semaphore<> wake{0};
  std::atomic<bool> poked{false};
  void poke() {
    if (!poked.exchange(true, std::memory_order_acq_rel)) wake.release();
  }

  // ---- when versions were published (by version, the last kPublished of them) ----
  static constexpr std::size_t kPublished = 4096;
  std::array<std::atomic<std::uint64_t>, kPublished> pub_version{};
  std::array<std::atomic<std::int64_t>, kPublished> pub_ns{};
  Histogram wire;  // record_ns_shared: the links' threads

  void published(std::uint64_t v) noexcept override {
    const auto i = v % kPublished;
    pub_ns[i].store(steady_ns(Clock::now()), std::memory_order_relaxed);
    pub_version[i].store(v, std::memory_order_release);
    poke();
  }
  std::int64_t published_ns(std::uint64_t v) const {
    const auto i = v % kPublished;
    if (pub_version[i].load(std::memory_order_acquire) != v) return 0;
    const std::int64_t ns = pub_ns[i].load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    return pub_version[i].load(std::memory_order_relaxed) == v ? ns : 0;
  }

  void send(Conn& c, HubFrame frame) {
    auto link = c.link.lock();
    if (!link) return;
    ++fig.frames;
    fig.bytes += frame.text->size();
    c.last_frame = Clock::now();
    link->send(std::move(frame));
  }
  void send(Conn& c, std::string text) {
    send(c, HubFrame{std::make_shared<const std::string>(std::move(text)), 0});
  }
  void error(Conn& c, const std::string& sub, Errc code, const std::string& msg) {
    json e = {{"type", "error"}, {"code", std::string(errc_name(code))}, {"message", msg}};
    if (!sub.empty()) e["sub"] = sub;
    send(c, frame_text(e));
  }
  std::shared_ptr<const DbVersion> find_version(std::uint64_t v) const {
    for (const auto& r : ring)
      if (r.db->version() == v) return r.db;
    return nullptr;
  }
  void retain(const std::shared_ptr<const DbVersion>& v, Clock::time_point now) {
    if (!ring.empty() && ring.back().db->version() == v->version()) return;
    const std::uint64_t b = ring.empty() ? 0 : unshared_bytes(*v, ring.back().db.get());
    ring.push_back(Retained{v, now, b});
    if (ring.size() > 1) ring_bytes += b;
  }
  // Drops what is older than `keep` or past `max_bytes`; the newest always stays.
  void prune(Clock::time_point now, Clock::duration keep, std::uint64_t max_bytes) {
    while (ring.size() > 1 && (ring.front().seen + keep < now || ring_bytes > max_bytes)) {
      ring.pop_front();
      ring_bytes -= ring.front().bytes;
    }
  }
};

SubscriptionHub::SubscriptionHub(Runtime& rt, const Config& cfg)
    : rt_(rt), cfg_(cfg), epoch_(random_epoch()), impl_(std::make_unique<Impl>()) {
  rt_.set_publish_listener(impl_.get());
  thread_ = std::thread([this] { run(); });
}

SubscriptionHub::~SubscriptionHub() {
  stop();
}

void SubscriptionHub::stop() {
  rt_.set_publish_listener(nullptr);
  impl_->stopping.store(true);
  impl_->wake.release();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t SubscriptionHub::attach(std::shared_ptr<SubscriberLink> link) {
  auto v = rt_.current();
  if (impl_->attached.fetch_add(1) >= cfg_.subscriptions_max_connections) {
    impl_->attached.fetch_sub(1);
    return 0;
  }
  const std::uint64_t id = impl_->next_conn.fetch_add(1);
  json hello = {{"type", "hello"},
                {"node", cfg_.node_name},
                {"epoch", epoch_},
                {"version", v->version()},
                {"tick_rate_hz", rt_.tick_rate()},
                {"limits",
                 {{"max_subscriptions", cfg_.subscriptions_max_per_connection},
                  {"max_frame_bytes", cfg_.ws_max_frame_bytes},
                  {"max_incoming_bytes", cfg_.ws_max_incoming_bytes},
                  {"retain_s", cfg_.subscriptions_retain_s},
                  {"max_stall_s", cfg_.subscriptions_max_stall_s}}}};
  // The hello goes out first, from here; the hub takes the connection over from its version
  // (the chain starts there, so the ring keeps it) when it reads the attach.
  auto text = std::make_shared<const std::string>(frame_text(hello));
  Op op{Op::Kind::attach, id, {}, {}, link, v, text->size()};
  link->send(HubFrame{std::move(text), 0});
  impl_->push(std::move(op));
  return id;
}

void SubscriptionHub::detach(std::uint64_t conn) {
  impl_->attached.fetch_sub(1);
  impl_->push(Op{Op::Kind::detach, conn, {}, {}, {}, {}, 0});
}

void SubscriptionHub::subscribe(std::uint64_t conn, json op) {
  impl_->push(Op{Op::Kind::subscribe, conn, std::move(op), {}, {}, {}, 0});
}

void SubscriptionHub::unsubscribe(std::uint64_t conn, std::string sub) {
  impl_->push(Op{Op::Kind::unsubscribe, conn, {}, std::move(sub), {}, {}, 0});
}

void SubscriptionHub::frame_written(std::int64_t published_ns) {
  if (published_ns <= 0) return;
  impl_->wire.record_ns_shared(steady_ns(Clock::now()) - published_ns);
}

SubscriptionFigures SubscriptionHub::figures() const {
  SubscriptionFigures f;
  {
    std::lock_guard lock(impl_->fig_mu);
    f = impl_->shown;
  }
  f.commit_to_wire = impl_->wire.snapshot();
  f.fanout = impl_->fanout.snapshot();
  return f;
}

namespace {

// Resolves a subscription's filter and select against the table's current schema.
Status resolve(Sub& s, const TableVersion& t) {
  s.schema = t.schema();
  s.filter.reset();
  if (!s.filter_json.is_null()) {
    auto f = parse_filter(s.filter_json);
    if (!f) return f.error();
    auto c = CompiledFilter::compile(*f, *t.schema());
    if (!c) return c.error();
    s.filter = std::move(*c);
  }
  auto p = Projection::make(*t.schema(), s.select);
  if (!p) return p.error();
  s.proj = std::move(*p);
  return {};
}

// The table description cut to the selected top-level fields.
json schema_of(const Sub& s, const TableVersion& t) {
  json d = table_to_json(t);
  if (s.select.empty()) return d;
  json fields = json::array();
  for (const auto& f : d["fields"]) {
    const std::string name = f["name"];
    for (const auto& sel : s.select)
      if (sel == name || sel.rfind(name + ".", 0) == 0) {
        fields.push_back(f);
        break;
      }
  }
  d["fields"] = std::move(fields);
  return d;
}

}  // namespace

void SubscriptionHub::run() {
  Impl& m = *impl_;
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / rt_.tick_rate()));
  // A round for a new version waits for this much after the last one (a little less than a
  // period: the tick loop's own jitter must not push a tick's version into the next round).
  const auto min_gap = period * 9 / 10;
  const std::size_t frame_limit = cfg_.ws_max_frame_bytes;
  const std::size_t high_water = std::max<std::size_t>(4 * frame_limit, 1u << 20);
  const auto keep = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(cfg_.subscriptions_retain_s));
  Clock::time_point last_round = Clock::now() - period;
  std::uint64_t round_version = ~std::uint64_t{0};

  // The snapshot frames of a subscription at a version, and its ready: shared by every
  // connection that subscribes alike at that version (a thousand clients connecting at once
  // cost one encoding and one copy of the bytes). Dropped at each round.
  struct Snapshot {
    std::vector<std::shared_ptr<const std::string>> frames;
    std::shared_ptr<const std::string> ready;
  };
  std::unordered_map<std::string, Snapshot> snapshots;

  // Sends the snapshot of `s` at the connection's version, then ready.
  auto snapshot = [&](Conn& c, Sub& s, const TableVersion& t) {
    std::string key = std::to_string(c.at->version()) + '\0' + s.name + '\0' + s.spec;
    const void* ids[2] = {&t, s.schema.get()};
    key.append(reinterpret_cast<const char*>(ids), sizeof ids);
    auto [it, fresh] = snapshots.try_emplace(std::move(key));
    Snapshot& snap = it->second;
    if (fresh) {
      std::string rows;
      std::size_t n = 0, in_frame = 0;
      auto flush = [&] {
        if (in_frame == 0) return;
        std::string f = "{\"type\":\"snapshot\",\"sub\":";
        append_json_string(f, s.name);
        f += ",\"version\":" + std::to_string(c.at->version()) + ",\"rows\":[" + rows + "]}";
        snap.frames.push_back(std::make_shared<const std::string>(std::move(f)));
        rows.clear();
        in_frame = 0;
      };
      for (RecordView r : t) {
        if (s.filter && !s.filter->match(r.data(), r.id())) continue;
        if (in_frame) rows += ',';
        s.proj->append_record(rows, r.data(), r.id());
        ++n;
        ++in_frame;
        if (rows.size() > frame_limit / 2) flush();
      }
      flush();
      json ready = {{"type", "ready"}, {"sub", s.name},    {"version", c.at->version()},
                    {"count", n},      {"resumed", false}, {"schema", schema_of(s, t)}};
      snap.ready = std::make_shared<const std::string>(frame_text(ready));
    }
    for (const auto& f : snap.frames) m.send(c, HubFrame{f, 0});
    m.send(c, HubFrame{snap.ready, 0});
    ++m.fig.snapshots;
  };

  auto end = [&](Conn& c, const std::string& name, const char* reason, const std::string& msg) {
    json e = {{"type", "ended"}, {"sub", name}, {"reason", reason}};
    if (!msg.empty()) e["message"] = msg;
    m.send(c, frame_text(e));
    c.subs.erase(name);
    --m.fig.subscriptions;
  };
  // Subscription `name` of `c` starts again at `cur` (the connection's version now): reset
  // and a snapshot, or ended when its table or a field it uses is gone. The caller signs c.
  auto restart = [&](Conn& c, const std::string& name, const DbVersion& cur, const char* reason) {
    Sub& s = c.subs[name];
    const TableVersion* t = cur.table(s.table);
    if (!t) return end(c, name, "table_dropped", "");
    if (Status st = resolve(s, *t); !st) return end(c, name, "field_removed", st.message());
    json r = {{"type", "reset"}, {"sub", name}, {"reason", reason}};
    ++m.fig.resets;
    m.send(c, frame_text(r));
    snapshot(c, s, *t);
  };

  // ---- one subscribe or unsubscribe ----
  auto run_op = [&](Op& op) {
    if (op.kind == Op::Kind::attach) {
      Conn& c = m.conns[op.conn];
      c.link = op.link;
      c.at = op.at;
      ++m.fig.connections;
      ++m.fig.frames;
      m.fig.bytes += op.hello_bytes;
      m.retain(op.at, Clock::now());
      return;
    }
    if (op.kind == Op::Kind::detach) {
      auto it = m.conns.find(op.conn);
      if (it == m.conns.end()) return;
      m.fig.subscriptions -= it->second.subs.size();
      --m.fig.connections;
      m.conns.erase(it);
      return;
    }
    auto it = m.conns.find(op.conn);
    if (it == m.conns.end()) return;
    Conn& c = it->second;
    if (c.lost) return c.deferred.push_back(std::move(op));  // answered once it drains
    if (op.kind == Op::Kind::unsubscribe) {
      auto s = c.subs.find(op.sub);
      if (s == c.subs.end()) {
        m.error(c, op.sub, Errc::not_found, "no subscription '" + op.sub.substr(0, 64) + "'");
        return;
      }
      c.subs.erase(s);
      sign(c);
      --m.fig.subscriptions;
      json e = {{"type", "ended"}, {"sub", op.sub}, {"reason", "unsubscribed"}};
      m.send(c, frame_text(e));
      return;
    }
    const json& b = op.body;
    const std::string name =
        b.contains("sub") && b["sub"].is_string() ? b["sub"].get<std::string>() : "";
    auto bad = [&](const std::string& msg) { m.error(c, name, Errc::invalid_argument, msg); };
    for (const auto& [k, v] : b.items())
      if (k != "op" && k != "sub" && k != "table" && k != "filter" && k != "select" &&
          k != "since" && k != "rate_hz")
        return bad("subscribe: unknown key '" + k.substr(0, 64) + "'");
    if (name.empty() || name.size() > 64)
      return bad("subscribe: 'sub' must be a name of 1..64 characters");
    if (c.subs.count(name))
      return m.error(c, name, Errc::already_exists,
                     "subscribe: subscription '" + name + "' exists on this connection");
    if (c.subs.size() >= cfg_.subscriptions_max_per_connection)
      return m.error(c, name, Errc::resource_exhausted,
                     "subscribe: at most " + std::to_string(cfg_.subscriptions_max_per_connection) +
                         " subscriptions per connection");
    if (!b.contains("table") || !b["table"].is_string())
      return bad("subscribe: 'table' must be a string");
    Sub s;
    s.name = name;
    s.table = b["table"].get<std::string>();
    if (b.contains("filter")) s.filter_json = b["filter"];
    if (b.contains("select")) {
      auto names = field_names_from_json(b["select"], "select");
      if (!names) return bad("subscribe: " + names.message());
      s.select = std::move(*names);
    }
    if (b.contains("rate_hz")) {
      if (!b["rate_hz"].is_number() || b["rate_hz"].get<double>() <= 0)
        return bad("subscribe: 'rate_hz' must be a positive number");
      c.rate_hz = std::min(b["rate_hz"].get<double>(), rt_.tick_rate());
    }
    s.spec = s.table + '\0' + s.filter_json.dump() + '\0';
    for (const auto& f : s.select) s.spec += f + ',';
    const TableVersion* t = c.at->table(s.table);
    if (!t) {
      // Inside a cluster the table may live on another node: say which (a connection's
      // frames are one chain of this node's versions; it subscribes there).
      if (const auto* locate = rt_.registry().table_locator())
        if (auto owner = (*locate)(s.table))
          return m.error(c, name, Errc::misdirected, misdirected_subscription(s.table, *owner));
      return m.error(c, name, Errc::not_found,
                     "table '" + s.table.substr(0, 64) + "' does not exist");
    }
    if (Status st = resolve(s, *t); !st) return m.error(c, name, st.code(), st.message());
    // A resume: one catch-up from the version the client had to the connection's.
    std::shared_ptr<const DbVersion> from;
    if (b.contains("since")) {
      if (!b["since"].is_string())
        return bad("subscribe: 'since' must be a resume token \"<epoch>:<version>\"");
      const std::string tok = b["since"];
      const auto colon = tok.find(':');
      if (colon != std::string::npos && tok.substr(0, colon) == epoch_) {
        std::uint64_t v = 0;
        try {
          v = std::stoull(tok.substr(colon + 1));
        } catch (...) {
        }
        from = v <= c.at->version() ? m.find_version(v) : nullptr;
      }
    }
    const TableVersion* old = from ? from->table(s.table) : nullptr;
    const Changes caught_up =
        old && old->schema() == t->schema() ? diff_of(*old, *t) : std::nullopt;
    if (caught_up) {
      std::string ch;
      if (std::string body = classify(s, *caught_up); !body.empty())
        append_member(ch, s.name, body);
      std::string f = "{\"type\":\"ready\",\"sub\":";
      append_json_string(f, s.name);
      f += ",\"version\":" + std::to_string(c.at->version()) +
           ",\"from\":" + std::to_string(from->version()) +
           ",\"count\":null,\"resumed\":true,\"changes\":{" + ch +
           "},\"schema\":" + json_text(schema_of(s, *t)) + "}";
      ++m.fig.resumes;
      m.send(c, std::move(f));
    } else {
      if (b.contains("since")) {
        json r = {{"type", "reset"}, {"sub", s.name}, {"reason", "resume_unavailable"}};
        ++m.fig.resets;
        m.send(c, frame_text(r));
      }
      snapshot(c, s, *t);
    }
    c.subs.emplace(name, std::move(s));
    sign(c);
    ++m.fig.subscriptions;
  };

  // ---- one round: a delta (or progress) for every connection that is due ----
  // Shared by the connections of one round: diffs by (before, after), classified changes by
  // (before, after, subscription spec, schema), frames by (from, conflated, signature).
  struct PairKey {
    const void* a;
    const void* b;
    bool operator==(const PairKey&) const = default;
  };
  struct PairHash {
    std::size_t operator()(const PairKey& k) const {
      return std::hash<const void*>()(k.a) * 31 + std::hash<const void*>()(k.b);
    }
  };
  std::unordered_map<PairKey, Changes, PairHash> diffs;
  std::unordered_map<std::string, std::string> classified;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> frames;

  auto changes_for = [&](const Sub& s, const TableVersion& before,
                         const TableVersion& after) -> const std::string* {
    auto [d, fresh] = diffs.try_emplace(PairKey{&before, &after});
    if (fresh) d->second = diff_of(before, after);
    if (!d->second) return nullptr;
    std::string key(reinterpret_cast<const char*>(&d->first), sizeof(PairKey));
    const TableSchema* schema = s.schema.get();
    key.append(reinterpret_cast<const char*>(&schema), sizeof schema);
    key += s.spec;
    auto [cl, fresh_cl] = classified.try_emplace(std::move(key));
    if (fresh_cl) cl->second = classify(s, *d->second);
    return &cl->second;
  };

  auto round = [&](const std::shared_ptr<const DbVersion>& cur, Clock::time_point now) {
    m.retain(cur, now);
    m.prune(now, keep, cfg_.subscriptions_retain_bytes);
    const std::uint64_t oldest = m.ring.front().db->version();
    const std::uint64_t tick = rt_.ticks();
    const std::int64_t pub_ns = m.published_ns(cur->version());
    const HubFrame progress{
        std::make_shared<const std::string>(
            "{\"type\":\"progress\",\"version\":" + std::to_string(cur->version()) +
            ",\"tick\":" + std::to_string(tick) + "}"),
        0};
    std::uint64_t queued = 0;
    diffs.clear();
    classified.clear();
    frames.clear();
    snapshots.clear();
    for (auto it = m.conns.begin(); it != m.conns.end();) {
      Conn& c = it->second;
      auto link = c.link.lock();
      if (!link) {
        m.fig.subscriptions -= c.subs.size();
        --m.fig.connections;
        it = m.conns.erase(it);
        continue;
      }
      ++it;
      const std::size_t q = link->queued_bytes();
      queued += q;
      if (!c.lost && (c.subs.empty() || c.at->version() == cur->version())) {
        if (now - c.last_frame >= std::chrono::seconds(1)) {
          c.at = cur;
          m.send(c, progress);
        }
        continue;
      }
      // A slow reader: nothing more for it until it drains; closed past max_stall_s. It
      // holds no version older than the ring's.
      if (q > high_water) {
        if (!c.stalled_since) c.stalled_since = now;
        if (!c.lost && c.at->version() < oldest) {
          c.lost = true;
          c.lost_version = c.at->version();
          c.at.reset();
        }
        if (now - *c.stalled_since >
            std::chrono::duration<double>(cfg_.subscriptions_max_stall_s)) {
          ++m.fig.slow_closes;
          link->close(4008,
                      epoch_ + ":" + std::to_string(c.lost ? c.lost_version : c.at->version()));
          c.link.reset();
        }
        continue;
      }
      if (c.rate_hz > 0 && now < c.next_delta) continue;
      if (c.rate_hz > 0)
        c.next_delta = now + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(1.0 / c.rate_hz));
      const bool conflated = c.stalled_since.has_value();
      c.stalled_since.reset();
      if (c.lost) {
        // It fell behind the ring while stalled: every subscription starts again at `cur`.
        c.lost = false;
        c.at = cur;
        m.send(c, progress);
        std::vector<std::string> names;
        for (const auto& [name, s] : c.subs) names.push_back(name);
        for (const auto& name : names) restart(c, name, *cur, "slow_consumer");
        sign(c);
        while (!c.deferred.empty()) {
          Op op = std::move(c.deferred.front());
          c.deferred.pop_front();
          run_op(op);
        }
        continue;
      }
      // The same subscriptions from the same version: the same frame as another connection's.
      std::string fkey = std::to_string(c.at->version()) + (conflated ? 'c' : '-') + c.signature;
      if (auto f = frames.find(fkey); f != frames.end()) {
        if (f->second) {
          ++m.fig.deltas;
          if (conflated) ++m.fig.conflations;
          c.at = cur;
          m.send(c, HubFrame{f->second, pub_ns});
        } else if (now - c.last_frame >= std::chrono::seconds(1)) {
          c.at = cur;
          m.send(c, progress);
        }
        continue;
      }
      std::string changes;
      std::vector<std::string> ended, reset, too_big;
      std::vector<std::pair<std::string, std::string>> removed;  // (sub, why): ended
      bool relaid = false;  // a subscription went on across a relayout: not a shared frame
      for (auto& [name, s] : c.subs) {
        const TableVersion* before = c.at->table(s.table);
        const TableVersion* after = cur->table(s.table);
        if (!after) {
          ended.push_back(name);
          continue;
        }
        if (before && before->schema() != after->schema() && s.schema == before->schema()) {
          // A schema change: the subscription goes on, resets or ends (API.md, Schema).
          const auto how = schema_change_for(s, *before->schema(), *after->schema());
          if (how == SchemaChange::reset) {
            reset.push_back(name);
            continue;
          }
          Sub now = s;
          const Status st = resolve(now, *after);
          if (how == SchemaChange::ended || !st) {
            removed.emplace_back(name, st ? "a field of the table is gone and the subscription "
                                            "selects every field"
                                          : st.message());
            continue;
          }
          if (std::string body = classify_across(s, now, *before, *after); !body.empty())
            append_member(changes, name, body);
          s = std::move(now);
          relaid = true;
          continue;
        }
        const std::string* ch = before && before->schema() == after->schema()
                                    ? changes_for(s, *before, *after)
                                    : nullptr;
        if (!ch) {
          reset.push_back(name);
          continue;
        }
        if (!ch->empty()) append_member(changes, name, *ch);
      }
      if (changes.size() > frame_limit) {
        // More changes than one frame holds: every subscription starts again from a snapshot
        // at `cur` (snapshots come in bounded frames), after a progress that moves the chain.
        for (const auto& entry : c.subs) {
          const std::string& name =
              entry.first;  // not a structured binding: clang 14 cannot capture one
          if (std::find(ended.begin(), ended.end(), name) == ended.end() &&
              std::find(reset.begin(), reset.end(), name) == reset.end() &&
              std::find_if(removed.begin(), removed.end(),
                           [&](const auto& r) { return r.first == name; }) == removed.end())
            too_big.push_back(name);
        }
        changes.clear();
      }
      const bool plain =
          ended.empty() && reset.empty() && too_big.empty() && removed.empty() && !relaid;
      std::shared_ptr<const std::string> frame;
      if (!changes.empty())
        frame = std::make_shared<const std::string>(
            "{\"type\":\"delta\",\"from\":" + std::to_string(c.at->version()) +
            ",\"to\":" + std::to_string(cur->version()) + ",\"tick\":" + std::to_string(tick) +
            (conflated ? ",\"conflated\":true" : "") + ",\"changes\":{" + changes + "}}");
      if (plain) frames.emplace(std::move(fkey), frame);
      if (frame) {
        ++m.fig.deltas;
        if (conflated) ++m.fig.conflations;
        c.at = cur;
        m.send(c, HubFrame{std::move(frame), pub_ns});
      } else if (!plain || now - c.last_frame >= std::chrono::seconds(1)) {
        c.at = cur;
        m.send(c, progress);
      }
      if (plain) continue;
      // The chain is at `cur` now: a reset subscribes again at it; an ended one is gone.
      for (const auto& name : ended) end(c, name, "table_dropped", "");
      for (const auto& [name, why] : removed) end(c, name, "field_removed", why);
      for (const auto& name : too_big) restart(c, name, *cur, "too_many_changes");
      for (const auto& name : reset) restart(c, name, *cur, "schema_changed");
      sign(c);
    }
    m.fig.queue_bytes = queued;
    // Drop the round's references to versions before the next wait.
    diffs.clear();
    classified.clear();
    frames.clear();
    snapshots.clear();
  };

  while (true) {
    // Sleep until a round is due: a period after the last one, or min_gap after it once a
    // new version is there; a publish or an op wakes the hub to look again.
    {
      if (m.stopping.load()) return;
      bool ops;
      {
        std::lock_guard lock(m.inbox_mu);
        ops = !m.inbox.empty();
      }
      const auto due = last_round + (rt_.current()->version() != round_version ? min_gap : period);
      if (!ops && Clock::now() < due) {
        (void)m.wake.try_acquire_until(due);
      }
    }
    if (m.stopping.load()) return;
    std::deque<Op> ops;
    {
      std::lock_guard lock(m.inbox_mu);
      ops.swap(m.inbox);
    }
    for (Op& op : ops) run_op(op);
    const auto now = Clock::now();
    auto cur = rt_.current();
    const bool fresh = cur->version() != round_version;
    if (now < last_round + (fresh ? min_gap : period)) {
      if (!ops.empty()) m.show();
      continue;
    }
    // A publish from here on wakes the hub again (it may be in this round: one more wake).
    m.poked.store(false, std::memory_order_release);
    cur = rt_.current();
    last_round = now;
    round_version = cur->version();
    round(cur, now);
    if (fresh) m.fanout.record_ns(steady_ns(Clock::now()) - steady_ns(now));
    m.show();
  }
}

}  // namespace tickdb
