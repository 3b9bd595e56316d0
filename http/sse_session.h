// Server-Sent Events of `GET /table/{name}/events?filter=&select=&rate_hz=&since=` (API.md,
// Live subscriptions): one subscription per stream, named after its table. The HTTP session
// hands over its socket once the request is known to be valid (the table exists, the filter
// and select compile: else it answers the plain 4xx itself); the SSE session writes the
// stream's head, attaches to the SubscriptionHub and turns each hub frame into an event
// (`event:` the type, `data:` the other fields, `id:` the resume token on ready, delta and
// progress), with a comment line every 15 s. `Last-Event-ID` wins over `since`. A stream of a
// table of another cluster node is relayed from that node's hub (start_relayed_sse).
//
// Thread-safety: a session runs on its socket's io_context (one thread); the SubscriberLink
// side may be called from any thread and posts to it.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "config/config.h"
#include "core/status.h"
#include "http/message.h"

namespace tickdb {

class Cluster;
class Runtime;
class SubscriptionHub;

// The subscribe op of an events request for `table` (its query string as given), or the
// error to answer instead (checked against the current version).
Result<nlohmann::json> sse_subscription(const Runtime& rt, const std::string& table,
                                        const HttpRequest& req);

// Takes over `socket` and streams `op`'s subscription until the client goes away.
void start_sse(boost::asio::ip::tcp::socket socket, nlohmann::json op, SubscriptionHub& hub,
               const Config& cfg);
// Takes over `socket` and relays the event stream `req` asks for from `owner`, the node of
// its table (Cluster::open_stream): the owner checks the request and answers as it would
// (its error is answered here with X-Tickdb-Node/-Owner; 503 / 504 when it is down or
// silent), and its frames become events here as they would there. Ends when the client goes
// away, the owner ends it, or the link to the owner goes down (the client then reconnects
// with Last-Event-ID).
void start_relayed_sse(boost::asio::ip::tcp::socket socket, HttpRequest req, Cluster& cluster,
                       std::string owner, const Config& cfg);

}  // namespace tickdb
