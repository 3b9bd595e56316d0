// NodeProcess: one tickdb-server child process that a scenario runs against: started with
// fork/exec on a free loopback port (`--set http.port=0`) over a given data dir, ready once
// its "listening on http://127.0.0.1:PORT" line is out (waited for with a bound), its output
// (stdout and stderr) drained by a thread into a bounded tail so a chatty node never blocks
// on a full pipe. stop() is graceful (SIGTERM, then a bounded wait, then SIGKILL), kill() is a
// crash (SIGKILL). The destructor kills a node still running. The child dies with the runner
// (PR_SET_PDEATHSIG), so an interrupted run leaves no server behind.
//
// Owned by the ScenarioRunner of one scenario. Thread-safety: the methods are the owner's
// alone; the drain thread only touches the output tail, under its mutex.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace tickdb::scenario {

class NodeProcess {
 public:
  struct Options {
    std::string server;             // the tickdb-server executable
    std::string data_dir;           // storage.data_dir
    std::vector<std::string> sets;  // more --set assignments (modules, tick, ...)
    double start_timeout_s = 20;    // bound on waiting for the "listening on" line
    // Called with every line of the node's output (from the drain thread), if set.
    std::function<void(const std::string&)> echo;
  };

  // Starts the node and waits until it listens: io_error when it cannot be started, exits
  // first (the message holds its output) or does not listen within the bound.
  static Result<std::unique_ptr<NodeProcess>> start(Options options);

  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

  // How the process ended, in words: "exited 0", "killed by signal 9 (SIGKILL)".
  struct Exit {
    int status = 0;  // the raw waitpid status
    bool killed_after_timeout = false;
    std::string text() const;
  };
  // The exit, when the process has ended by itself or does so within `within_s` (it is then
  // reaped and pid() is -1).
  std::optional<Exit> exited(double within_s = 0);
  // SIGTERM, then waits for the exit for at most `timeout_s` (then SIGKILL).
  Exit stop(double timeout_s = 20);
  // SIGKILL, then waits for the exit.
  Exit kill();

  // The last lines of the node's output.
  std::string output_tail(std::size_t lines = 30) const;

 private:
  NodeProcess() = default;
  Exit wait_exit(double timeout_s);
  void drain();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread drainer_;
  std::function<void(const std::string&)> echo_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> tail_;  // guarded by mu_
  bool eof_ = false;              // guarded by mu_
};

}  // namespace tickdb::scenario
