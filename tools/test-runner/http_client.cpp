#include "tools/test-runner/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>

namespace tickdb::scenario {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpClient::Impl {
  asio::io_context ioc;
};

Result<Endpoint> Endpoint::parse(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme))
    return make_error(Errc::invalid_argument, "--url must be http://host:port");
  url.remove_prefix(scheme.size());
  if (url.ends_with("/")) url.remove_suffix(1);
  auto colon = url.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return make_error(Errc::invalid_argument, "--url must be http://host:port (a port is needed)");
  Endpoint e;
  e.host = std::string(url.substr(0, colon));
  int port = 0;
  for (char c : url.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535)
      return make_error(Errc::invalid_argument, "--url has a bad port");
    port = port * 10 + (c - '0');
  }
  if (port <= 0 || port > 65535) return make_error(Errc::invalid_argument, "--url has a bad port");
  e.port = static_cast<std::uint16_t>(port);
  return e;
}

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::request(std::string_view method, std::string_view target,
                                         std::string_view body, const Headers& headers,
                                         double timeout_s) {
  auto& ioc = impl_->ioc;
  ioc.restart();
  const auto bound = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(timeout_s));

  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto addrs = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
  if (ec)
    return make_error(Errc::io_error, "cannot resolve " + endpoint_.host + ": " + ec.message());

  http::request<http::string_body> req;
  req.method(http::string_to_verb(std::string(method)));
  req.target(std::string(target));
  req.version(11);
  req.set(http::field::host, endpoint_.host + ":" + std::to_string(endpoint_.port));
  req.set(http::field::user_agent, "tickdb-test-runner");
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::string(body);
  }
  req.prepare_payload();

  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ull << 30);
  if (method == "HEAD") parser.skip(true);
  std::string failed;           // which phase failed, when ec is set
  stream.expires_after(bound);  // one bound for the whole exchange
  stream.async_connect(addrs, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) {
      ec = e;
      failed = "connect";
      return;
    }
    http::async_write(stream, req, [&](beast::error_code e2, std::size_t) {
      if (e2) {
        ec = e2;
        failed = "write";
        return;
      }
      http::async_read(stream, buffer, parser, [&](beast::error_code e3, std::size_t) {
        if (e3) {
          ec = e3;
          failed = "read";
        }
      });
    });
  });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (ec) {
    std::string why =
        ec == beast::error::timeout
            ? "no answer within " + std::to_string(std::lround(timeout_s * 1000)) + " ms"
            : ec.message();
    return make_error(Errc::io_error,
                      "no answer from " + endpoint_.url() + " (" + failed + ": " + why + ")");
  }
  HttpResponse r;
  r.status = static_cast<int>(parser.get().result_int());
  r.body = std::move(parser.get().body());
  return r;
}

}  // namespace tickdb::scenario
