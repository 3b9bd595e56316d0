// NodeFigures: every figure of a node at one moment, as one typed value: requests (per route
// and status, latency histograms), ticks (counts, percentiles, histograms), commits, tables,
// the fast RPC path, storage. /metrics renders it as Prometheus text and /stats as JSON, so
// the two always agree and no figure is read back out of a JSON document by name.
//
// Thread-safety: collect() from any thread (every source is safe to read while it changes);
// the value belongs to its caller.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/cluster.h"
#include "actors/persistence.h"
#include "actors/runtime.h"
#include "http/idempotency.h"
#include "http/request_figures.h"
#include "http/subscription_hub.h"

namespace tickdb {

struct NodeFigures {
  std::string node;
  double uptime_s = 0;
  std::uint64_t version = 0;
  TickStats::Snapshot tick;
  Runtime::CommitStats commits{};
  struct Table {
    std::string name;
    std::uint64_t records = 0, bytes = 0;
  };
  std::vector<Table> tables;
  std::uint64_t rpc_fast_answered = 0, rpc_fast_fell_back = 0;
  std::optional<Persistence::Figures> storage;
  IdempotencyCache::Figures idempotency;
  SubscriptionFigures subscriptions;
  std::vector<Cluster::PeerFigures> peers;  // empty without a cluster
  // Forwarded calls a node answered "not the owner" to, retried after a directory refresh.
  std::uint64_t directory_retries = 0;
  // Event streams this node relays to its clients from their tables' nodes, and those it
  // serves to peers that relay them (Cluster::open_stream).
  std::uint64_t relayed_streams = 0, served_streams = 0;
  // Per route id: its name and counts (routes never asked are left out when rendered).
  std::vector<std::string> route_names;
  std::vector<RequestFigures::RouteCounts> requests;
};

std::string render_prometheus(const NodeFigures& f);
nlohmann::json render_json(const NodeFigures& f);

}  // namespace tickdb
