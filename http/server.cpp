#include "http/server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace tickdb {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct HttpServer::Impl {
  Config cfg;
  std::unique_ptr<Router> router;
  net::io_context ioc;
  // Keeps the I/O threads running while answers are still to come from the actors (a
  // session waiting for one has no I/O pending, and once the acceptor is closed nothing
  // else would keep ioc.run() from returning).
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<int> busy{0};  // requests read and not yet answered
  std::atomic<bool> stopping{false};
  std::uint16_t port = 0;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket s, HttpServer::Impl* srv) : stream_(std::move(s)), srv_(srv) {}
  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    if (srv_->stopping) return close();
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(srv_->cfg.http_max_body_bytes);
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(srv_->cfg.http_timeout_s)));
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof)
      return close();
    if (ec == http::error::body_limit) return reject(413, Errc::payload_too_large, "the body is over http.max_body_bytes (" + std::to_string(srv_->cfg.http_max_body_bytes) + ")");
    if (ec == http::error::header_limit) return reject(431, Errc::invalid_argument, "the request headers are over 16 KiB");
    if (ec) return reject(400, Errc::invalid_argument, "malformed HTTP request: " + ec.message());
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = std::move(req.body());
    if (auto it = req.find(http::field::authorization); it != req.end()) r.authorization = std::string(it->value());
    started_ = std::chrono::steady_clock::now();
    ++srv_->busy;
    stream_.expires_never();  // the answer may take a while (a procedure); the write has its own
    srv_->router->handle(r, [self = shared_from_this()](HttpResponse res) {
      // Called on our own strand (reads: dispatch runs it at once) or on an actor's thread
      // (writes: dispatch queues it to our strand).
      net::dispatch(self->stream_.get_executor(), [self, res = std::move(res)]() mutable { self->write(std::move(res)); });
    });
  }

  void reject(int status, Errc code, const std::string& msg) {
    keep_alive_ = false;
    version_ = 11;
    started_ = std::chrono::steady_clock::now();
    ++srv_->busy;
    HttpResponse r = error_response(make_error(code, msg));
    r.status = status;
    r.route = "rejected";
    write(std::move(r));
  }

  void write(HttpResponse res) {
    route_ = res.route;
    status_ = res.status;
    auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), version_);
    msg->set(http::field::server, "tickdb");
    if (res.status != 204) {
      msg->set(http::field::content_type, res.content_type);
      msg->body() = std::move(res.body);
    }
    if (!res.allow.empty()) msg->set(http::field::allow, res.allow);
    msg->keep_alive(keep_alive_ && !srv_->stopping);
    msg->prepare_payload();
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(srv_->cfg.http_timeout_s)));
    http::async_write(stream_, *msg, [self = shared_from_this(), msg](beast::error_code ec, std::size_t) {
      self->on_write(ec, msg->keep_alive());
    });
  }

  void on_write(beast::error_code ec, bool keep) {
    srv_->router->record(route_, status_,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    --srv_->busy;
    if (ec || !keep) return close();
    read();
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  std::string route_;
  int status_ = 0;
  std::chrono::steady_clock::time_point started_;
};

void accept(HttpServer::Impl* srv) {
  srv->acceptor->async_accept(net::make_strand(srv->ioc), [srv](beast::error_code ec, tcp::socket s) {
    if (ec == net::error::operation_aborted || srv->stopping) return;
    if (!ec) {
      beast::error_code ignore;
      s.set_option(tcp::no_delay(true), ignore);
      std::make_shared<Session>(std::move(s), srv)->run();
    }
    accept(srv);
  });
}

}  // namespace

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() { stop(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(const Config& cfg, Runtime& rt) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  Impl& m = *s->impl_;
  m.cfg = cfg;
  m.router = std::make_unique<Router>(rt, cfg);
  beast::error_code ec;
  auto addr = net::ip::make_address(cfg.http_address, ec);
  if (ec) return make_error(Errc::invalid_argument, "config key 'http.address': '" + cfg.http_address + "' is no IP address");
  tcp::endpoint ep(addr, cfg.http_port);
  m.acceptor = std::make_unique<tcp::acceptor>(m.ioc);
  auto fail = [&](const std::string& what) {
    return make_error(Errc::invalid_argument, "cannot " + what + " " + cfg.http_address + ":" +
                                                  std::to_string(cfg.http_port) + ": " + ec.message());
  };
  if (m.acceptor->open(ep.protocol(), ec); ec) return fail("open");
  if (m.acceptor->set_option(net::socket_base::reuse_address(true), ec); ec) return fail("configure");
  if (m.acceptor->bind(ep, ec); ec) return fail("bind");
  if (m.acceptor->listen(net::socket_base::max_listen_connections, ec); ec) return fail("listen on");
  m.port = m.acceptor->local_endpoint().port();
  accept(&m);
  m.work.emplace(m.ioc.get_executor());
  for (unsigned i = 0; i < cfg.http_threads; ++i) m.threads.emplace_back([&m] { m.ioc.run(); });
  return s;
}

std::uint16_t HttpServer::port() const { return impl_->port; }
Router& HttpServer::router() { return *impl_->router; }

void HttpServer::stop(std::chrono::milliseconds grace) {
  Impl& m = *impl_;
  if (m.threads.empty()) return;
  m.stopping = true;
  net::post(m.ioc, [&m] {
    beast::error_code ec;
    m.acceptor->close(ec);
  });
  // Requests whose bytes have arrived get a moment to be read, then everything read is
  // answered (up to `grace`).
  auto end = std::chrono::steady_clock::now() + grace;
  if (grace.count() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  while (m.busy.load() > 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  m.work.reset();
  m.ioc.stop();
  for (auto& t : m.threads) t.join();
  m.threads.clear();
}

}  // namespace tickdb
