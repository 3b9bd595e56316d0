#include "tools/cli/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <optional>

#include "tools/cli/exit_codes.h"

namespace tickdb::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

NodeUrl parse_node_url(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    throw CliError(kExitUsage, "--url: expected http://HOST:PORT, got '" + url + "'");
  std::string rest = url.substr(scheme.size());
  NodeUrl u;
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    u.prefix = rest.substr(slash);
    rest.resize(slash);
    while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  }
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    u.host = rest;
    u.port = "80";
  } else {
    u.host = rest.substr(0, colon);
    u.port = rest.substr(colon + 1);
  }
  if (u.host.size() > 2 && u.host.front() == '[' && u.host.back() == ']')
    u.host = u.host.substr(1, u.host.size() - 2);
  if (u.host.empty() || u.port.empty() ||
      u.port.find_first_not_of("0123456789") != std::string::npos)
    throw CliError(kExitUsage, "--url: expected http://HOST:PORT, got '" + url + "'");
  return u;
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

struct HttpClient::Impl {
  NodeUrl url;
  std::string token;
  std::chrono::milliseconds timeout;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  // Runs the async operations started on ioc to completion; the stream's expiry bounds them.
  void run() {
    ioc.restart();
    ioc.run();
  }

  [[noreturn]] void unreachable(const std::string& what, const beast::error_code& ec) {
    stream.reset();
    std::string why = ec == beast::error::timeout
                          ? "no answer within " + std::to_string(timeout.count()) + " ms"
                          : ec.message();
    throw CliError(kExitUnreachable, "cannot reach the node at http://" + url.host + ":" +
                                         url.port + " (" + what + ": " + why + ")");
  }

  void connect() {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) unreachable("resolve", ec);
    stream.emplace(ioc);
    stream->expires_after(timeout);
    stream->async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) unreachable("connect", ec);
    buffer.clear();
  }

  // One exchange on the open connection; the error (if any) in ec.
  HttpResponse exchange(const http::request<http::string_body>& req, beast::error_code& ec,
                        bool& got_bytes) {
    HttpResponse out;
    stream->expires_after(timeout);
    http::async_write(*stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec) return out;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.header_limit(64 * 1024);
    stream->expires_after(timeout);
    std::size_t n = 0;
    http::async_read(*stream, buffer, parser, [&](beast::error_code e, std::size_t bytes) {
      ec = e;
      n = bytes;
    });
    run();
    got_bytes = n > 0;
    if (ec) return out;
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) stream.reset();
    return out;
  }
};

HttpClient::HttpClient(const std::string& url, std::string token, std::chrono::milliseconds timeout)
    : url_(url), impl_(std::make_unique<Impl>()) {
  impl_->url = parse_node_url(url);
  impl_->token = std::move(token);
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::request(std::string_view method, const std::string& target,
                                 const std::string& body) {
  Impl& s = *impl_;
  http::request<http::string_body> req;
  req.method(http::string_to_verb(method));
  req.target(s.url.prefix + target);
  req.version(11);
  req.set(http::field::host, s.url.host + ":" + s.url.port);
  req.set(http::field::user_agent, "tickdb-cli");
  req.set(http::field::accept, "application/json");
  if (!s.token.empty()) req.set(http::field::authorization, "Bearer " + s.token);
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.keep_alive(true);
  req.prepare_payload();

  // A reused connection the node closed while idle fails at once without a byte of answer:
  // open a new one and send again, once. A fresh connection that fails is the node's fault.
  for (int attempt = 0;; ++attempt) {
    const bool reused = s.stream.has_value();
    if (!reused) s.connect();
    beast::error_code ec;
    bool got_bytes = false;
    HttpResponse res = s.exchange(req, ec, got_bytes);
    if (!ec) return res;
    const bool stale = reused && !got_bytes && ec != beast::error::timeout;
    if (stale && attempt == 0) {
      s.stream.reset();
      continue;
    }
    s.unreachable(got_bytes ? "read" : "request", ec);
  }
}

}  // namespace tickdb::cli
