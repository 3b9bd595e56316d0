// Router: API.md's routes, from a parsed HTTP request to a response. No Beast here (the
// session in server.cpp parses and writes); this is the table of routes, their handlers,
// the JSON-RPC 2.0 endpoint, auth and the request figures for /metrics.
//
// Reads (GET of records, tables, types, ...) are answered on the calling I/O thread from the
// current published version: no message, no lock. Writes go to the actors through
// Runtime::call_async; `done` is then called on an actor's thread, and the session resumes
// on its own executor. handle() never blocks.
//
// Thread-safety: handle() is safe from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "actors/runtime.h"
#include "config/config.h"

namespace tickdb {

class Persistence;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string authorization;  // the Authorization header, if any
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::string route = "unknown";  // the matched route's pattern (for figures)
  std::string allow;              // for 405: the route's methods
};

class Router {
 public:
  Router(Runtime& rt, const Config& cfg);

  void handle(const HttpRequest& req, std::function<void(HttpResponse)> done);
  // Benchmark baseline: answer every request 200 "{}" without routing or touching the
  // database (the same listener and sessions; tools/bench/http_bench.sh).
  void set_baseline(bool on) { baseline_ = on; }
  // Snapshot and commit log figures for /stats and /metrics (set before serving).
  void set_persistence(const Persistence* p) { persistence_ = p; }
  // Counts a finished request (the session calls it once the response is written).
  void record(const std::string& route, int status, double seconds);

  struct RouteInfo {
    std::string method, pattern, summary;
    int ok_status;
  };
  // Every route the router serves (the OpenAPI document is built from it).
  std::vector<RouteInfo> routes() const;
  std::string metrics_text() const;
  nlohmann::json stats_json() const;
  nlohmann::json openapi() const;

  using Params = std::vector<std::string>;  // the {placeholders} of the matched pattern, in order
  using Done = std::function<void(HttpResponse)>;
  using Handler = std::function<void(const HttpRequest&, const Params&, const std::map<std::string, std::string>& query, Done)>;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> pattern;  // segments; "{x}" matches one segment
    std::string pattern_text;
    std::string summary;
    int ok_status;
    Handler handler;
  };
  void add(std::string method, std::string pattern, std::string summary, int ok_status, Handler h);
  void rpc(const HttpRequest& req, Done done);
  void rpc_general(const HttpRequest& req, Done done);
  void call(const std::string& method, nlohmann::json params, int ok_status, Done done);

  Runtime* rt_;
  Config cfg_;
  std::atomic<bool> baseline_{false};
  const Persistence* persistence_ = nullptr;
  std::atomic<std::uint64_t> fast_txns_{0};       // db.transaction calls answered by the fast path
  std::atomic<std::uint64_t> fast_fallbacks_{0};  // fast runs that gave up (the general path answered)
  std::chrono::steady_clock::time_point started_;
  std::vector<Route> routes_;

  struct Counter {
    std::uint64_t count = 0;
    double seconds = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, Counter> requests_;
};

// HTTP status -> JSON error body of API.md.
HttpResponse error_response(const Error& e);
// Constant-time comparison (for the auth token).
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace tickdb
