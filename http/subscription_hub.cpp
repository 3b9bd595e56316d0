#include "http/subscription_hub.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <random>

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

// A subscription of one connection, resolved against the schema of the table it was
// (re)subscribed at.
struct Sub {
  std::string name, table;
  json filter_json;  // as given (null: none)
  std::vector<std::string> select;
  std::shared_ptr<const TableSchema> schema;
  std::optional<CompiledFilter> filter;
  std::optional<Projection> proj;
};

struct Conn {
  std::weak_ptr<SubscriberLink> link;
  std::shared_ptr<const DbVersion> at;  // the version of the connection's last frame
  std::map<std::string, Sub> subs;
  Clock::time_point last_frame = Clock::now();
  std::optional<Clock::time_point> stalled_since;
  double rate_hz = 0;  // 0: every tick
  Clock::time_point next_delta = Clock::now();
};

struct Op {
  enum class Kind { subscribe, unsubscribe } kind;
  std::uint64_t conn;
  json body;
  std::string sub;
};

void append_ids(std::string& out, const std::vector<std::uint64_t>& ids) {
  out += '[';
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
}

// The changes of one subscription between two versions of its table, as the "<sub>": {...}
// member of a delta; empty when nothing concerns it; nullopt when the two versions cannot be
// compared slot by slot (a relayout: the subscription starts again from a snapshot).
std::optional<std::string> changes_of(const Sub& s, const TableVersion& before,
                                      const TableVersion& after) {
  if (&before == &after) return std::string();  // the table did not change
  std::string ins, upd;
  std::vector<std::uint64_t> del, out;
  std::size_t n_ins = 0, n_upd = 0;
  auto row = [&](std::string& into, std::size_t& n, const std::byte* rec, std::uint64_t id) {
    if (n++) into += ',';
    s.proj->append_record(into, rec, id);
  };
  auto diff =
      diff_tables(before, after, [&](std::uint64_t id, const std::byte* b, const std::byte* a) {
        const bool in_before = b && (!s.filter || s.filter->match(b, id));
        const bool in_after = a && (!s.filter || s.filter->match(a, id));
        if (!in_before && in_after)
          row(ins, n_ins, a, id);
        else if (in_before && in_after && s.proj->differs(b, a))
          row(upd, n_upd, a, id);
        else if (in_before && !a)
          del.push_back(id);
        else if (in_before && !in_after)
          out.push_back(id);
      });
  if (!diff) return std::nullopt;
  if (!n_ins && !n_upd && del.empty() && out.empty()) return std::string();
  std::string m;
  append_json_string(m, s.name);
  m += ":{\"ins\":[" + ins + "],\"upd\":[" + upd + "],\"del\":";
  append_ids(m, del);
  m += ",\"out\":";
  append_ids(m, out);
  m += '}';
  return m;
}

}  // namespace

struct SubscriptionHub::Impl {
  mutable std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  std::uint64_t next_conn = 1;
  std::map<std::uint64_t, Conn> conns;
  std::deque<Op> ops;
  // Versions the connections may resume from: (version, database, when it was seen).
  std::deque<std::pair<std::shared_ptr<const DbVersion>, Clock::time_point>> ring;
  SubscriptionFigures fig;

  void send(Conn& c, std::string frame) {
    auto link = c.link.lock();
    if (!link) return;
    ++fig.frames;
    fig.bytes += frame.size();
    c.last_frame = Clock::now();
    link->send(std::move(frame));
  }
  void error(Conn& c, const std::string& sub, Errc code, const std::string& msg) {
    json e = {{"type", "error"}, {"code", std::string(errc_name(code))}, {"message", msg}};
    if (!sub.empty()) e["sub"] = sub;
    send(c, json_text(e));
  }
  std::shared_ptr<const DbVersion> find_version(std::uint64_t v) const {
    for (const auto& [db, when] : ring)
      if (db->version() == v) return db;
    return nullptr;
  }
};

SubscriptionHub::SubscriptionHub(Runtime& rt, const Config& cfg)
    : rt_(rt), cfg_(cfg), epoch_(random_epoch()), impl_(std::make_unique<Impl>()) {
  thread_ = std::thread([this] { run(); });
}

SubscriptionHub::~SubscriptionHub() {
  stop();
}

void SubscriptionHub::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t SubscriptionHub::attach(std::shared_ptr<SubscriberLink> link) {
  auto v = rt_.current();
  std::lock_guard lock(impl_->mu);
  if (impl_->conns.size() >= cfg_.subscriptions_max_connections) return 0;
  const std::uint64_t id = impl_->next_conn++;
  Conn& c = impl_->conns[id];
  c.link = link;
  c.at = v;
  ++impl_->fig.connections;
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
  // The hello's version starts the chain: the ring must be able to resume from it.
  if (impl_->ring.empty() || impl_->ring.back().first->version() != v->version())
    impl_->ring.emplace_back(v, Clock::now());
  impl_->send(c, json_text(hello));
  return id;
}

void SubscriptionHub::detach(std::uint64_t conn) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->conns.find(conn);
  if (it == impl_->conns.end()) return;
  impl_->fig.subscriptions -= it->second.subs.size();
  --impl_->fig.connections;
  impl_->conns.erase(it);
}

void SubscriptionHub::subscribe(std::uint64_t conn, json op) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->ops.push_back(Op{Op::Kind::subscribe, conn, std::move(op), {}});
  }
  impl_->wake.notify_all();
}

void SubscriptionHub::unsubscribe(std::uint64_t conn, std::string sub) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->ops.push_back(Op{Op::Kind::unsubscribe, conn, {}, std::move(sub)});
  }
  impl_->wake.notify_all();
}

SubscriptionFigures SubscriptionHub::figures() const {
  std::lock_guard lock(impl_->mu);
  return impl_->fig;
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
  const std::size_t frame_limit = cfg_.ws_max_frame_bytes;
  const std::size_t high_water = std::max<std::size_t>(4 * frame_limit, 1u << 20);
  auto next_tick = Clock::now() + period;
  std::unique_lock lock(m.mu);

  // Sends the snapshot of `s` at the connection's version, then ready.
  auto snapshot = [&](Conn& c, Sub& s, const TableVersion& t) {
    std::string rows;
    std::size_t n = 0, in_frame = 0;
    auto flush = [&](bool force) {
      if (!force && in_frame == 0) return;
      std::string f = "{\"type\":\"snapshot\",\"sub\":";
      append_json_string(f, s.name);
      f += ",\"version\":" + std::to_string(c.at->version()) + ",\"rows\":[" + rows + "]}";
      m.send(c, std::move(f));
      rows.clear();
      in_frame = 0;
    };
    for (RecordView r : t) {
      if (s.filter && !s.filter->match(r.data(), r.id())) continue;
      if (in_frame) rows += ',';
      s.proj->append_record(rows, r.data(), r.id());
      ++n;
      ++in_frame;
      if (rows.size() > frame_limit / 2) flush(false);
    }
    flush(false);
    ++m.fig.snapshots;
    json ready = {{"type", "ready"}, {"sub", s.name},    {"version", c.at->version()},
                  {"count", n},      {"resumed", false}, {"schema", schema_of(s, t)}};
    m.send(c, json_text(ready));
  };

  while (true) {
    m.wake.wait_until(lock, next_tick, [&] { return m.stopping || !m.ops.empty(); });
    if (m.stopping) return;

    // ---- ops ----
    while (!m.ops.empty()) {
      Op op = std::move(m.ops.front());
      m.ops.pop_front();
      auto it = m.conns.find(op.conn);
      if (it == m.conns.end()) continue;
      Conn& c = it->second;
      if (op.kind == Op::Kind::unsubscribe) {
        auto s = c.subs.find(op.sub);
        if (s == c.subs.end()) {
          m.error(c, op.sub, Errc::not_found, "no subscription '" + op.sub.substr(0, 64) + "'");
          continue;
        }
        c.subs.erase(s);
        --m.fig.subscriptions;
        json e = {{"type", "ended"}, {"sub", op.sub}, {"reason", "unsubscribed"}};
        m.send(c, json_text(e));
        continue;
      }
      const json& b = op.body;
      const std::string name =
          b.contains("sub") && b["sub"].is_string() ? b["sub"].get<std::string>() : "";
      auto bad = [&](const std::string& msg) { m.error(c, name, Errc::invalid_argument, msg); };
      bool ok = true;
      for (const auto& [k, v] : b.items())
        if (k != "op" && k != "sub" && k != "table" && k != "filter" && k != "select" &&
            k != "since" && k != "rate_hz") {
          bad("subscribe: unknown key '" + k.substr(0, 64) + "'");
          ok = false;
          break;
        }
      if (!ok) continue;
      if (name.empty() || name.size() > 64) {
        bad("subscribe: 'sub' must be a name of 1..64 characters");
        continue;
      }
      if (c.subs.count(name)) {
        m.error(c, name, Errc::already_exists,
                "subscribe: subscription '" + name + "' exists on this connection");
        continue;
      }
      if (c.subs.size() >= cfg_.subscriptions_max_per_connection) {
        m.error(c, name, Errc::resource_exhausted,
                "subscribe: at most " + std::to_string(cfg_.subscriptions_max_per_connection) +
                    " subscriptions per connection");
        continue;
      }
      if (!b.contains("table") || !b["table"].is_string()) {
        bad("subscribe: 'table' must be a string");
        continue;
      }
      Sub s;
      s.name = name;
      s.table = b["table"].get<std::string>();
      if (b.contains("filter")) s.filter_json = b["filter"];
      if (b.contains("select")) {
        auto names = field_names_from_json(b["select"], "select");
        if (!names) {
          bad("subscribe: " + names.message());
          continue;
        }
        s.select = std::move(*names);
      }
      if (b.contains("rate_hz")) {
        if (!b["rate_hz"].is_number() || b["rate_hz"].get<double>() <= 0) {
          bad("subscribe: 'rate_hz' must be a positive number");
          continue;
        }
        c.rate_hz = std::min(b["rate_hz"].get<double>(), rt_.tick_rate());
      }
      const TableVersion* t = c.at->table(s.table);
      if (!t) {
        m.error(c, name, Errc::not_found, "table '" + s.table.substr(0, 64) + "' does not exist");
        continue;
      }
      if (Status st = resolve(s, *t); !st) {
        m.error(c, name, st.code(), st.message());
        continue;
      }
      // A resume: one catch-up from the version the client had to the connection's.
      std::shared_ptr<const DbVersion> from;
      if (b.contains("since")) {
        if (!b["since"].is_string()) {
          bad("subscribe: 'since' must be a resume token \"<epoch>:<version>\"");
          continue;
        }
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
      const auto resumed =
          old && old->schema() == t->schema() ? changes_of(s, *old, *t) : std::nullopt;
      if (resumed) {
        const std::string& ch = *resumed;
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
          m.send(c, json_text(r));
        }
        snapshot(c, s, *t);
      }
      c.subs.emplace(name, std::move(s));
      ++m.fig.subscriptions;
    }

    const auto now = Clock::now();
    if (now < next_tick) continue;  // woken for ops only
    next_tick += period;
    if (next_tick < now) next_tick = now + period;  // fell behind: no burst of catch-up ticks

    // ---- the tick: one delta per connection that has changes ----
    auto cur = rt_.current();
    if (m.ring.empty() || m.ring.back().first->version() != cur->version())
      m.ring.emplace_back(cur, now);
    const auto keep = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(cfg_.subscriptions_retain_s));
    while (m.ring.size() > 1 && m.ring.front().second + keep < now) m.ring.pop_front();
    const std::uint64_t tick = rt_.ticks();
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
      if (c.subs.empty() || c.at->version() == cur->version()) {
        if (now - c.last_frame >= std::chrono::seconds(1)) {
          c.at = cur;
          m.send(c, "{\"type\":\"progress\",\"version\":" + std::to_string(cur->version()) +
                        ",\"tick\":" + std::to_string(tick) + "}");
        }
        continue;
      }
      // A slow reader: nothing more for it until it drains; closed past max_stall_s.
      if (link->queued_bytes() > high_water) {
        if (!c.stalled_since) c.stalled_since = now;
        if (now - *c.stalled_since >
            std::chrono::duration<double>(cfg_.subscriptions_max_stall_s)) {
          ++m.fig.slow_closes;
          link->close(4008, epoch_ + ":" + std::to_string(c.at->version()));
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
      std::string changes;
      std::vector<std::string> ended, reset, too_big;
      for (auto& [name, s] : c.subs) {
        const TableVersion* before = c.at->table(s.table);
        const TableVersion* after = cur->table(s.table);
        if (!after) {
          ended.push_back(name);
          continue;
        }
        const auto ch = before && before->schema() == after->schema()
                            ? changes_of(s, *before, *after)
                            : std::nullopt;
        if (!ch) {
          reset.push_back(name);
          continue;
        }
        if (ch->empty()) continue;
        if (!changes.empty()) changes += ',';
        changes += *ch;
      }
      if (changes.size() > frame_limit) {
        // More changes than one frame holds: every subscription starts again from a snapshot
        // at `cur` (snapshots come in bounded frames), after a progress that moves the chain.
        for (auto& [name, s] : c.subs)
          if (std::find(ended.begin(), ended.end(), name) == ended.end() &&
              std::find(reset.begin(), reset.end(), name) == reset.end())
            too_big.push_back(name);
        changes.clear();
      }
      if (!changes.empty()) {
        std::string f =
            "{\"type\":\"delta\",\"from\":" + std::to_string(c.at->version()) +
            ",\"to\":" + std::to_string(cur->version()) + ",\"tick\":" + std::to_string(tick) +
            (conflated ? ",\"conflated\":true" : "") + ",\"changes\":{" + changes + "}}";
        ++m.fig.deltas;
        if (conflated) ++m.fig.conflations;
        c.at = cur;
        m.send(c, std::move(f));
      } else if (!too_big.empty() || now - c.last_frame >= std::chrono::seconds(1) ||
                 !ended.empty() || !reset.empty()) {
        c.at = cur;
        m.send(c, "{\"type\":\"progress\",\"version\":" + std::to_string(cur->version()) +
                      ",\"tick\":" + std::to_string(tick) + "}");
      }
      // The chain is at `cur` now: a reset subscribes again at it; an ended one is gone.
      for (const auto& name : ended) {
        json e = {{"type", "ended"}, {"sub", name}, {"reason", "table_dropped"}};
        m.send(c, json_text(e));
        c.subs.erase(name);
        --m.fig.subscriptions;
      }
      for (const auto& name : too_big) {
        Sub& s = c.subs[name];
        json r = {{"type", "reset"}, {"sub", name}, {"reason", "too_many_changes"}};
        ++m.fig.resets;
        m.send(c, json_text(r));
        snapshot(c, s, *cur->table(s.table));
      }
      for (const auto& name : reset) {
        Sub& s = c.subs[name];
        const TableVersion* t = cur->table(s.table);
        if (Status st = resolve(s, *t); !st) {
          json e = {{"type", "ended"},
                    {"sub", name},
                    {"reason", "field_removed"},
                    {"message", st.message()}};
          m.send(c, json_text(e));
          c.subs.erase(name);
          --m.fig.subscriptions;
          continue;
        }
        json r = {{"type", "reset"}, {"sub", name}, {"reason", "schema_changed"}};
        ++m.fig.resets;
        m.send(c, json_text(r));
        snapshot(c, s, *t);
      }
    }
  }
}

}  // namespace tickdb
