// The node's API as JSON calls: a REST call answers the parsed body (null for 204) or throws
// the node's error as CliError(kExitServerError, "<code>: <message>"); rpc() is one JSON-RPC
// 2.0 call answering its `result`. Built on one HttpClient, whose connection it reuses.
//
// Thread-safety: as the HttpClient, one thread.
#pragma once

#include <string>
#include "tools/cli/json.h"

#include "tools/cli/http_client.h"

namespace tickdb::cli {

class NodeClient {
 public:
  explicit NodeClient(HttpClient& http) : http_(http) {}

  json call(const std::string& method, const std::string& target, const json* body = nullptr);
  json get(const std::string& target) { return call("GET", target); }
  json post(const std::string& target, const json& body) { return call("POST", target, &body); }
  json rpc(const std::string& method, const json* params);

  HttpClient& http() { return http_; }

 private:
  HttpClient& http_;
};

// The error a non-2xx answer carries, as the CliError the CLI prints.
[[noreturn]] void throw_server_error(int status, const std::string& body);

}  // namespace tickdb::cli
