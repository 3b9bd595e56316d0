#include "ws_fanin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace tickdb::bench {

struct WsFanIn::Conn {
  int fd = -1;
  bool upgraded = false, paused = false, closed = false;
  std::string handshake;  // the upgrade answer, until its end
  // The frame being read: its header (2..14 bytes), what is left of its payload, and the
  // first bytes of the current message (the head that is looked at).
  unsigned char hdr[14];
  std::size_t hdr_have = 0, hdr_need = 2;
  std::uint64_t payload_left = 0;
  int opcode = 0;  // of the current frame
  bool fin = false;
  int msg_opcode = 0;  // of the current message (text, binary; continuations keep it)
  std::string head;    // at most kHead bytes of the message (of a control frame: all)
  std::uint64_t version = 0;
  bool have_version = false;
  bool ready_seen = false;
};

namespace {

constexpr std::size_t kHead = 96;

void send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  int spins = 0;
  while (off < s.size() && spins < 100000) {
    ssize_t w = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<std::size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      ++spins;
    } else {
      return;
    }
  }
}

// A masked client frame (RFC 6455 5.3: clients mask every frame).
std::string client_frame(int opcode, const std::string& payload) {
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  const std::size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 0xff);
  }
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  for (unsigned char m : mask) f += static_cast<char>(m);
  for (std::size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
  return f;
}

// The number after the last `key` in s (a frame's own members come after nested ones: the
// sorted members of ready put "version" after "schema", which has members of its own).
bool number_after(const std::string& s, const char* key, std::uint64_t& out) {
  const auto at = s.rfind(key);
  if (at == std::string::npos) return false;
  out = std::strtoull(s.c_str() + at + std::strlen(key), nullptr, 10);
  return true;
}

}  // namespace

WsFanIn::WsFanIn(int port, std::size_t n, std::string subscribe, int nice)
    : port_(port), n_(n), subscribe_(std::move(subscribe)), nice_(nice) {}

WsFanIn::~WsFanIn() {
  stop();
}

void WsFanIn::start() {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Protocol: tickdb.v1\r\n\r\n";
  for (std::size_t i = 0; i < n_; ++i) {
    auto c = std::make_unique<Conn>();
    c->fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    if (c->fd < 0 || ::connect(c->fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connection " + std::to_string(i) + ": " + std::strerror(errno));
    int one = 1;
    ::setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    send_all(c->fd, upgrade);
    int fl = 1;
    ::ioctl(c->fd, FIONBIO, &fl);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, c->fd, &ev) != 0)
      throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
    conns_.push_back(std::move(c));
  }
  thread_ = std::thread([this] { run(); });
}

void WsFanIn::pause(std::size_t i) {
  pause_.store(static_cast<long>(i));
}

void WsFanIn::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  for (auto& c : conns_)
    if (c->fd >= 0) {
      ::close(c->fd);
      c->fd = -1;
    }
  conns_.clear();
  if (epoll_ >= 0) ::close(epoll_);
  epoll_ = -1;
}

WsFanIn::Stats WsFanIn::stats() const {
  Stats s;
  s.upgraded = c_.upgraded.load();
  s.ready = c_.ready.load();
  s.deltas = c_.deltas.load();
  s.progress = c_.progress.load();
  s.frames = c_.frames.load();
  s.bytes = c_.bytes.load();
  s.chain_breaks = c_.chain_breaks.load();
  s.closed = c_.closed.load();
  s.errors = c_.errors.load();
  s.resets = c_.resets.load();
  return s;
}

void WsFanIn::on_message(Conn& c) {
  c_.frames.fetch_add(1, std::memory_order_relaxed);
  const std::string& h = c.head;
  auto is = [&](const char* type) {
    return h.compare(0, 9, "{\"type\":\"") == 0 && h.compare(9, std::strlen(type), type) == 0 &&
           h.size() > 9 + std::strlen(type) && h[9 + std::strlen(type)] == '"';
  };
  std::uint64_t v = 0;
  if (is("delta")) {
    c_.deltas.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t from = 0, to = 0;
    if (!number_after(h, "\"from\":", from) || !number_after(h, "\"to\":", to)) {
      c_.errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!c.have_version || from != c.version)
      c_.chain_breaks.fetch_add(1, std::memory_order_relaxed);
    c.version = to;
    c.have_version = true;
  } else if (is("ready")) {
    if (!c.ready_seen) c_.ready.fetch_add(1, std::memory_order_relaxed);
    c.ready_seen = true;
    if (number_after(h, "\"version\":", v)) c.version = v, c.have_version = true;
  } else if (is("progress") || is("hello")) {
    if (is("progress")) c_.progress.fetch_add(1, std::memory_order_relaxed);
    if (number_after(h, "\"version\":", v)) c.version = v, c.have_version = true;
  } else if (is("reset")) {
    c_.resets.fetch_add(1, std::memory_order_relaxed);
  } else if (is("error") || is("ended")) {
    c_.errors.fetch_add(1, std::memory_order_relaxed);
  }
}

void WsFanIn::run() {
  // Linux: the nice value of one thread (setpriority on its tid); raising it needs no rights.
  if (nice_ != 0) ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice_);
  std::vector<char> buf(256 * 1024);
  std::vector<epoll_event> evs(256);
  while (!stop_.load(std::memory_order_relaxed)) {
    if (long p = pause_.exchange(-1); p >= 0 && static_cast<std::size_t>(p) < conns_.size()) {
      Conn& c = *conns_[static_cast<std::size_t>(p)];
      c.paused = true;
      ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    }
    const int n = ::epoll_wait(epoll_, evs.data(), static_cast<int>(evs.size()), 50);
    for (int e = 0; e < n; ++e) {
      Conn& c = *conns_[evs[static_cast<std::size_t>(e)].data.u64];
      if (c.paused || c.closed) continue;
      const ssize_t r = ::recv(c.fd, buf.data(), buf.size(), 0);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        c.closed = true;
        c_.closed.fetch_add(1, std::memory_order_relaxed);
        ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
        continue;
      }
      if (r < 0) continue;
      c_.bytes.fetch_add(static_cast<std::uint64_t>(r), std::memory_order_relaxed);
      const char* p = buf.data();
      std::size_t left = static_cast<std::size_t>(r);
      if (!c.upgraded) {
        c.handshake.append(p, left);
        const auto end = c.handshake.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        if (c.handshake.compare(0, 12, "HTTP/1.1 101") != 0) {
          c_.errors.fetch_add(1, std::memory_order_relaxed);
          c.closed = true;
          ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
          continue;
        }
        c.upgraded = true;
        c_.upgraded.fetch_add(1, std::memory_order_relaxed);
        send_all(c.fd, client_frame(1, subscribe_));
        // What came after the answer's head is already frames.
        const std::size_t rest = c.handshake.size() - (end + 4);
        p = buf.data() + (left - rest);
        left = rest;
        c.handshake.clear();
      }
      while (left > 0) {
        if (c.payload_left == 0 && c.hdr_have < c.hdr_need) {
          const std::size_t k = std::min(left, c.hdr_need - c.hdr_have);
          std::memcpy(c.hdr + c.hdr_have, p, k);
          c.hdr_have += k;
          p += k;
          left -= k;
          if (c.hdr_have == 2) {
            const unsigned len7 = c.hdr[1] & 0x7f;
            c.hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((c.hdr[1] & 0x80) ? 4 : 0);
          }
          if (c.hdr_have < c.hdr_need) continue;
          c.fin = (c.hdr[0] & 0x80) != 0;
          c.opcode = c.hdr[0] & 0x0f;
          const unsigned len7 = c.hdr[1] & 0x7f;
          std::uint64_t len = len7;
          if (len7 == 126) len = (std::uint64_t{c.hdr[2]} << 8) | c.hdr[3];
          if (len7 == 127) {
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | c.hdr[2 + i];
          }
          if (c.opcode != 0 && c.opcode < 8) {
            c.msg_opcode = c.opcode;
            c.head.clear();
          }
          if (c.opcode >= 8) c.head.clear();
          c.payload_left = len;
          if (len > 0) continue;
        }
        if (c.payload_left > 0) {
          const std::size_t k =
              static_cast<std::size_t>(std::min<std::uint64_t>(left, c.payload_left));
          const std::size_t cap = c.opcode >= 8 ? 125 : kHead;
          std::size_t took = 0;
          if (c.head.size() < cap) {
            took = std::min(k, cap - c.head.size());
            c.head.append(p, took);
          }
          // hello and ready carry their version after other members: read them whole.
          const bool whole = c.opcode < 8 && c.head.size() >= 15 &&
                             (c.head.compare(0, 15, "{\"type\":\"ready\"") == 0 ||
                              c.head.compare(0, 15, "{\"type\":\"hello\"") == 0);
          if (whole && c.head.size() < 65536)
            c.head.append(p + took, std::min(k - took, 65536 - c.head.size()));
          p += k;
          left -= k;
          c.payload_left -= k;
          if (c.payload_left > 0) continue;
        }
        // A whole frame.
        c.hdr_have = 0;
        c.hdr_need = 2;
        if (c.opcode == 9) {
          send_all(c.fd, client_frame(10, c.head));
        } else if (c.opcode == 8) {
          c.closed = true;
          c_.closed.fetch_add(1, std::memory_order_relaxed);
          ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
          break;
        } else if (c.opcode < 8 && c.fin && c.msg_opcode == 1) {
          on_message(c);
        }
      }
    }
  }
}

}  // namespace tickdb::bench
