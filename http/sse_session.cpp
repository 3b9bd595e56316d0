#include "http/sse_session.h"

#include <atomic>
#include <boost/asio.hpp>
#include <deque>

#include "actors/runtime.h"
#include "core/filter.h"
#include "core/json_codec.h"
#include "core/projection.h"
#include "core/query.h"
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
  SseSession(tcp::socket s, json op, SubscriptionHub& hub)
      : sock_(std::move(s)), op_(std::move(op)), hub_(hub), timer_(sock_.get_executor()) {}

  void start() {
    conn_ = hub_.attach(shared_from_this());
    if (conn_ == 0) {
      const std::string body =
          R"({"error":{"code":"resource_exhausted","message":"too many subscription connections"}})";
      queue_raw(
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
      closing_ = true;
      return;
    }
    hub_.subscribe(conn_, std::move(op_));
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
           "no-cache\r\n"
           "Connection: close\r\n\r\n";
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
                  [self = shared_from_this(), ev = std::move(ev),
                   ns = frame.published_ns]() mutable { self->queue(std::move(ev), ns); });
  }
  std::size_t queued_bytes() const override { return queued_.load(std::memory_order_relaxed); }
  void close(int code, std::string reason) override {
    std::string ev =
        "event: error\ndata: " +
        json_text(json{{"code", code == 4008 ? "slow_consumer" : "closed"}, {"message", reason}}) +
        "\n\n";
    net::dispatch(sock_.get_executor(), [self = shared_from_this(), ev = std::move(ev)]() mutable {
      self->queue_raw(std::move(ev));
      self->closing_ = true;
    });
  }

 private:
  void queue_raw(std::string s) {
    queued_.fetch_add(s.size(), std::memory_order_relaxed);
    queue(std::move(s));
  }
  void queue(std::string s, std::int64_t published_ns = 0) {
    if (done_) {
      queued_.fetch_sub(s.size(), std::memory_order_relaxed);
      return;
    }
    out_.emplace_back(std::move(s), published_ns);
    if (!writing_) write_next();
  }
  void write_next() {
    writing_ = true;
    net::async_write(sock_, net::buffer(out_.front().first),
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       self->queued_.fetch_sub(self->out_.front().first.size(),
                                               std::memory_order_relaxed);
                       if (!ec) self->hub_.frame_written(self->out_.front().second);
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
    if (conn_) hub_.detach(conn_);
    conn_ = 0;
    boost::system::error_code ignore;
    sock_.shutdown(tcp::socket::shutdown_both, ignore);
    sock_.close(ignore);
  }

  tcp::socket sock_;
  json op_;
  SubscriptionHub& hub_;
  net::steady_timer timer_;
  std::deque<std::pair<std::string, std::int64_t>> out_;  // an event, its HubFrame::published_ns
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

}  // namespace tickdb
