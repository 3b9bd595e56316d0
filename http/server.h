// HttpServer: the Boost.Beast HTTP/1.1 listener and sessions of one node. No Beast in this
// header (the server binary and tests include it).
//
// `http.threads` I/O threads run the sessions. A session reads a request (headers at most
// 16 KiB; a body over http.max_body_bytes is answered 413 before it is read), hands it to the
// Router, and writes the answer when the router calls back (on the session's own executor), then
// reads the next: keep-alive and pipelined requests are answered in order. Idle or slow
// connections are closed after http.timeout_s.
//
// Thread-safety: start/stop from one thread.
#pragma once

#include <memory>

#include "http/router.h"

namespace tickdb {

class HttpServer {
 public:
  // Binds http.address:http.port (port 0: any free port) and starts the I/O threads.
  static Result<std::unique_ptr<HttpServer>> start(const Config& cfg, Runtime& rt);
  ~HttpServer();
  std::uint16_t port() const;
  Router& router();
  // Stops accepting, lets requests in flight be answered (up to `grace`), then stops.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10000));

  struct Impl;  // server.cpp's sessions use it

 private:
  HttpServer();
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickdb
