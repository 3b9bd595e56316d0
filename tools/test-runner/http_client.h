// HttpClient: the runner's blocking HTTP/1.1 client for one node (host:port), one request
// at a time. Each request has its own connection and a bound on its whole duration
// (connect, write, read): the Beast stream's timer runs the operations on a private
// io_context, so a node that hangs fails the step instead of the run. A fresh connection per
// request keeps a request from ever being sent twice (no retry on a stale keep-alive
// connection) and costs ~0.1 ms on loopback.
//
// This is the only translation unit with Beast and Asio in it (they are slow to compile).
//
// Owned by the ScenarioRunner. Thread-safety: none; one thread uses it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tickdb::scenario {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// "http://host:port" (an optional trailing '/'): host and port, or invalid_argument.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  static Result<Endpoint> parse(std::string_view url);
  std::string url() const { return "http://" + host + ":" + std::to_string(port); }
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();

  void set_endpoint(Endpoint e) { endpoint_ = std::move(e); }
  const Endpoint& endpoint() const { return endpoint_; }

  using Headers = std::vector<std::pair<std::string, std::string>>;

  // One request with a JSON body (empty: none) and extra headers, answered within
  // `timeout_s`. io_error when no answer came (refused, reset, timed out), with the reason.
  Result<HttpResponse> request(std::string_view method, std::string_view target,
                               std::string_view body, const Headers& headers, double timeout_s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Endpoint endpoint_;
};

}  // namespace tickdb::scenario
