// The owner's side of relayed event streams (Router::serve_stream, Router::stream_owner): a
// client asks another node of the cluster for `GET /table/{name}/events` of a table that lives
// here; that node opens the stream here with a forwarded call (Cluster::open_stream), and this
// node's hub serves it as it serves its own clients, through a link whose frames go back over
// the cluster (StreamOut). The relaying node acknowledges each frame once its client has it,
// so the hub's back-pressure (conflation, reset, the slow close) follows the real client.
//
// Thread-safety: serve_stream runs in the cluster's node actor; the link is called by the
// hub's thread, and its close from the cluster's threads (StreamOut::on_closed).
#include <atomic>

#include "actors/cluster.h"
#include "http/cluster_routing.h"
#include "http/route_table.h"
#include "http/router.h"
#include "http/sse_session.h"
#include "http/subscription_hub.h"

namespace tickdb {

namespace {

// A hub connection whose frames go to the node that relays them.
class RelayedSubscriber final : public SubscriberLink {
 public:
  RelayedSubscriber(std::shared_ptr<StreamOut> out, SubscriptionHub& hub)
      : out_(std::move(out)), hub_(hub) {}

  void send(HubFrame frame) override {
    if (frame.text) out_->send(*frame.text);
  }
  std::size_t queued_bytes() const override {
    return static_cast<std::size_t>(out_->unacked_bytes());
  }
  // The hub ends it (4008 slow, 1001 stopping): the relaying node closes its client's stream
  // with the same code and reason.
  void close(int code, std::string reason) override {
    out_->end(code, reason);
    leave();
  }

  void joined(std::uint64_t conn) { conn_.store(conn, std::memory_order_release); }
  // Leaves the hub, once (the hub's close and the relay's close may both come).
  void leave() {
    if (const auto c = conn_.exchange(0, std::memory_order_acq_rel)) hub_.detach(c);
  }

 private:
  std::shared_ptr<StreamOut> out_;
  SubscriptionHub& hub_;
  std::atomic<std::uint64_t> conn_{0};
};

ForwardReply json_reply(int status, std::string body, const std::string& node) {
  ForwardReply r;
  r.status = status;
  r.body = std::move(body);
  r.headers = {"X-Tickdb-Node", node};
  return r;
}

}  // namespace

std::string Router::stream_owner(const std::string& table) const {
  Cluster* c = cluster();
  if (!c || rt_->current()->table(table)) return {};
  auto o = c->owner(table);
  return o ? o->node : std::string();
}

void Router::serve_stream(ForwardRequest f, std::shared_ptr<StreamOut> out,
                          std::function<void(ForwardReply)> reply) {
  HttpRequest req = request_of(f);
  // Only a valid event stream request of a table here opens a stream; anything else gets what
  // this node answers the request itself (401, 404, the filter's 400 ...).
  std::optional<nlohmann::json> op;
  auto target = parse_target(req.target);
  const bool events = req.method == "GET" && target && target->segments.size() == 3 &&
                      target->segments[0] == "table" && target->segments[2] == "events";
  const std::string& token = cfg_.http_auth_token;
  const bool allowed = token.empty() || equal_constant_time(req.authorization, "Bearer " + token);
  if (events && allowed)
    if (auto o = sse_subscription(*rt_, target->segments[1], req)) op = std::move(*o);
  if (!op) return serve_forwarded(std::move(f), std::move(reply));

  auto link = std::make_shared<RelayedSubscriber>(out, *hub_);
  const std::uint64_t conn = hub_->attach(link);  // sends the hello (to the relaying node)
  if (conn == 0)
    return reply(json_reply(
        503,
        R"({"error":{"code":"resource_exhausted","message":"too many subscription connections"}})",
        cfg_.node_name));
  link->joined(conn);
  out->on_closed([link] { link->leave(); });
  ForwardReply ok = json_reply(200, "{}", cfg_.node_name);
  ok.headers.push_back(kStreamHeader);  // the stream runs (Cluster: what a plain 200 is not)
  ok.headers.push_back("open");
  reply(std::move(ok));
  hub_->subscribe(conn, std::move(*op));
}

}  // namespace tickdb
