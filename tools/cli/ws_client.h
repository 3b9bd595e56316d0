// A blocking WebSocket client for the node's `GET /ws` (subprotocol tickdb.v1): connect and
// handshake bounded by a timeout, the token sent as `Authorization: Bearer`, then text frames
// out and in. Reads wait as long as it takes: the node sends a frame at least once a second.
// Beast stays inside ws_client.cpp.
//
// Thread-safety: one thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace tickdb::cli {

class WsClient {
 public:
  // Throws CliError(kExitUnreachable) when the node cannot be reached, kExitServerError when
  // it refuses the upgrade (401, say).
  WsClient(const std::string& url, const std::string& token, std::chrono::milliseconds timeout);
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  void send(const std::string& text);
  // The next text frame; throws CliError(kExitUnreachable) when the connection ends (the
  // close code and reason in its message).
  std::string read();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickdb::cli
