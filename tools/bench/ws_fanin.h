// WsFanIn: many WebSocket subscribers of one tickdb node, read by one epoll thread, for
// tickdb-bench-subscriptions. Each connection upgrades on /ws (subprotocol tickdb.v1),
// sends one subscribe frame once the upgrade is answered, and then reads every frame, looking
// only at the head of each message (its type; a delta's `from` and `to`; the version of
// hello, ready and progress) and skipping the rest, so the reader costs little beside the
// node. It answers pings and checks each connection's chain (every delta's `from` is the
// version of the connection's previous hello, ready, delta or progress). Loopback only.
//
// Thread-safety: start(), pause(), stop() from one thread (the bench's); stats() from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tickdb::bench {

class WsFanIn {
 public:
  // `n` connections to 127.0.0.1:port, each sending `subscribe` (a JSON op) after its upgrade.
  // The reader thread runs at `nice` (0: as the bench): the subscribers stand for clients on
  // other machines, so on a shared box they may yield the cores to the node.
  WsFanIn(int port, std::size_t n, std::string subscribe, int nice = 0);
  ~WsFanIn();
  WsFanIn(const WsFanIn&) = delete;
  WsFanIn& operator=(const WsFanIn&) = delete;

  // Connects every connection (blocking connects, then non-blocking reads) and starts the
  // reader thread. std::runtime_error when a connection cannot be made.
  void start();
  // Connection i stops reading (its socket stays open): a client that stalls.
  void pause(std::size_t i);
  void stop();

  struct Stats {
    // ready: connections that got their first ready (resets send more).
    std::uint64_t upgraded = 0, ready = 0, deltas = 0, progress = 0, frames = 0, bytes = 0;
    std::uint64_t chain_breaks = 0, closed = 0, errors = 0, resets = 0;
  };
  Stats stats() const;

 private:
  struct Conn;
  void run();
  void on_message(Conn& c);

  int port_;
  std::size_t n_;
  std::string subscribe_;
  int nice_ = 0;
  int epoll_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<long> pause_{-1};
  struct Counters {
    std::atomic<std::uint64_t> upgraded{0}, ready{0}, deltas{0}, progress{0}, frames{0}, bytes{0};
    std::atomic<std::uint64_t> chain_breaks{0}, closed{0}, errors{0}, resets{0};
  } c_;
};

}  // namespace tickdb::bench
