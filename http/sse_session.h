// Server-Sent Events of `GET /table/{name}/events?filter=&select=&rate_hz=&since=` (API.md,
// Live subscriptions): one subscription per stream, named after its table. The HTTP session
// hands over its socket once the request is known to be valid (the table exists, the filter
// and select compile: else it answers the plain 4xx itself); the SSE session writes the
// stream's head, attaches to the SubscriptionHub and turns each hub frame into an event
// (`event:` the type, `data:` the other fields, `id:` the resume token on ready, delta and
// progress), with a comment line every 15 s. `Last-Event-ID` wins over `since`.
//
// Thread-safety: a session runs on its socket's io_context (one thread); the SubscriberLink
// side may be called from any thread and posts to it.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "config/config.h"
#include "core/status.h"
#include "http/message.h"

namespace tickdb {

class Runtime;
class SubscriptionHub;

// The subscribe op of an events request for `table` (its query string as given), or the
// error to answer instead (checked against the current version).
Result<nlohmann::json> sse_subscription(const Runtime& rt, const std::string& table,
                                        const HttpRequest& req);

// Takes over `socket` and streams `op`'s subscription until the client goes away.
void start_sse(boost::asio::ip::tcp::socket socket, nlohmann::json op, SubscriptionHub& hub,
               const Config& cfg);

}  // namespace tickdb
