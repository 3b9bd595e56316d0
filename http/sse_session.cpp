#include "http/sse_session.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/http/status.hpp>
#include <deque>

#include "actors/cluster.h"
#include "actors/forward_table.h"
#include "actors/runtime.h"
#include "core/filter.h"
#include "core/json_codec.h"
#include "core/projection.h"
#include "core/query.h"
#include "http/cluster_routing.h"
#include "http/route_table.h"
#include "http/subscription_hub.h"

namespace tickdb {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;

Result<json> sse_subscription(const Runtime& rt, const std::string& table, const HttpRequest& req) {
  auto target = parse_target(req.target);
  if (!target) return target.error();
  json op = {{"op", "subscribe"}, {"sub", table}, {"table", table}};
  for (const auto& [k, v] : target->query) {
    if (k == "filter") {
      const auto first = v.find_first_not_of(" \t\r\n");
      if (first != std::string::npos && v[first] == '[') {
        auto j = parse_json(v);
        if (!j) return make_error(Errc::invalid_argument, "filter: " + j.error().message);
        op["filter"] = std::move(*j);
      } else {
        op["filter"] = v;
      }
    } else if (k == "select") {
      op["select"] = v;
    } else if (k == "since") {
      op["since"] = v;
    } else if (k == "rate_hz") {
      char* end = nullptr;
      const double hz = std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size() || !(hz > 0))
        return make_error(Errc::invalid_argument,
                          "rate_hz must be a positive number, it is '" + v.substr(0, 32) + "'");
      op["rate_hz"] = hz;
    } else {
      return make_error(Errc::invalid_argument,
                        "unknown query parameter '" + k.substr(0, 40) + "'");
    }
  }
  // Last-Event-ID (a reconnecting EventSource) wins over a `since` left in the URL.
  if (auto last = req.header("last-event-id"); !last.empty()) op["since"] = std::string(last);
  // What the hub would refuse is a plain error before the stream starts.
  auto v = rt.current();
  auto t = v->find_table(table);
  if (!t) return t.error();
  if (op.contains("filter")) {
    auto f = parse_filter(op["filter"]);
    if (!f) return f.error();
    auto c = CompiledFilter::compile(*f, *(*t)->schema());
    if (!c) return c.error();
  }
  std::vector<std::string> select;
  if (op.contains("select")) {
    auto names = field_names_from_json(op["select"], "select");
    if (!names) return names.error();
    select = std::move(*names);
  }
  if (auto p = Projection::make(*(*t)->schema(), select); !p) return p.error();
  return op;
}

namespace {

constexpr std::chrono::seconds kComment{15};

class SseSession : public SubscriberLink, public std::enable_shared_from_this<SseSession> {
 public:
  // A stream of this node's hub.
  SseSession(tcp::socket s, json op, SubscriptionHub& hub)
      : sock_(std::move(s)), op_(std::move(op)), hub_(&hub), timer_(sock_.get_executor()) {}
  // A stream of `owner`'s hub, relayed through the cluster (its request, as the client sent it).
  SseSession(tcp::socket s, HttpRequest req, Cluster& cluster, std::string owner)
      : sock_(std::move(s)),
        req_(std::move(req)),
        cluster_(&cluster),
        owner_(std::move(owner)),
        timer_(sock_.get_executor()) {
    extra_head_ = "X-Tickdb-Node: " + owner_ + "\r\nX-Tickdb-Owner: " + owner_ + "\r\n";
  }

  void start() {
    if (cluster_) {
      auto rx = std::make_shared<Relay>();
      rx->session = weak_from_this();
      stream_ = cluster_->open_stream(owner_, forward_request_of(req_), std::move(rx));
      req_ = HttpRequest{};
      watch_client();
      arm_comment();
      return;
    }
    conn_ = hub_->attach(shared_from_this());
    if (conn_ == 0) {
      const std::string body =
          R"({"error":{"code":"resource_exhausted","message":"too many subscription connections"}})";
      queue_raw(
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
      closing_ = true;
      return;
    }
    hub_->subscribe(conn_, std::move(op_));
    watch_client();
    arm_comment();
  }

  // ---- SubscriberLink: hub frames become events ----
  // dispatch, not post: the hello, sent while attaching on this thread, is queued at once,
  // so it (and the stream's head) goes out before frames the hub sends from its thread.
  void send(HubFrame frame) override {
    auto j = json::parse(*frame.text, nullptr, false);
    if (!j.is_object() || !j["type"].is_string()) return;
    const std::string type = j["type"];
    j.erase("type");
    std::string ev;
    if (type == "hello") {
      if (j["epoch"].is_string()) epoch_ = j["epoch"].get<std::string>();
      // The stream's head goes out with the first frame.
      ev = "HTTP/1.1 200 OK\r\nServer: tickdb\r\nContent-Type: text/event-stream\r\nCache-Control: "
           "no-cache\r\n" +
           extra_head_ + "Connection: close\r\n\r\n";
    }
    ev += "event: " + type + "\n";
    const char* ver = type == "delta"                           ? "to"
                      : (type == "ready" || type == "progress") ? "version"
                                                                : nullptr;
    if (ver && j[ver].is_number_unsigned())
      ev += "id: " + epoch_ + ":" + std::to_string(j[ver].get<std::uint64_t>()) + "\n";
    ev += "data: " + json_text(j) + "\n\n";
    queued_.fetch_add(ev.size(), std::memory_order_relaxed);
    net::dispatch(sock_.get_executor(),
                  [self = shared_from_this(), ev = std::move(ev), ns = frame.published_ns,
                   n = frame.text->size()]() mutable { self->queue(std::move(ev), ns, n); });
  }
  std::size_t queued_bytes() const override { return queued_.load(std::memory_order_relaxed); }
  void close(int code, std::string reason) override {
    if (cluster_) {
      // A relayed stream that ends before its head went out answers as a forwarded call to a
      // node that went away does.
      net::dispatch(sock_.get_executor(), [self = shared_from_this(), code, reason]() mutable {
        if (self->epoch_.empty())
          return self->refuse(forward_error_reply(Errc::node_unavailable, reason));
        self->end_stream(code, std::move(reason));
      });
      return;
    }
    end_stream(code, std::move(reason));
  }

 private:
  // The stream ends with an `error` event (4008: slow_consumer; else closed).
  void end_stream(int code, std::string reason) {
    std::string ev =
        "event: error\ndata: " +
        json_text(json{{"code", code == 4008 ? "slow_consumer" : "closed"}, {"message", reason}}) +
        "\n\n";
    net::dispatch(sock_.get_executor(), [self = shared_from_this(), ev = std::move(ev)]() mutable {
      if (self->closing_) return;
      self->queue_raw(std::move(ev));
      self->closing_ = true;
    });
  }

  // The owner's side of a relayed stream, on the cluster's threads.
  struct Relay final : StreamReceiver {
    std::weak_ptr<SseSession> session;
    void opened(ForwardReply r) override {
      if (r.status == 200) return;
      if (auto s = session.lock()) s->refuse(std::move(r));
    }
    // On the session's thread (in the order they came): the hello sets the epoch there.
    void frame(std::string text) override {
      if (auto s = session.lock())
        net::post(s->sock_.get_executor(), [s, text = std::move(text)]() mutable {
          s->send(HubFrame{std::make_shared<const std::string>(std::move(text)), 0});
        });
    }
    void ended(int code, std::string reason) override {
      if (auto s = session.lock()) s->close(code, std::move(reason));
    }
  };

  // The owner did not open the relayed stream: its answer (or the 503 / 504 of a node that is
  // down or silent) goes to the client as it would for any forwarded request, unless the
  // stream had started (then it ends as a closed stream does).
  void refuse(ForwardReply r) {
    net::dispatch(sock_.get_executor(), [self = shared_from_this(), r = std::move(r)]() mutable {
      if (self->closing_ || self->done_) return;
      if (!self->epoch_.empty()) {
        self->queue_raw(
            "event: error\ndata: " +
            json_text(json{{"code", "closed"},
                           {"message", "the stream's node answered " + std::to_string(r.status)}}) +
            "\n\n");
        self->closing_ = true;
        return;
      }
      namespace bhttp = boost::beast::http;
      std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " +
                         std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(r.status))) +
                         "\r\nServer: tickdb\r\nContent-Type: " + r.content_type +
                         "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
      bool named = false;
      for (std::size_t i = 0; i + 1 < r.headers.size(); i += 2) {
        if (r.headers[i] == kNotOwnerHeader) continue;
        named = named || r.headers[i] == "X-Tickdb-Node";
        head += r.headers[i] + ": " + r.headers[i + 1] + "\r\n";
      }
      if (!named) head += "X-Tickdb-Node: " + self->owner_ + "\r\n";
      head += "X-Tickdb-Owner: " + self->owner_ + "\r\nConnection: close\r\n\r\n";
      self->queue_raw(head + r.body);
      self->closing_ = true;
    });
  }

  void queue_raw(std::string s) {
    queued_.fetch_add(s.size(), std::memory_order_relaxed);
    queue(std::move(s));
  }
  // An event (or raw bytes), the published_ns of its hub frame and that frame's size.
  void queue(std::string s, std::int64_t published_ns = 0, std::size_t frame_bytes = 0) {
    if (done_) {
      queued_.fetch_sub(s.size(), std::memory_order_relaxed);
      return;
    }
    out_.push_back({std::move(s), published_ns, frame_bytes});
    if (!writing_) write_next();
  }
  void write_next() {
    writing_ = true;
    net::async_write(sock_, net::buffer(out_.front().text),
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       const Out& o = self->out_.front();
                       self->queued_.fetch_sub(o.text.size(), std::memory_order_relaxed);
                       if (!ec && self->hub_) self->hub_->frame_written(o.published_ns);
                       if (!ec && self->stream_ && o.frame_bytes)
                         self->cluster_->stream_written(self->stream_, o.frame_bytes);
                       self->out_.pop_front();
                       self->writing_ = false;
                       if (ec) return self->finish();
                       if (!self->out_.empty()) return self->write_next();
                       if (self->closing_) self->finish();
                     });
  }
  // A client that goes away is seen as the end of its (otherwise silent) side.
  void watch_client() {
    sock_.async_read_some(net::buffer(scratch_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                            if (ec) return self->finish();
                            self->watch_client();
                          });
  }
  void arm_comment() {
    timer_.expires_after(kComment);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->done_) return;
      if (!self->epoch_.empty()) self->queue_raw(": keep-alive\n\n");
      self->arm_comment();
    });
  }
  void finish() {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    if (conn_) hub_->detach(conn_);
    conn_ = 0;
    if (stream_) cluster_->close_stream(stream_);
    stream_ = 0;
    boost::system::error_code ignore;
    sock_.shutdown(tcp::socket::shutdown_both, ignore);
    sock_.close(ignore);
  }

  struct Out {
    std::string text;  // an event, or raw bytes
    std::int64_t published_ns = 0;
    std::size_t frame_bytes = 0;  // the hub frame's bytes (what a relayed stream acknowledges)
  };
  tcp::socket sock_;
  json op_;
  SubscriptionHub* hub_ = nullptr;  // a stream of this node's hub, or
  HttpRequest req_;                 // one relayed from `owner_` (until it is opened)
  Cluster* cluster_ = nullptr;
  std::string owner_;
  std::uint64_t stream_ = 0;  // its id (0 once closed)
  std::string extra_head_;
  net::steady_timer timer_;
  std::deque<Out> out_;
  std::atomic<std::size_t> queued_{0};
  std::array<char, 512> scratch_{};
  std::uint64_t conn_ = 0;
  std::string epoch_;
  bool writing_ = false, closing_ = false, done_ = false;
};

}  // namespace

void start_sse(tcp::socket socket, json op, SubscriptionHub& hub, const Config&) {
  std::make_shared<SseSession>(std::move(socket), std::move(op), hub)->start();
}

void start_relayed_sse(tcp::socket socket, HttpRequest req, Cluster& cluster, std::string owner,
                       const Config&) {
  std::make_shared<SseSession>(std::move(socket), std::move(req), cluster, std::move(owner))
      ->start();
}

}  // namespace tickdb
