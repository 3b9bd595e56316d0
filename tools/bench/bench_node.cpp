#include "bench_node.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace tickdb::bench {

namespace {
using Clock = std::chrono::steady_clock;
std::vector<pid_t> g_started;  // nodes started and not stopped
}  // namespace

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(errno));
  ::close(s);
  return ntohs(a.sin_port);
}

HttpReply http(int port, const std::string& method, const std::string& target,
               const std::string& body) {
  HttpReply out;
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return out;
  timeval tv{10, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return out;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty())
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  for (std::size_t off = 0; off < req.size();) {
    ssize_t w = ::send(s, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (w <= 0) {
      ::close(s);
      return out;
    }
    off += static_cast<std::size_t>(w);
  }
  std::string resp;
  char buf[16384];
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (resp.size() < (std::size_t{64} << 20) && Clock::now() < deadline) {
    ssize_t r = ::recv(s, buf, sizeof buf, 0);
    if (r <= 0) break;
    resp.append(buf, static_cast<std::size_t>(r));
    auto head_end = resp.find("\r\n\r\n");
    if (head_end != std::string::npos) {  // stop at Content-Length, closed or not
      std::string head = resp.substr(0, head_end);
      std::transform(head.begin(), head.end(), head.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      auto cl = head.find("content-length:");
      if (cl != std::string::npos &&
          resp.size() - head_end - 4 >= std::strtoull(head.c_str() + cl + 15, nullptr, 10))
        break;
    }
  }
  ::close(s);
  auto head_end = resp.find("\r\n\r\n");
  if (resp.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) return out;
  out.status = std::atoi(resp.c_str() + 9);
  out.body = resp.substr(head_end + 4);
  return out;
}

std::string read_text(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "";
  std::string s;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && s.size() < 65536) s.append(buf, n);
  std::fclose(f);
  return s;
}

NodeProcess start_node(const std::string& server, const std::vector<std::string>& sets,
                       const std::string& log) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    NodeProcess sv;
    sv.port = free_port();
    sv.log = log;
    std::vector<std::string> args = {server, "--set", "http.port=" + std::to_string(sv.port)};
    for (const auto& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, sv.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawn(&sv.pid, server.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start " + server + ": " + std::strerror(rc));
    g_started.push_back(sv.pid);
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    bool exited = false;
    while (Clock::now() < deadline) {
      if (http(sv.port, "GET", "/health").status == 200) return sv;
      int st = 0;
      if (::waitpid(sv.pid, &st, WNOHANG) == sv.pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::erase(g_started, sv.pid);
    if (!exited) {
      ::kill(sv.pid, SIGKILL);
      ::waitpid(sv.pid, nullptr, 0);
      throw std::runtime_error("tickdb-server did not answer /health within 20 s: " +
                               read_text(sv.log));
    }
    // Exited at once: perhaps the port was taken in between; try another.
    if (attempt == 2)
      throw std::runtime_error("tickdb-server exited at start: " + read_text(sv.log));
  }
  throw std::runtime_error("unreachable");
}

int stop_node(NodeProcess& sv) {
  ::kill(sv.pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  int st = 0;
  while (Clock::now() < deadline) {
    if (::waitpid(sv.pid, &st, WNOHANG) == sv.pid) {
      std::erase(g_started, sv.pid);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("tickdb-server did not stop within 60 s of SIGTERM");
}

void kill_started_nodes() {
  for (pid_t p : g_started) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
  g_started.clear();
}

void kill_started_nodes_from_signal() {
  for (pid_t p : g_started) ::kill(p, SIGKILL);
}

std::uint64_t rss_bytes(pid_t pid) {
  const std::string s = read_text("/proc/" + std::to_string(pid) + "/status");
  const auto at = s.find("VmRSS:");
  if (at == std::string::npos) return 0;
  return std::strtoull(s.c_str() + at + 6, nullptr, 10) * 1024;
}

}  // namespace tickdb::bench
