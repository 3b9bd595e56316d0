#include "tools/cli/ws_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "tools/cli/exit_codes.h"
#include "tools/cli/http_client.h"

namespace tickdb::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct WsClient::Impl {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buffer;
  std::string where;

  void run() {
    ioc.restart();
    ioc.run();
  }
};

WsClient::WsClient(const std::string& url, const std::string& token,
                   std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  const NodeUrl u = parse_node_url(url);
  Impl& s = *impl_;
  s.where = "ws://" + u.host + ":" + u.port + u.prefix + "/ws";
  beast::error_code ec;
  tcp::resolver resolver(s.ioc);
  auto endpoints = resolver.resolve(u.host, u.port, ec);
  const auto unreachable = [&](const char* what) {
    return CliError(kExitUnreachable,
                    "cannot reach the node at " + s.where + " (" + what + ": " +
                        (ec == beast::error::timeout ? std::string("timed out") : ec.message()) +
                        ")");
  };
  if (ec) throw unreachable("resolve");
  auto& tcp_layer = beast::get_lowest_layer(s.ws);
  tcp_layer.expires_after(timeout);
  tcp_layer.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  s.run();
  if (ec) throw unreachable("connect");

  s.ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    req.set(http::field::sec_websocket_protocol, "tickdb.v1");
    req.set(http::field::user_agent, "tickdb-cli");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  }));
  s.ws.read_message_max(64 * 1024 * 1024);
  websocket::response_type res;
  tcp_layer.expires_after(timeout);
  s.ws.async_handshake(res, u.host + ":" + u.port, u.prefix + "/ws",
                       [&](beast::error_code e) { ec = e; });
  s.run();
  if (ec == websocket::error::upgrade_declined || (ec && res.result_int() >= 400)) {
    throw CliError(kExitServerError, "the node refused the WebSocket upgrade (HTTP " +
                                         std::to_string(res.result_int()) + ")" +
                                         (res.body().empty() ? "" : ": " + res.body()));
  }
  if (ec) throw unreachable("handshake");
  // From here the node's frames (a progress frame at least once a second) keep it alive.
  tcp_layer.expires_never();
}

WsClient::~WsClient() {
  beast::error_code ec;
  if (impl_ && impl_->ws.is_open()) {
    beast::get_lowest_layer(impl_->ws).expires_after(std::chrono::seconds(2));
    impl_->ws.async_close(websocket::close_code::normal, [&](beast::error_code e) { ec = e; });
    impl_->run();
  }
}

void WsClient::send(const std::string& text) {
  beast::error_code ec;
  impl_->ws.text(true);
  impl_->ws.write(net::buffer(text), ec);
  if (ec)
    throw CliError(kExitUnreachable, "connection to " + impl_->where + " lost: " + ec.message());
}

std::string WsClient::read() {
  Impl& s = *impl_;
  beast::error_code ec;
  s.buffer.clear();
  s.ws.read(s.buffer, ec);
  if (ec) {
    const auto& reason = s.ws.reason();
    std::string why =
        ec == websocket::error::closed
            ? "closed by the node with code " + std::to_string(reason.code) +
                  (reason.reason.empty()
                       ? ""
                       : " (" + std::string(reason.reason.data(), reason.reason.size()) + ")")
            : ec.message();
    throw CliError(reason.code == 4001 ? kExitServerError : kExitUnreachable,
                   "connection to " + s.where + " ended: " + why);
  }
  return beast::buffers_to_string(s.buffer.data());
}

}  // namespace tickdb::cli
