// Fuzz target: the HTTP request path, from bytes to the router's answer: RequestParser (Beast's
// parser plus tickdb's Host, absolute-form and Expect rules, with the session's header and
// body limits) on a stream of pipelined requests, then Router::handle for each complete one
// (every route, the REST handlers, queries, JSON-RPC), as a session runs them. GET
// .../events goes through sse_subscription as the session does; a WebSocket upgrade is left
// out (the ws target covers it). Every answer must come, once, within 10 s; JSON answers
// must parse, and error answers carry error.code (API.md, Errors).
//
// Input: raw bytes as a client sends them on one connection (at most 8 requests).
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include "http/request_parser.h"
#include "http/sse_session.h"
#include "http/ws_session.h"
#include "tests/fuzz/fuzz_node.h"

using namespace tickdb;
namespace http = boost::beast::http;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::node();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int n = 0; n < 8 && !rest.empty(); ++n) {
    RequestParser p;
    p.header_limit(16 * 1024);
    p.body_limit(fuzz::node().cfg.http_max_body_bytes);
    boost::beast::error_code ec;
    while (!p.is_done() && !rest.empty()) {
      const std::size_t used = p.put(boost::asio::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      if (ec && ec != http::error::need_more) break;
      if (p.is_header_done() && !p.header_error().empty()) break;
      if (ec == http::error::need_more && used == 0) break;  // cut short: the session waits
      ec = {};
    }
    if (!p.is_done() || ec || !p.header_error().empty()) break;  // the session answers 400
    HttpRequest req = std::move(p.req);
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    if (req.method == "GET" && path == "/ws" && is_websocket_upgrade(req)) continue;
    if (req.method == "GET" && path.size() > 14 && path.substr(0, 7) == "/table/" &&
        path.substr(path.size() - 7) == "/events") {
      if (auto target = parse_target(req.target); target && target->segments.size() == 3)
        if (sse_subscription(fuzz::node().router->runtime(), target->segments[1], req)) continue;
    }
    (void)fuzz::answer(std::move(req));
    if (!p.keep_alive()) break;
  }
  fuzz::reset();
  return 0;
}
