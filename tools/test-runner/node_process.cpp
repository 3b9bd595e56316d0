#include "tools/test-runner/node_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

namespace tickdb::scenario {

namespace {

constexpr std::size_t kTailLines = 200;
constexpr std::string_view kListening = "listening on http://127.0.0.1:";

std::string os_error(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

std::string NodeProcess::Exit::text() const {
  std::string s;
  if (WIFEXITED(status)) {
    s = "exited " + std::to_string(WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = sig == SIGKILL ? " (SIGKILL)" : sig == SIGTERM ? " (SIGTERM)" : "";
    s = "killed by signal " + std::to_string(sig) + name;
  } else {
    s = "ended (status " + std::to_string(status) + ")";
  }
  if (killed_after_timeout) s += " after it did not stop in time";
  return s;
}

Result<std::unique_ptr<NodeProcess>> NodeProcess::start(Options o) {
  // Everything the child needs is made before fork: after it only async-signal-safe calls.
  std::vector<std::string> args = {
      o.server, "--set", "http.port=0", "--set",
      "storage.data_dir=" + nlohmann::json(o.data_dir).dump()};  // JSON: any path
  for (const auto& s : o.sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  if (access(o.server.c_str(), X_OK) != 0)
    return make_error(Errc::io_error, os_error(("cannot run server '" + o.server + "'").c_str()));
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return make_error(Errc::io_error, os_error("pipe"));
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return make_error(Errc::io_error, os_error("fork"));
  }
  if (pid == 0) {
    setpgid(0, 0);  // a terminal's Ctrl-C is the runner's to handle: it stops the node itself
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the runner died before prctl
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);

  std::unique_ptr<NodeProcess> n(new NodeProcess());
  n->pid_ = pid;
  n->out_fd_ = fds[0];
  n->echo_ = std::move(o.echo);
  n->drainer_ = std::thread([p = n.get()] { p->drain(); });

  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(o.start_timeout_s));
  bool listening = false, ended = false;
  {
    std::unique_lock lock(n->mu_);
    n->cv_.wait_until(lock, deadline, [&] { return n->port_ != 0 || n->eof_; });
    listening = n->port_ != 0;
    ended = n->eof_;
  }
  if (listening) return n;
  std::string why = ended ? "the node ended before it listened"
                          : "the node did not listen within " +
                                std::to_string(static_cast<int>(o.start_timeout_s)) + " s";
  Exit e = n->kill();
  return make_error(Errc::io_error,
                    why + " (" + e.text() + "); its output:\n" + n->output_tail(kTailLines));
}

NodeProcess::~NodeProcess() {
  if (pid_ > 0) kill();
  if (drainer_.joinable()) drainer_.join();
  if (out_fd_ >= 0) close(out_fd_);
}

void NodeProcess::drain() {
  std::string pending;
  char buf[4096];
  for (;;) {
    ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (echo_) echo_(line);
      std::lock_guard lock(mu_);
      if (port_ == 0) {
        auto at = line.find(kListening);
        if (at != std::string::npos) {
          port_ = static_cast<std::uint16_t>(std::atoi(line.c_str() + at + kListening.size()));
          cv_.notify_all();
        }
      }
      tail_.push_back(std::move(line));
      if (tail_.size() > kTailLines) tail_.pop_front();
    }
  }
  std::lock_guard lock(mu_);
  if (!pending.empty()) tail_.push_back(pending);
  eof_ = true;
  cv_.notify_all();
}

NodeProcess::Exit NodeProcess::wait_exit(double timeout_s) {
  Exit e;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    pid_t r = waitpid(pid_, &e.status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &e.status, 0);
      e.killed_after_timeout = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a bounded wait
  }
  pid_ = -1;
  // The pipe closes with the process: the drain thread ends with it.
  if (drainer_.joinable()) drainer_.join();
  return e;
}

std::optional<NodeProcess::Exit> NodeProcess::exited(double within_s) {
  if (pid_ <= 0) return std::nullopt;
  Exit e;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(within_s);
  while (waitpid(pid_, &e.status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  if (drainer_.joinable()) drainer_.join();
  return e;
}

NodeProcess::Exit NodeProcess::stop(double timeout_s) {
  if (pid_ <= 0) return {};
  ::kill(pid_, SIGTERM);
  return wait_exit(timeout_s);
}

NodeProcess::Exit NodeProcess::kill() {
  if (pid_ <= 0) return {};
  ::kill(pid_, SIGKILL);
  return wait_exit(20);
}

std::string NodeProcess::output_tail(std::size_t lines) const {
  std::lock_guard lock(mu_);
  std::string out;
  std::size_t from = tail_.size() > lines ? tail_.size() - lines : 0;
  for (std::size_t i = from; i < tail_.size(); ++i) out += "  | " + tail_[i] + "\n";
  return out;
}

}  // namespace tickdb::scenario
