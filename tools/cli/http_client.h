// A blocking HTTP/1.1 client for one node: one keep-alive connection, reused for every request
// of a command (an import's batches, an export's pages) and of a prompt session, opened again
// when the node has closed it. Every wait (connect, write, read) is bounded by `timeout`.
// Beast stays inside http_client.cpp and ws_client.cpp: this header is plain C++.
//
// Thread-safety: an HttpClient belongs to one thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace tickdb::cli {

// `http://host:port[/prefix]`; throws CliError(kExitUsage) on anything else.
struct NodeUrl {
  std::string host;
  std::string port;
  std::string prefix;  // a path prefix without the trailing '/', usually empty
};
NodeUrl parse_node_url(const std::string& url);

// Percent-encoding of a query-string value (RFC 3986 unreserved characters stay).
std::string url_encode(std::string_view s);

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

class HttpClient {
 public:
  HttpClient(const std::string& url, std::string token, std::chrono::milliseconds timeout);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One request; throws CliError(kExitUnreachable) when the node cannot be reached or does
  // not answer within the timeout. `target` is the path and query (without the prefix).
  HttpResponse request(std::string_view method, const std::string& target,
                       const std::string& body = {});

  const std::string& url() const { return url_; }

 private:
  struct Impl;
  std::string url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickdb::cli
