// WebSocket sessions of `GET /ws` (API.md, Live subscriptions): the HTTP session hands over
// its socket when a request asks for the upgrade; the WebSocket session completes the
// handshake (subprotocol tickdb.v1), attaches to the SubscriptionHub, reads client frames
// (auth, subscribe, unsubscribe, ping) and writes the hub's frames in order through a queue
// whose size the hub reads for back-pressure. Close codes: 1000 normal, 1001 stopping or idle,
// 4001 unauthorized, 4002 protocol error (bad JSON, unknown op, frame over
// ws.max_incoming_bytes), 4008 slow consumer, 4029 too many connections.
//
// Beast's WebSocket headers stay in ws_session.cpp (one translation unit).
//
// Thread-safety: a session runs on its socket's io_context (one thread); send() and close()
// (the SubscriberLink side) may be called from any thread and post to it.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "config/config.h"
#include "http/message.h"

namespace tickdb {

class SubscriptionHub;

// True when `req` asks for a WebSocket upgrade (Upgrade: websocket).
bool is_websocket_upgrade(const HttpRequest& req);

// Takes over `socket`, whose request `req` asked for the upgrade, and runs the session until
// it closes.
void start_websocket(boost::asio::ip::tcp::socket socket, HttpRequest req, SubscriptionHub& hub,
                     const Config& cfg);

#ifdef TICKDB_FUZZ_BUILD
// Fuzz builds only: one line per live session with its state (read pending, writing, closing,
// frames queued, Beast's is_open), asked on each session's own thread (at most 1 s each).
std::string describe_websocket_sessions();
#endif

}  // namespace tickdb
