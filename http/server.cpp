#include "http/server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <ctime>
#include <thread>

#include "http/io_round.h"
#include "http/request_parser.h"
#include "http/sse_session.h"
#include "http/ws_session.h"

namespace tickdb {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

class Session;

thread_local net::io_context* t_io = nullptr;  // this thread's, when it is an I/O thread

// One I/O thread: its own io_context (no strand, no lock between the threads' sessions), the
// sessions it runs, and one coarse timer that closes the ones past their deadline and keeps
// the Date header (instead of a timer armed for every read and write).
struct IoThread {
  std::size_t index = 0;
  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  net::steady_timer sweep{ioc};
  Session* sessions = nullptr;  // intrusive list of the open sessions of this thread
  Clock::time_point now = Clock::now();
  std::string date;  // "Date: ...\r\n"
  std::time_t date_second = 0;
  std::thread thread;

  void update_clock() {
    now = Clock::now();
    const std::time_t t = std::time(nullptr);
    if (t == date_second) return;
    date_second = t;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    const auto n = std::strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    date.assign(buf, n);
  }
};

constexpr std::chrono::milliseconds kSweepEvery{250};
constexpr std::chrono::seconds kLinger{2};      // reading what a refused client still sends
constexpr std::size_t kLingerBytes = 4u << 20;  // ... at most this much
constexpr std::size_t kReadChunk = 8192;

}  // namespace

// One thread of the WebSocket and SSE sessions (subscriptions.threads of them): a plain
// io_context, run at subscriptions.nice, so that streaming deltas yields the CPU to the tick,
// the actors and the request/response threads whenever they want it.
struct StreamThread {
  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::thread thread;
};

struct HttpServer::Impl {
  Config cfg;
  std::unique_ptr<Router> router;
  std::vector<std::unique_ptr<IoThread>> io;
  std::vector<std::unique_ptr<StreamThread>> streams;
  std::atomic<std::size_t> next_stream{0};
  std::unique_ptr<tcp::acceptor> acceptor;  // runs on io[0]
  std::unique_ptr<net::steady_timer> accept_retry;
  std::size_t next_thread = 0;
  Clock::duration timeout{};
  std::atomic<int> busy{0};  // requests read and not yet answered
  std::atomic<bool> stopping{false};
  std::uint16_t port = 0;
  std::string node_header;  // "X-Tickdb-Node: <node.name>\r\n" (API.md, Cluster)
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket s, IoThread* io, HttpServer::Impl* srv)
      : socket_(std::move(s)), io_(io), srv_(srv) {}

  void start() {
    next_ = io_->sessions;
    if (next_) next_->prev_ = this;
    io_->sessions = this;
    linked_ = true;
    next_request();
  }

  // The sweep: close a session past its deadline (idle, slow to send its request, or slow to
  // read its answer). A session waiting for its answer has no deadline.
  void sweep(Clock::time_point now) {
    if (now < deadline_) return;
    close();
  }
  // Graceful stop: close a session that is between requests.
  void close_if_idle() {
    if (state_ == State::reading && buffer_.size() == 0 && !started_request_) close();
  }
  Session* next() const { return next_; }

 private:
  enum class State { reading, busy, writing, lingering, closed };

  void next_request() {
    if (srv_->stopping) return close();
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(srv_->cfg.http_max_body_bytes);
    header_checked_ = false;
    started_request_ = false;
    state_ = State::reading;
    deadline_ = io_->now + srv_->timeout;
    parse_or_read();
  }

  // Parses what has arrived; reads more when the request is not complete.
  void parse_or_read() {
    for (;;) {
      if (buffer_.size() == 0) return read_more();
      started_request_ = true;
      beast::error_code ec;
      const std::size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec && ec != http::error::need_more) return parse_error(ec);
      if (parser_->is_header_done() && !header_checked_) {
        header_checked_ = true;
        if (!parser_->header_error().empty())
          return reject(Errc::invalid_argument, parser_->header_error());
        // The client waits for this before it sends the body (RFC 9110 10.1.1); a body too
        // large was refused above (body_limit at the header), so it is never read.
        if (parser_->expect_continue && parser_->version == 11 && !parser_->is_done() &&
            buffer_.size() == 0)
          return send_continue();
      }
      if (parser_->is_done()) return dispatch();
      if (ec == http::error::need_more || n == 0) return read_more();
    }
  }

  void read_more() {
    socket_.async_read_some(
        buffer_.prepare(kReadChunk),
        [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(beast::error_code ec, std::size_t n) {
    if (state_ == State::closed) return;
    if (ec) return close();  // end of stream, reset, or closed by the sweep
    buffer_.commit(n);
    parse_or_read();
  }

  void send_continue() {
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(socket_, net::buffer(k100.data(), k100.size()),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec || self->state_ == State::closed) return self->close();
                       self->parse_or_read();
                     });
  }

  void parse_error(beast::error_code ec) {
    if (ec == http::error::body_limit)
      return reject(Errc::payload_too_large, "the body is over http.max_body_bytes (" +
                                                 std::to_string(srv_->cfg.http_max_body_bytes) +
                                                 ")");
    if (ec == http::error::header_limit)
      return reject(Errc::header_too_large, "the request headers are over 16 KiB");
    reject(Errc::invalid_argument, "malformed HTTP request: " + ec.message());
  }

  // Answers a request the session refuses before routing, then closes the connection.
  void reject(Errc code, const std::string& msg) {
    keep_alive_ = false;
    head_ = false;
    route_ = kRouteRejected;
    begin_answer();
    write(error_response(make_error(code, msg)));
  }

  void begin_answer() {
    state_ = State::busy;
    deadline_ = Clock::time_point::max();
    started_ = Clock::now();
    srv_->busy.fetch_add(1, std::memory_order_relaxed);
  }

  void dispatch() {
    keep_alive_ = parser_->keep_alive();
    version_ = parser_->version;
    head_ = parser_->head;
    begin_answer();
    HttpRequest req = std::move(parser_->req);
    parser_.reset();
    if (upgrade(req)) return;
    route_ = srv_->router->handle(std::move(req), [self = shared_from_this()](HttpResponse r) {
      self->answer(std::move(r));
    });
  }

  // GET /ws asking for a WebSocket: the socket goes to a WebSocket session (ws_session.h).
  // A wrong Bearer token is answered 401 by the router; no token at all may still send an
  // auth frame first.
  // GET /table/{name}/events: a valid one becomes an event stream (sse_session.h); anything
  // wrong with it (auth, table, filter) is answered by the router's route as a plain error.
  bool upgrade(HttpRequest& req) {
    if (req.method != "GET" || srv_->stopping) return false;
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    const std::string& token = srv_->cfg.http_auth_token;
    if (path == "/ws" && is_websocket_upgrade(req)) {
      if (!token.empty() && !req.authorization.empty() &&
          !equal_constant_time(req.authorization, "Bearer " + token))
        return false;
      if (auto sock = hand_over())
        net::post(sock->get_executor(),
                  [srv = srv_, sock = std::move(*sock), req = std::move(req)]() mutable {
                    start_websocket(std::move(sock), std::move(req), srv->router->hub(), srv->cfg);
                  });
      return true;
    }
    if (path.size() > 14 && path.substr(0, 7) == "/table/" &&
        path.substr(path.size() - 7) == "/events") {
      if (!token.empty() && !equal_constant_time(req.authorization, "Bearer " + token))
        return false;
      auto target = parse_target(req.target);
      if (!target || target->segments.size() != 3) return false;
      // A table of another node: its stream is relayed from there (the owner checks it).
      if (req.header("x-tickdb-forwarded").empty())
        if (std::string owner = srv_->router->stream_owner(target->segments[1]); !owner.empty()) {
          Cluster* c = srv_->router->cluster();
          if (auto sock = hand_over())
            net::post(sock->get_executor(), [srv = srv_, c, sock = std::move(*sock),
                                             req = std::move(req),
                                             owner = std::move(owner)]() mutable {
              start_relayed_sse(std::move(sock), std::move(req), *c, std::move(owner), srv->cfg);
            });
          return true;
        }
      auto op = sse_subscription(srv_->router->runtime(), target->segments[1], req);
      if (!op) return false;
      if (auto sock = hand_over())
        net::post(sock->get_executor(),
                  [srv = srv_, sock = std::move(*sock), op = std::move(*op)]() mutable {
                    start_sse(std::move(sock), std::move(op), srv->router->hub(), srv->cfg);
                  });
      return true;
    }
    return false;
  }
  // The socket leaves the HTTP machinery for a stream thread: no answer is owed, the sweep
  // forgets it. Its descriptor moves to a socket of that thread's io_context (the session
  // starts there); none when it cannot be moved (the connection is then closed).
  std::optional<tcp::socket> hand_over() {
    srv_->busy.fetch_sub(1, std::memory_order_relaxed);
    state_ = State::closed;
    unlink();
    auto& to = *srv_->streams[srv_->next_stream++ % srv_->streams.size()];
    beast::error_code ec;
    const auto protocol = socket_.local_endpoint(ec).protocol();
    if (ec) return std::nullopt;
    const auto fd = socket_.release(ec);
    if (ec) return std::nullopt;
    tcp::socket moved(to.ioc);
    if (moved.assign(protocol, fd, ec); ec) {
      ::close(fd);
      return std::nullopt;
    }
    return moved;
  }

  // The router's answer, on any thread: written on this session's own thread, after the
  // handlers that are ready there now (an answer made on this thread too). The answers of
  // one round then leave together: a client's thread woken by the first finds the others
  // ready, instead of being woken once per answer while this thread parses the next request.
  void answer(HttpResponse r) {
    net::post(io_->ioc, [self = shared_from_this(), r = std::move(r)]() mutable {
      self->write(std::move(r));
    });
  }

  void write(HttpResponse r) {
    if (state_ == State::closed) return finish_answer();
    status_ = r.status;
    if (r.value) r.body = json_text(*r.value);
    keep_ = keep_alive_ && !srv_->stopping.load(std::memory_order_relaxed);
    const bool no_body = status_ == 204 || status_ == 304 || (status_ >= 100 && status_ < 200);
    head_text_.clear();
    head_text_ += "HTTP/1.1 ";
    char num[24];
    auto [end, _] = std::to_chars(num, num + sizeof num, status_);
    head_text_.append(num, end);
    head_text_ += ' ';
    const auto reason = http::obsolete_reason(static_cast<http::status>(status_));
    head_text_.append(reason.data(), reason.size());
    head_text_ += "\r\nServer: tickdb\r\n";
    head_text_ += io_->date;
    if (!no_body) {
      head_text_ += "Content-Type: ";
      head_text_ += r.content_type;
      head_text_ += "\r\nContent-Length: ";
      auto [e2, _2] = std::to_chars(num, num + sizeof num, r.body.size());
      head_text_.append(num, e2);
      head_text_ += "\r\n";
    }
    for (const auto& [k, v] : r.headers) {
      head_text_ += k;
      head_text_ += ": ";
      head_text_ += v;
      head_text_ += "\r\n";
    }
    bool named = false;
    for (const auto& h : r.headers) named = named || h.first == "X-Tickdb-Node";
    if (!named) head_text_ += srv_->node_header;
    if (!r.allow.empty()) {
      head_text_ += "Allow: ";
      head_text_ += r.allow;
      head_text_ += "\r\n";
    }
    if (!keep_)
      head_text_ += "Connection: close\r\n";
    else if (version_ == 10)
      head_text_ += "Connection: keep-alive\r\n";
    head_text_ += "\r\n";
    body_ = no_body || head_ ? std::string() : std::move(r.body);
    state_ = State::writing;
    deadline_ = io_->now + srv_->timeout;
    const std::array<net::const_buffer, 2> bufs{net::buffer(head_text_), net::buffer(body_)};
    net::async_write(socket_, bufs, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_write(ec);
    });
  }

  void finish_answer() {
    srv_->router->figures().record(
        io_->index, route_, status_,
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started_).count());
    srv_->busy.fetch_sub(1, std::memory_order_relaxed);
  }

  void on_write(beast::error_code ec) {
    finish_answer();
    if (body_.capacity() > (64u << 10)) std::string().swap(body_);  // keep idle sessions small
    if (ec || state_ == State::closed) return close();
    if (!keep_) return linger();
    next_request();
  }

  // A connection closed by us: send FIN, then read and drop what the client still sends
  // (a body we refused) for a moment, so that our answer is not lost to a reset.
  void linger() {
    beast::error_code ignore;
    socket_.shutdown(tcp::socket::shutdown_send, ignore);
    state_ = State::lingering;
    deadline_ = io_->now + kLinger;
    lingered_ = 0;
    drain();
  }
  void drain() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(kReadChunk), [self = shared_from_this()](
                                                             beast::error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > kLingerBytes || self->state_ == State::closed)
        return self->close();
      self->drain();
    });
  }

  // Leaves the thread's list of sessions (the sweep and the graceful stop walk it).
  void unlink() {
    if (!linked_) return;
    if (prev_)
      prev_->next_ = next_;
    else
      io_->sessions = next_;
    if (next_) next_->prev_ = prev_;
    prev_ = next_ = nullptr;
    linked_ = false;
  }

  void close() {
    if (state_ == State::closed) return;
    if (state_ == State::busy) {
      // Waiting for its answer: the answer closes it (see write).
      deadline_ = Clock::time_point::max();
      keep_alive_ = false;
    }
    const bool was_busy = state_ == State::busy;
    state_ = State::closed;
    unlink();
    beast::error_code ignore;
    if (!was_busy) socket_.shutdown(tcp::socket::shutdown_both, ignore);
    socket_.close(ignore);
  }

  tcp::socket socket_;
  IoThread* io_;
  HttpServer::Impl* srv_;
  Session* prev_ = nullptr;
  Session* next_ = nullptr;
  bool linked_ = false;
  State state_ = State::reading;
  Clock::time_point deadline_ = Clock::time_point::max();
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  bool header_checked_ = false;
  bool started_request_ = false;
  bool keep_alive_ = true;
  bool keep_ = true;
  bool head_ = false;
  unsigned version_ = 11;
  RouteId route_ = kRouteUnknown;
  int status_ = 0;
  Clock::time_point started_;
  std::string head_text_;
  std::string body_;
  std::size_t lingered_ = 0;
};

void arm_sweep(IoThread* t) {
  t->sweep.expires_after(kSweepEvery);
  t->sweep.async_wait([t](beast::error_code ec) {
    if (ec) return;
    t->update_clock();
    for (Session* s = t->sessions; s;) {
      Session* next = s->next();  // sweep() may unlink s
      s->sweep(t->now);
      s = next;
    }
    arm_sweep(t);
  });
}

void accept(HttpServer::Impl* srv) {
  IoThread* t = srv->io[srv->next_thread++ % srv->io.size()].get();
  srv->acceptor->async_accept(t->ioc, [srv, t](beast::error_code ec, tcp::socket s) {
    if (ec == net::error::operation_aborted || srv->stopping) return;
    if (ec) {
      // Out of file descriptors (or another transient failure): try again shortly instead
      // of spinning on the error.
      srv->accept_retry->expires_after(std::chrono::milliseconds(50));
      srv->accept_retry->async_wait([srv](beast::error_code e) {
        if (!e && !srv->stopping) accept(srv);
      });
      return;
    }
    beast::error_code ignore;
    s.set_option(tcp::no_delay(true), ignore);
    net::post(t->ioc, [srv, t, s = std::move(s)]() mutable {
      std::make_shared<Session>(std::move(s), t, srv)->start();
    });
    accept(srv);
  });
}

}  // namespace

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() {
  stop(std::chrono::milliseconds(0));
}

bool post_after_this_round(std::function<void()> fn) {
  if (!t_io) return false;
  net::post(*t_io, std::move(fn));
  return true;
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const Config& cfg, Runtime& rt) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  Impl& m = *s->impl_;
  m.cfg = cfg;
  m.node_header = "X-Tickdb-Node: " + cfg.node_name + "\r\n";
  m.timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(cfg.http_timeout_s));
  const unsigned threads = std::max(1u, cfg.http_threads);
  for (unsigned i = 0; i < threads; ++i) {
    auto t = std::make_unique<IoThread>();
    t->index = i;
    t->update_clock();
    m.io.push_back(std::move(t));
  }
  for (unsigned i = 0; i < std::max(1u, cfg.subscriptions_threads); ++i)
    m.streams.push_back(std::make_unique<StreamThread>());
  beast::error_code ec;
  auto addr = net::ip::make_address(cfg.http_address, ec);
  if (ec)
    return make_error(Errc::invalid_argument,
                      "config key 'http.address': '" + cfg.http_address + "' is no IP address");
  tcp::endpoint ep(addr, cfg.http_port);
  m.acceptor = std::make_unique<tcp::acceptor>(m.io[0]->ioc);
  m.accept_retry = std::make_unique<net::steady_timer>(m.io[0]->ioc);
  auto fail = [&](const std::string& what) {
    return make_error(Errc::invalid_argument, "cannot " + what + " " + cfg.http_address + ":" +
                                                  std::to_string(cfg.http_port) + ": " +
                                                  ec.message());
  };
  if (m.acceptor->open(ep.protocol(), ec); ec) return fail("open");
  if (m.acceptor->set_option(net::socket_base::reuse_address(true), ec); ec)
    return fail("configure");
  if (m.acceptor->bind(ep, ec); ec) return fail("bind");
  if (m.acceptor->listen(net::socket_base::max_listen_connections, ec); ec)
    return fail("listen on");
  m.port = m.acceptor->local_endpoint().port();
  // The router tells clients the port it listens on (GET /cluster, /openapi.json), which
  // differs from the configured one with http.port=0.
  Config bound = cfg;
  bound.http_port = m.port;
  m.router = std::make_unique<Router>(rt, bound);
  accept(&m);
  for (auto& t : m.io) {
    t->work.emplace(t->ioc.get_executor());
    arm_sweep(t.get());
    IoThread* tp = t.get();
    t->thread = std::thread([tp] {
      t_io = &tp->ioc;
      tp->ioc.run();
    });
  }
  for (auto& t : m.streams) {
    t->work.emplace(t->ioc.get_executor());
    t->thread = std::thread([tp = t.get(), nice = cfg.subscriptions_nice] {
      // Raising one's own nice value needs no privilege (lowering it would).
      if (nice > 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
      tp->ioc.run();
    });
  }
  return s;
}

std::uint16_t HttpServer::port() const {
  return impl_->port;
}
Router& HttpServer::router() {
  return *impl_->router;
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  Impl& m = *impl_;
  if (m.io.empty() || !m.io[0]->thread.joinable()) return;
  m.stopping = true;
  m.router->hub().stop();  // it posts frames to the I/O threads: stopped before them
  net::post(m.io[0]->ioc, [&m] {
    beast::error_code ec;
    m.acceptor->close(ec);
    m.accept_retry->cancel();
  });
  // Requests whose bytes have arrived get a moment to be read; then the sessions between
  // requests are closed and everything read is answered (up to `grace`).
  auto end = Clock::now() + grace;
  if (grace.count() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (auto& t : m.io)
    net::post(t->ioc, [tp = t.get()] {
      for (Session* s = tp->sessions; s;) {
        Session* next = s->next();
        s->close_if_idle();
        s = next;
      }
    });
  while (m.busy.load() > 0 && Clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (auto& t : m.io) {
    t->work.reset();
    t->ioc.stop();
  }
  for (auto& t : m.streams) {
    t->work.reset();
    t->ioc.stop();
  }
  for (auto& t : m.io)
    if (t->thread.joinable()) t->thread.join();
  for (auto& t : m.streams)
    if (t->thread.joinable()) t->thread.join();
}

}  // namespace tickdb
