#include "http/ws_session.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#ifdef TICKDB_FUZZ_BUILD
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <future>
#include <mutex>
#endif

#include "core/json_codec.h"
#include "http/router.h"
#include "http/subscription_hub.h"

namespace tickdb {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;

bool is_websocket_upgrade(const HttpRequest& req) {
  return beast::iequals(req.header("upgrade"), "websocket");
}

namespace {

constexpr std::string_view kProtocol = "tickdb.v1";
// How long the node waits for the peer's close frame once it sent its own (or answered the
// peer's) before it drops the TCP connection: a peer that started a frame and went quiet, or
// whose close hides in a frame it never finished, holds a session no longer than this.
constexpr auto kCloseGrace = std::chrono::seconds(3);

class WsSession : public SubscriberLink, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket s, SubscriptionHub& hub, const Config& cfg)
      : ws_(std::move(s)),
        hub_(hub),
        cfg_(cfg),
        auth_timer_(ws_.get_executor()),
        close_timer_(ws_.get_executor()) {}

  void start(HttpRequest req) {
    http::request<http::empty_body> up;
    up.method(http::verb::get);
    up.target(req.target);
    up.version(11);
    up.set(http::field::host, "tickdb");
    up.set(http::field::upgrade, "websocket");
    up.set(http::field::connection, "Upgrade");
    for (const auto& [k, v] : req.headers)
      if (k.rfind("sec-websocket-", 0) == 0) up.set(k, v);
    const bool wants_protocol =
        req.header("sec-websocket-protocol").find(kProtocol) != std::string_view::npos;
    ws_.set_option(
        websocket::stream_base::decorator([wants_protocol](websocket::response_type& res) {
          res.set(http::field::server, "tickdb");
          if (wants_protocol) res.set(http::field::sec_websocket_protocol, kProtocol);
        }));
    // Pings every ws.ping_s; a peer that answers nothing for two of them is closed (1001).
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(2 * cfg_.ws_ping_s));
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(0);  // the session counts a message's bytes itself (4002 past the limit)
    ws_.auto_fragment(false);
    const bool token = !cfg_.http_auth_token.empty();
    authed_ = !token || equal_constant_time(req.authorization, "Bearer " + cfg_.http_auth_token);
    ws_.async_accept(up, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->open_ = true;
      if (self->authed_) {
        self->attach();
      } else {
        // The first frame must be a valid auth within http.timeout_s.
        self->auth_timer_.expires_after(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::duration<double>(self->cfg_.http_timeout_s)));
        self->auth_timer_.async_wait([self](beast::error_code e) {
          if (!e && !self->authed_)
            self->close_now(4001, "unauthorized: send {\"op\": \"auth\", \"token\": ...} first");
        });
      }
      self->read();
    });
  }

  // ---- SubscriberLink ----
  // dispatch, not post: a frame sent from this session's own thread (the hello, sent while
  // attaching) is queued at once, so it goes out before frames the hub sends from its thread.
  void send(HubFrame frame) override {
    queued_.fetch_add(frame.text->size(), std::memory_order_relaxed);
    net::dispatch(ws_.get_executor(), [self = shared_from_this(), f = std::move(frame)]() mutable {
      self->queue(std::move(f));
    });
  }
  std::size_t queued_bytes() const override { return queued_.load(std::memory_order_relaxed); }
  void close(int code, std::string reason) override {
    net::dispatch(ws_.get_executor(), [self = shared_from_this(), code, r = std::move(reason)]() {
      self->close_now(code, r);
    });
  }

 private:
  void attach() {
    conn_ = hub_.attach(shared_from_this());
    if (conn_ == 0) close_now(4029, "too many connections");
  }

  void read() {
    reading_ = true;
    ws_.async_read_some(
        in_.prepare(16 * 1024),
        [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(beast::error_code ec, std::size_t n) {
    reading_ = false;
    if (ec) {
#ifdef TICKDB_FUZZ_BUILD
      last_read_error_ = ec.message();
#endif
      return finish();
    }
    in_.commit(n);
    if (in_.size() > cfg_.ws_max_incoming_bytes)
      return close_now(4002, "frame over ws.max_incoming_bytes (" +
                                 std::to_string(cfg_.ws_max_incoming_bytes) + ")");
    if (!ws_.is_message_done()) return read();
    if (!ws_.got_text()) return close_now(4002, "frames are JSON text");
    std::string text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    if (!handle(text)) return;
    read();
  }

  // One client frame; false when the session closes.
  bool handle(const std::string& text) {
    auto j = parse_json(text);
    if (!j || !j->is_object()) {
      close_now(4002, "a frame is a JSON object");
      return false;
    }
    const json& op = (*j)["op"];
    if (!op.is_string()) {
      close_now(4002, "a frame needs a string 'op'");
      return false;
    }
    const std::string& o = op.get_ref<const std::string&>();
    if (o == "auth") {
      const json& tok = (*j)["token"];
      if (cfg_.http_auth_token.empty() ||
          (tok.is_string() &&
           equal_constant_time(tok.get_ref<const std::string&>(), cfg_.http_auth_token))) {
        if (!authed_) {
          authed_ = true;
          auth_timer_.cancel();
          attach();
        }
        return true;
      }
      close_now(4001, "unauthorized: wrong token");
      return false;
    }
    if (!authed_) {
      close_now(4001, "unauthorized: the first frame must be {\"op\": \"auth\", \"token\": ...}");
      return false;
    }
    if (o == "ping") {
      queue_direct("{\"type\":\"pong\"}");
      return true;
    }
    if (o == "subscribe") {
      hub_.subscribe(conn_, std::move(*j));
      return true;
    }
    if (o == "unsubscribe") {
      const json& sub = (*j)["sub"];
      if (!sub.is_string()) {
        queue_direct(frame_text(json{{"type", "error"},
                                     {"code", "invalid_argument"},
                                     {"message", "unsubscribe: 'sub' must be a string"}}));
        return true;
      }
      hub_.unsubscribe(conn_, sub.get<std::string>());
      return true;
    }
    close_now(4002, "unknown op '" + o.substr(0, 32) + "'");
    return false;
  }

  void queue_direct(std::string text) {
    queued_.fetch_add(text.size(), std::memory_order_relaxed);
    queue(HubFrame{std::make_shared<const std::string>(std::move(text)), 0});
  }

  void queue(HubFrame frame) {
    if (!open_) {
      queued_.fetch_sub(frame.text->size(), std::memory_order_relaxed);
      return;
    }
    out_.push_back(std::move(frame));
    if (!writing_) write_next();
  }

  void write_next() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(*out_.front().text),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      const HubFrame& done = self->out_.front();
                      self->queued_.fetch_sub(done.text->size(), std::memory_order_relaxed);
                      if (!ec) self->hub_.frame_written(done.published_ns);
                      self->out_.pop_front();
                      if (ec) {
                        self->writing_ = false;
                        return self->finish();
                      }
                      if (!self->out_.empty()) return self->write_next();
                      self->writing_ = false;
                      if (self->closing_) self->send_close();
                    });
  }

  void close_now(int code, std::string reason) {
    if (!open_ || closing_) return;
    closing_ = true;
    close_code_ = code;
    close_reason_ = std::move(reason);
    if (close_reason_.size() > 120) close_reason_.resize(120);  // a close reason fits 123 bytes
    // Frames already queued go out first, except for a slow consumer (that is the problem).
    if (code == 4008) {
      while (out_.size() > (writing_ ? 1u : 0u)) {
        queued_.fetch_sub(out_.back().text->size(), std::memory_order_relaxed);
        out_.pop_back();
      }
    }
    if (!writing_) send_close();
  }

  void send_close() {
    if (!open_) return;
    open_ = false;
    close_timer_.expires_after(kCloseGrace);
    close_timer_.async_wait([self = shared_from_this()](beast::error_code e) {
      if (e) return;  // cancelled: the session finished in time
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).close(ignored);  // its pending operations end now
    });
    ws_.async_close(
        websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
        [self = shared_from_this()](beast::error_code) { self->finish(); });
  }

  void finish() {
    finished_ = true;
    open_ = false;
    auth_timer_.cancel();
    close_timer_.cancel();
    if (conn_) hub_.detach(conn_);
    conn_ = 0;
  }

  websocket::stream<tcp::socket> ws_;
  SubscriptionHub& hub_;
  const Config& cfg_;
  net::steady_timer auth_timer_, close_timer_;
  beast::flat_buffer in_;
  std::deque<HubFrame> out_;
  std::atomic<std::size_t> queued_{0};
  std::uint64_t conn_ = 0;
  bool authed_ = false;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;
  int close_code_ = 1000;
  std::string close_reason_;
  bool reading_ = false, finished_ = false;
#ifdef TICKDB_FUZZ_BUILD
  std::string last_read_error_;

 public:
  // The state, for describe_websocket_sessions (on the session's thread).
  std::string describe() const {
    std::string s = "conn " + std::to_string(conn_) + (open_ ? " open" : " not-open") +
                    (reading_ ? " reading" : "") + (writing_ ? " writing" : "") +
                    (closing_ ? " closing" : "") + (finished_ ? " finished" : "") +
                    (ws_.is_open() ? " ws-open" : " ws-closed") + " out " +
                    std::to_string(out_.size()) + " queued " + std::to_string(queued_.load()) +
                    " in " + std::to_string(in_.size());
    if (!last_read_error_.empty()) s += " read-error '" + last_read_error_ + "'";
    // The socket itself: which peer it is connected to (a stray close elsewhere could hand
    // its fd number to another connection), what the kernel holds unsent or unread, and when
    // TCP last sent and received data on it.
    auto& sock = beast::get_lowest_layer(ws_);
    if (!sock.is_open()) return s + " socket-closed";
    const int fd = const_cast<tcp::socket&>(sock).native_handle();
    sockaddr_in peer{}, self{};
    socklen_t len = sizeof peer;
    s += " fd " + std::to_string(fd);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
      s += " peer-port " + std::to_string(ntohs(peer.sin_port));
    else
      s += " no-peer";
    len = sizeof self;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) == 0)
      s += " local-port " + std::to_string(ntohs(self.sin_port));
    int outq = -1, inq = -1;
    ::ioctl(fd, SIOCOUTQ, &outq);
    ::ioctl(fd, SIOCINQ, &inq);
    s += " kernel-outq " + std::to_string(outq) + " kernel-inq " + std::to_string(inq);
    tcp_info ti{};
    len = sizeof ti;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
      s += " tcp-state " + std::to_string(ti.tcpi_state) + " last-data-sent-ms " +
           std::to_string(ti.tcpi_last_data_sent) + " last-data-recv-ms " +
           std::to_string(ti.tcpi_last_data_recv) + " unacked " + std::to_string(ti.tcpi_unacked);
    return s;
  }
  auto executor() {
    return ws_.get_executor();
  }
#endif
};

#ifdef TICKDB_FUZZ_BUILD
std::mutex g_sessions_mu;
std::vector<std::weak_ptr<WsSession>> g_sessions;
#endif

}  // namespace

void start_websocket(tcp::socket socket, HttpRequest req, SubscriptionHub& hub, const Config& cfg) {
  auto s = std::make_shared<WsSession>(std::move(socket), hub, cfg);
#ifdef TICKDB_FUZZ_BUILD
  {
    std::lock_guard lk(g_sessions_mu);
    std::erase_if(g_sessions, [](const auto& w) { return w.expired(); });
    g_sessions.push_back(s);
  }
#endif
  s->start(std::move(req));
}

#ifdef TICKDB_FUZZ_BUILD
std::string describe_websocket_sessions() {
  std::vector<std::shared_ptr<WsSession>> live;
  {
    std::lock_guard lk(g_sessions_mu);
    for (auto& w : g_sessions)
      if (auto p = w.lock()) live.push_back(std::move(p));
  }
  std::string out = std::to_string(live.size()) + " live session(s)";
  for (auto& p : live) {
    auto done = std::make_shared<std::promise<std::string>>();
    auto f = done->get_future();
    net::post(p->executor(), [p, done] { done->set_value(p->describe()); });
    out += "\n  ";
    out += f.wait_for(std::chrono::seconds(1)) == std::future_status::ready
               ? f.get()
               : std::string("(its thread did not answer within 1 s)");
  }
  return out;
}
#endif

}  // namespace tickdb
