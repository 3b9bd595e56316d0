// HttpRequest / HttpResponse: one request as the session parsed it and one answer as the
// router gives it back. No Beast here: the router, its handlers and their tests use these
// plain values; only http/server.cpp turns them into and out of bytes.
//
// Thread-safety: plain values, owned by the one request they belong to.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace tickdb {

struct HttpRequest {
  std::string method;  // "GET", "POST", ... ("HEAD" is routed as GET; the session drops the body)
  std::string target;  // origin-form path and query (an absolute-form target is reduced to it)
  std::string body;
  std::string authorization;  // the Authorization header, if any
  // Other headers kept by name (lower-case), for the routes that read them.
  std::vector<std::pair<std::string, std::string>> headers;

  std::string_view header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return v;
    return {};
  }
};

struct HttpResponse {
  int status = 200;
  std::string body;
  // When set, the body is this value, encoded by the I/O thread that writes the answer (so a
  // write answered on the commit log's thread is not encoded there).
  std::optional<nlohmann::json> value;
  std::string_view content_type = "application/json";        // a literal
  std::string allow;                                         // for 405: the route's methods
  std::vector<std::pair<std::string, std::string>> headers;  // more headers to send
  // Part of the request was not done because a node was down or did not answer in time (a
  // JSON-RPC batch answers 200 with such calls failed): a retry with the request's
  // Idempotency-Key runs again instead of getting this answer (http/idempotency.h).
  bool retry_runs = false;
};

// Answers one request; called exactly once, on any thread.
using Done = std::function<void(HttpResponse)>;

// Every JSON the node writes: a bad byte that slipped into a message is replaced, never an
// exception on an I/O thread.
std::string json_text(const nlohmann::json& j);
// The JSON error body of API.md; the status is errc_http_status(e.code).
HttpResponse error_response(const Error& e);
HttpResponse json_response(int status, std::string body);
// A JSON value answered with `status`, encoded when written (see HttpResponse::value).
HttpResponse value_response(int status, nlohmann::json v);

}  // namespace tickdb
