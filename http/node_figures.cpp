#include "http/node_figures.h"

#include <cmath>
#include <cstdio>

namespace tickdb {

using nlohmann::json;

namespace {

std::string label(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
std::string num(std::uint64_t v) {
  return std::to_string(v);
}

class Text {
 public:
  void head(std::string_view name, std::string_view type, std::string_view help) {
    o_ += "# HELP ";
    o_ += name;
    o_ += ' ';
    o_ += help;
    o_ += "\n# TYPE ";
    o_ += name;
    o_ += ' ';
    o_ += type;
    o_ += '\n';
  }
  template <class V>
  void sample(std::string_view name, std::string_view labels, V v) {
    o_ += name;
    if (!labels.empty()) {
      o_ += '{';
      o_ += labels;
      o_ += '}';
    }
    o_ += ' ';
    o_ += num(v);
    o_ += '\n';
  }
  template <class V>
  void one(std::string_view name, std::string_view type, std::string_view help, V v) {
    head(name, type, help);
    sample(name, "", v);
  }
  // The samples of one histogram (`labels` without braces, may be empty).
  void histogram(std::string_view name, const std::string& labels, const Histogram::Counts& c) {
    const std::string sep = labels.empty() ? "" : labels + ",";
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      cum += c.buckets[i];
      sample(std::string(name) + "_bucket", sep + "le=\"" + num(Histogram::kBounds[i]) + "\"", cum);
    }
    cum += c.buckets[Histogram::kBounds.size()];
    sample(std::string(name) + "_bucket", sep + "le=\"+Inf\"", cum);
    sample(std::string(name) + "_sum", labels, c.sum_s);
    sample(std::string(name) + "_count", labels, cum);
  }
  std::string take() { return std::move(o_); }

 private:
  std::string o_;
};

}  // namespace

std::string render_prometheus(const NodeFigures& f) {
  Text t;
  t.head("tickdb_http_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (std::size_t r = 0; r < f.requests.size(); ++r)
    for (const auto& [status, n] : f.requests[r].by_status)
      t.sample(
          "tickdb_http_requests_total",
          "route=\"" + label(f.route_names[r]) + "\",status=\"" + std::to_string(status) + "\"", n);
  t.head("tickdb_http_request_duration_seconds", "histogram",
         "Time from a request read to its answer written, by route.");
  for (std::size_t r = 0; r < f.requests.size(); ++r)
    if (f.requests[r].latency.count)
      t.histogram("tickdb_http_request_duration_seconds",
                  "route=\"" + label(f.route_names[r]) + "\"", f.requests[r].latency);

  const auto& k = f.tick;
  t.one("tickdb_ticks_total", "counter", "Ticks run.", k.ticks);
  t.one("tickdb_tick_overruns_total", "counter", "Ticks that ran past the next deadline.",
        k.overruns);
  t.one("tickdb_tick_skipped_total", "counter", "Deadlines skipped after overruns.", k.skipped);
  t.one("tickdb_tick_errors_total", "counter", "Tick procedure runs that failed.", k.errors);
  t.head("tickdb_tick_duration_seconds", "histogram", "How long each tick ran.");
  t.histogram("tickdb_tick_duration_seconds", "", k.duration_hist);
  t.head("tickdb_tick_lateness_seconds", "histogram", "Tick start against its deadline.");
  t.histogram("tickdb_tick_lateness_seconds", "", k.lateness_hist);
  t.one("tickdb_tick_rate_hz", "gauge", "The tick rate.", k.rate_hz);

  t.head("tickdb_table_records", "gauge", "Live records per table.");
  for (const auto& tb : f.tables)
    t.sample("tickdb_table_records", "table=\"" + label(tb.name) + "\"", tb.records);
  t.head("tickdb_table_bytes", "gauge", "Bytes of live records per table.");
  for (const auto& tb : f.tables)
    t.sample("tickdb_table_bytes", "table=\"" + label(tb.name) + "\"", tb.bytes);

  t.one("tickdb_rpc_fast_transactions_total", "counter",
        "db.transaction calls of inserts read straight into records.", f.rpc_fast_answered);
  t.one("tickdb_rpc_fast_fallbacks_total", "counter",
        "Fast db.transaction runs that left the answer to the general path.", f.rpc_fast_fell_back);
  t.one("tickdb_versions_published_total", "counter", "Database versions published.",
        f.commits.versions);
  t.one("tickdb_commit_conflicts_total", "counter", "Commits that ran again after a conflict.",
        f.commits.conflicts);

  t.one("tickdb_idempotency_keys", "gauge", "Idempotency keys whose first answer is kept.",
        f.idempotency.keys);
  t.one("tickdb_idempotency_replayed_total", "counter",
        "Writes answered from the first answer of their Idempotency-Key.", f.idempotency.replayed);
  t.one("tickdb_idempotency_conflicts_total", "counter",
        "Writes refused for an Idempotency-Key used with another request.",
        f.idempotency.conflicts);

  const auto& sb = f.subscriptions;
  t.one("tickdb_subscription_connections", "gauge", "WebSocket connections attached to the hub.",
        sb.connections);
  t.one("tickdb_subscriptions", "gauge", "Live subscriptions.", sb.subscriptions);
  t.one("tickdb_subscription_frames_total", "counter", "Frames the hub sent.", sb.frames);
  t.one("tickdb_subscription_bytes_total", "counter", "Bytes of the frames the hub sent.",
        sb.bytes);
  t.one("tickdb_subscription_deltas_total", "counter", "Delta frames sent.", sb.deltas);
  t.one("tickdb_subscription_snapshots_total", "counter", "Subscription snapshots sent.",
        sb.snapshots);
  t.one("tickdb_subscription_resumes_total", "counter", "Subscriptions resumed from a token.",
        sb.resumes);
  t.one("tickdb_subscription_resets_total", "counter", "Resets sent (schema change, no resume).",
        sb.resets);
  t.one("tickdb_subscription_conflations_total", "counter",
        "Merged deltas sent to connections that fell behind.", sb.conflations);
  t.one("tickdb_subscription_slow_closes_total", "counter",
        "Connections closed for not reading (4008).", sb.slow_closes);
  t.one("tickdb_subscription_queue_bytes", "gauge",
        "Bytes of frames queued on connections and not yet written.", sb.queue_bytes);
  t.one("tickdb_subscription_retained_versions", "gauge", "Versions kept for resumes.",
        sb.retained_versions);
  t.one("tickdb_subscription_retained_bytes", "gauge",
        "Bytes of chunks only the versions kept for resumes hold (an estimate).",
        sb.retained_bytes);
  t.head("tickdb_subscriptions_by_table", "gauge", "Live subscriptions, by table.");
  for (const auto& [table, n] : sb.per_table)
    t.sample("tickdb_subscriptions_by_table", "table=\"" + label(table) + "\"", n);
  t.head("tickdb_subscription_commit_to_wire_seconds", "histogram",
         "From the publish of a delta's version to its frame written to the connection.");
  t.histogram("tickdb_subscription_commit_to_wire_seconds", "", sb.commit_to_wire);
  t.head("tickdb_subscription_fanout_seconds", "histogram",
         "One round of the hub over a new version: diffs, frames, sends to every connection.");
  t.histogram("tickdb_subscription_fanout_seconds", "", sb.fanout);

  if (!f.peers.empty()) {
    auto per_peer = [&](const char* name, const char* type, const char* help, auto get) {
      t.head(name, type, help);
      for (const auto& p : f.peers) t.sample(name, "peer=\"" + label(p.peer) + "\"", get(p));
    };
    per_peer("tickdb_cluster_peer_up", "gauge", "1 when the peer answers.",
             [](const auto& p) { return static_cast<std::uint64_t>(p.up ? 1 : 0); });
    per_peer("tickdb_cluster_peer_rtt_seconds", "gauge", "Round-trip time of the last ping.",
             [](const auto& p) { return p.rtt_ms < 0 ? 0.0 : p.rtt_ms / 1000.0; });
    t.head("tickdb_cluster_forwarded_total", "counter",
           "Calls forwarded to the peer, by the status they were answered with.");
    for (const auto& p : f.peers)
      for (const auto& [status, n] : p.answered)
        t.sample("tickdb_cluster_forwarded_total",
                 "peer=\"" + label(p.peer) + "\",status=\"" + std::to_string(status) + "\"", n);
    per_peer("tickdb_cluster_request_timeouts_total", "counter",
             "Forwarded calls the peer did not answer within cluster.request_timeout_ms.",
             [](const auto& p) { return p.timeouts; });
    per_peer("tickdb_cluster_unavailable_total", "counter",
             "Calls answered 503 because the peer was down.",
             [](const auto& p) { return p.unavailable; });
    per_peer("tickdb_cluster_reconnects_total", "counter", "Times the peer was joined again.",
             [](const auto& p) { return p.reconnects; });
    t.one("tickdb_cluster_directory_retries_total", "counter",
          "Forwarded calls retried after the node asked said it no longer owns the table.",
          f.directory_retries);
    t.one("tickdb_cluster_relayed_streams", "gauge",
          "Event streams this node relays to its clients from their tables' nodes.",
          f.relayed_streams);
    t.one("tickdb_cluster_served_streams", "gauge",
          "Event streams this node serves to peers that relay them.", f.served_streams);
  }

  if (f.storage) {
    const auto& s = f.storage->snapshot;
    const auto& l = f.storage->log;
    t.one("tickdb_snapshots_total", "counter", "Snapshots written.", s.count);
    t.one("tickdb_snapshot_failures_total", "counter", "Snapshots that failed.", s.failures);
    if (s.last) {
      t.one("tickdb_snapshot_last_age_seconds", "gauge", "Age of the last snapshot written.",
            s.last_age_s);
      t.one("tickdb_snapshot_last_duration_seconds", "gauge", "Time the last snapshot took.",
            s.last->seconds);
      t.one("tickdb_snapshot_last_bytes", "gauge", "Size of the last snapshot file.",
            static_cast<std::uint64_t>(s.last->bytes));
    }
    t.one("tickdb_log_bytes_total", "counter", "Commit log bytes written.", l.bytes);
    t.one("tickdb_log_fsyncs_total", "counter", "Commit log fsyncs.", l.fsyncs);
    t.one("tickdb_log_fsync_seconds_total", "counter", "Time spent in commit log fsyncs.",
          l.fsync_seconds);
    t.one("tickdb_log_entries_total", "counter", "Commit log entries (published versions) written.",
          l.entries);
    t.one("tickdb_log_group_max", "gauge", "Most entries made durable by one fsync.", l.group_max);
    t.one("tickdb_log_pending_entries", "gauge", "Entries appended but not yet on disk.",
          l.pending_entries);
    t.one("tickdb_read_visibility_durable", "gauge",
          "1 when readers see only versions whose log entries are on disk.",
          static_cast<std::uint64_t>(l.read_visibility == "durable" ? 1 : 0));
    t.one("tickdb_log_broken", "gauge", "1 when the log refuses writes.",
          static_cast<std::uint64_t>(l.broken.empty() ? 0 : 1));
  }
  return t.take();
}

json render_json(const NodeFigures& f) {
  json reqs = json::array();
  for (std::size_t r = 0; r < f.requests.size(); ++r) {
    const auto& c = f.requests[r];
    if (c.by_status.empty()) continue;
    for (const auto& [status, n] : c.by_status)
      reqs.push_back({{"route", f.route_names[r]}, {"status", status}, {"count", n}});
  }
  json latency = json::array();
  for (std::size_t r = 0; r < f.requests.size(); ++r) {
    const auto& h = f.requests[r].latency;
    if (!h.count) continue;
    latency.push_back({{"route", f.route_names[r]}, {"count", h.count}, {"seconds", h.sum_s}});
  }
  json tables = json::array();
  for (const auto& t : f.tables)
    tables.push_back({{"name", t.name}, {"records", t.records}, {"bytes", t.bytes}});
  json storage = nullptr;
  if (f.storage) {
    const auto& s = f.storage->snapshot;
    const auto& l = f.storage->log;
    json snap = {
        {"count", s.count},           {"failures", s.failures}, {"last_error", s.last_error},
        {"interval_s", s.interval_s}, {"keep", s.keep},         {"last", nullptr}};
    if (s.last)
      snap["last"] = {{"path", s.last->path},       {"bytes", s.last->bytes},
                      {"records", s.last->records}, {"version", s.last->version},
                      {"seconds", s.last->seconds}, {"age_s", s.last_age_s}};
    storage = {{"data_dir", f.storage->data_dir},
               {"snapshot", std::move(snap)},
               {"log",
                {{"durability", l.durability},
                 {"read_visibility", l.read_visibility},
                 {"bytes", l.bytes},
                 {"fsyncs", l.fsyncs},
                 {"fsync_seconds", l.fsync_seconds},
                 {"entries", l.entries},
                 {"group_avg",
                  l.fsyncs ? static_cast<double>(l.entries) / static_cast<double>(l.fsyncs) : 0.0},
                 {"group_max", l.group_max},
                 {"pending_entries", l.pending_entries},
                 {"segment", l.segment},
                 {"broken", l.broken}}}};
  }
  json by_table = json::object();
  for (const auto& [table, n] : f.subscriptions.per_table) by_table[table] = n;
  const auto& c = f.commits;
  return {
      {"node", f.node},
      {"uptime_s", f.uptime_s},
      {"version", f.version},
      {"tick", f.tick.to_json()},
      {"commits",
       {{"versions", c.versions},
        {"rebases", c.rebases},
        {"conflicts", c.conflicts},
        {"calls", c.calls},
        {"handoffs", c.handoffs}}},
      {"tables", tables},
      {"rpc_fast_transactions",
       {{"answered", f.rpc_fast_answered}, {"fell_back", f.rpc_fast_fell_back}}},
      {"storage", storage},
      {"subscriptions",
       {{"connections", f.subscriptions.connections},
        {"subscriptions", f.subscriptions.subscriptions},
        {"frames", f.subscriptions.frames},
        {"bytes", f.subscriptions.bytes},
        {"deltas", f.subscriptions.deltas},
        {"snapshots", f.subscriptions.snapshots},
        {"resumes", f.subscriptions.resumes},
        {"resets", f.subscriptions.resets},
        {"conflations", f.subscriptions.conflations},
        {"slow_closes", f.subscriptions.slow_closes},
        {"queue_bytes", f.subscriptions.queue_bytes},
        {"relayed_streams", f.relayed_streams},
        {"served_streams", f.served_streams},
        {"retained_versions", f.subscriptions.retained_versions},
        {"retained_bytes", f.subscriptions.retained_bytes},
        {"by_table", by_table},
        {"commit_to_wire",
         {{"count", f.subscriptions.commit_to_wire.count},
          {"seconds", f.subscriptions.commit_to_wire.sum_s}}},
        {"fanout",
         {{"count", f.subscriptions.fanout.count}, {"seconds", f.subscriptions.fanout.sum_s}}}}},
      {"idempotency",
       {{"keys", f.idempotency.keys},
        {"replayed", f.idempotency.replayed},
        {"conflicts", f.idempotency.conflicts}}},
      {"requests", reqs},
      {"latency", latency}};
}

}  // namespace tickdb
