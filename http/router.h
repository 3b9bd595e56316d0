// Router: API.md's routes, from a parsed HTTP request to its answer. No Beast here (the
// session in server.cpp parses and writes).
//
// The rooms of the router, one file each:
//   route_table.*     matching methods and paths, parsing targets
//   rest_routes.cpp   the REST handlers (types, tables, fields, relations, records, operations)
//   rpc_endpoint.*    JSON-RPC 2.0 (batches, notifications) with the fast db.transaction path
//   node_figures.*    the figures of /metrics and /stats, one typed set rendered two ways
//   openapi.cpp       /openapi.json from the route table
//
// Reads (GET of records, tables, types, ...) are answered on the calling I/O thread from the
// current published version: no message, no lock. Writes go to the actors; `done` is then
// called on an actor's (or the commit log's) thread with the answer's value, which the session
// encodes on its own thread. handle() never blocks.
//
// Thread-safety: handle() is safe from many threads at once; set_* before serving.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/cluster.h"
#include "actors/runtime.h"
#include "config/config.h"
#include "http/idempotency.h"
#include "http/message.h"
#include "http/request_figures.h"
#include "http/route_table.h"
#include "http/rpc_endpoint.h"
#include "http/subscription_hub.h"

namespace tickdb {

class Persistence;
struct NodeFigures;

class Router {
 public:
  Router(Runtime& rt, const Config& cfg);
  ~Router();

  // Routes one request; `done` answers it (once, on any thread). Returns the id of the route
  // that answers (for the figures).
  RouteId handle(HttpRequest req, Done done);

  // Live subscriptions (GET /ws): the session hands upgraded connections to the hub.
  SubscriptionHub& hub() { return *hub_; }
  const Runtime& runtime() const { return *rt_; }

  // Benchmark baseline: answer every request 200 "{}" without routing or touching the
  // database (the same listener and sessions; tools/bench/http_bench.sh).
  void set_baseline(bool on) { baseline_ = on; }
  // Snapshot and commit log figures for /stats and /metrics (set before serving).
  void set_persistence(const Persistence* p) { persistence_ = p; }
  // Joins the cluster: calls for tables of other nodes are forwarded to them (any time).
  void set_cluster(Cluster* c);
  // Answers a request a peer forwarded here (Cluster::Handler): as a local request, never
  // forwarded again.
  void serve_forwarded(ForwardRequest req, std::function<void(ForwardReply)> reply);
  // Opens an event stream a peer relays (Cluster::StreamHandler): a valid one attaches to the
  // hub with `out` as its link and answers 200; anything else answers what this node answers
  // the request itself (401, 404, 400 ...).
  void serve_stream(ForwardRequest req, std::shared_ptr<StreamOut> out,
                    std::function<void(ForwardReply)> reply);
  // The cluster (null when the node is alone) and the other node whose event stream of
  // `table` a request to this node relays ("" when the table is here or unknown).
  Cluster* cluster() const { return cluster_.load(std::memory_order_acquire); }
  std::string stream_owner(const std::string& table) const;

  // The I/O threads count the requests they answered here (one slot per thread).
  RequestFigures& figures() { return *figures_; }
  const RouteTable& table() const { return table_; }

  std::string metrics_text() const;
  // tick_window: tick percentiles over the last that many ticks (0: TickStats::kWindow).
  nlohmann::json stats_json(std::size_t tick_window = 0) const;
  // The OpenAPI document (http/openapi.h); `host`: the request's Host header, for servers.
  nlohmann::json openapi(std::string_view host = {}) const;

 private:
  void add_operation_routes();
  void add_schema_routes();
  void add_record_routes();
  // GET .../records and POST .../query: one page of run_query over the current version.
  void answer_query(const std::string& table, const nlohmann::json& params, bool in_url,
                    Done& done);
  // Calls a callable and answers its value with `ok_status` (no body for 204).
  void call(std::string_view method, nlohmann::json params, int ok_status, Done done);
  // The same for a REST write of one record (Runtime::write_async).
  void write(Runtime::RecordWrite w, int ok_status, Done done);
  NodeFigures collect(std::size_t tick_window = 0) const;
  // Sends `req` to `node` and answers with what it answers (headers X-Tickdb-Node/-Owner).
  // `changes_tables`: the route makes or drops a table (the answer then waits for this
  // node's directory to say so).
  void forward_to(const std::string& node, const HttpRequest& req, Done done,
                  bool changes_tables = false);
  // The other node a request must go to ("" for this one): its table's owner, or the "node"
  // of a table to create.
  std::string remote_owner(const HttpRoute& route, const Params& p, const HttpRequest& req) const;

  Runtime* rt_;
  Config cfg_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<bool> baseline_{false};
  const Persistence* persistence_ = nullptr;
  RouteTable table_;
  RpcEndpoint rpc_;
  IdempotencyCache idempotency_;
  std::unique_ptr<RequestFigures> figures_;
  std::atomic<Cluster*> cluster_{nullptr};
  std::atomic<std::uint64_t> forward_retries_{0};  // REST forwards retried (not the owner)
  Registry::TableLocator locator_;                 // set_cluster: the registry's locator
  std::unique_ptr<SubscriptionHub> hub_;           // sized once every route is added
};

// Constant-time comparison (for the auth token).
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace tickdb
