// bench_node: a tickdb-server process for the benchmarks that measure it over HTTP
// (tickdb-bench-durability, tickdb-bench-subscriptions): a free loopback port, start with
// `--set` assignments and wait for /health, stop with SIGTERM, one-shot HTTP requests, the
// node's RSS. Every wait is bounded; a server that does not come up is reported with its log.
// Only 127.0.0.1 is used.
//
// Owner: the bench's main thread starts and stops nodes; started nodes are killed by
// kill_started_nodes() (call it from the bench's exit path). Thread-safety: http() may be
// called from any thread; the rest from one thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace tickdb::bench {

// A free TCP port on 127.0.0.1 (bound and released; the server may still lose a race for it).
int free_port();

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};
// One request on a fresh connection to 127.0.0.1 (Connection: close), 10 s at most.
HttpReply http(int port, const std::string& method, const std::string& target,
               const std::string& body = "");

// The first 64 KiB of a file ("" when it cannot be read).
std::string read_text(const std::string& path);

struct NodeProcess {
  pid_t pid = -1;
  int port = 0;
  std::string log;  // stdout and stderr go here
};
// Starts `server` with `--set http.port=<free port>` and `sets` (each "key=value"), output to
// `log`, and waits up to 20 s for /health (a few other ports are tried when it exits at once).
// std::runtime_error with the log when it does not come up.
NodeProcess start_node(const std::string& server, const std::vector<std::string>& sets,
                       const std::string& log);
// SIGTERM and a wait of up to 60 s: the exit status (128 + signal when killed).
// std::runtime_error when it does not stop.
int stop_node(NodeProcess& node);
// SIGKILL to every node started and not stopped, and a wait for each.
void kill_started_nodes();
// Only the SIGKILLs (async-signal-safe: for a SIGINT handler).
void kill_started_nodes_from_signal();
// The resident set of a process, bytes (0 when it cannot be read).
std::uint64_t rss_bytes(pid_t pid);

}  // namespace tickdb::bench
