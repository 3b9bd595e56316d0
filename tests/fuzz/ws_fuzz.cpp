// Fuzz target: WebSocket client frames and subscription ops (GET /ws: http/ws_session.h and
// http/subscription_hub.h), end to end over loopback TCP: the target accepts a connection,
// hands it to start_websocket as the HTTP session does after an upgrade request, and plays
// the client with a plain socket: it reads the 101, writes the input's frames, then a close
// frame, and reads what the node sends until the node closes.
//
// Input: client messages, one a line, each sent as one masked text frame ({"op":
// "subscribe", ...}, "unsubscribe", "ping", "auth", or anything). A first line "AUTH" makes
// the node require a token ("tok"), so the auth op is fuzzed too; a first line "RAW" sends
// the rest as raw bytes after the handshake (Beast's frame parser, fragments, control
// frames). What the node sends must be well-formed: text frames of JSON objects whose first
// member is "type", and a close code of API.md; the session must close within 10 s of the
// client's close (in RAW mode, of its close and FIN: raw bytes may hide the close frame in a
// frame they never finish). The node itself drops a session that has not finished closing
// 3 s after its close frame (http/ws_session.cpp).
//
// libFuzzer's -timeout arms SIGALRM every timeout/2+1 s with no SA_RESTART, so a blocking
// call of the fuzzing thread returns EINTR when the alarm lands in it: every socket call here
// retries on EINTR against its own deadline (before, such an alarm read as "the session did
// not close within 10 s", though the node's bytes came a moment later, and as "connect").
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "http/ws_session.h"
#include "tests/fuzz/fuzz_node.h"

using namespace tickdb;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

struct Loop {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> guard{ioc.get_executor()};
  tcp::acceptor acceptor{ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)};
  std::thread th{[this] { ioc.run(); }};
  Config open_cfg, token_cfg;
};
Loop* loop = nullptr;  // never destroyed (its thread runs to the end)

// When a session stalls: whether the I/O thread still runs handlers, the live sessions, and
// every thread's stack (gdb, when installed), so the report says what waits on what.
void explain_stall() {
  auto ran = std::make_shared<std::atomic<bool>>(false);
  net::post(loop->ioc, [ran] { ran->store(true); });
  for (int i = 0; i < 100 && !ran->load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::fprintf(stderr, "the I/O thread %s\n",
               ran->load() ? "runs handlers" : "ran nothing for 1 s: it is blocked");
  std::fprintf(stderr, "%s\n", describe_websocket_sessions().c_str());
  const std::string cmd = "command -v gdb >/dev/null && gdb -p " + std::to_string(::getpid()) +
                          " -batch -ex 'thread apply all bt 25' 2>/dev/null | grep -E "
                          "'^Thread|^#' | head -300 >&2";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "(no thread stacks)\n");
}

void put_frame(std::string& out, unsigned opcode, std::string_view payload) {
  out += static_cast<char>(0x80 | opcode);
  const std::size_t n = payload.size();
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int s = 56; s >= 0; s -= 8) out += static_cast<char>((n >> s) & 0xff);
  }
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  out.append(reinterpret_cast<const char*>(mask), 4);
  for (std::size_t i = 0; i < n; ++i) out += static_cast<char>(payload[i] ^ mask[i % 4]);
}

using Clock = std::chrono::steady_clock;

// Waits until fd is ready for `events` or the deadline passes (false then); signals do not
// cut the wait short.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) fuzz::fail(std::string("poll: ") + std::strerror(errno));
  }
}

// One recv that waits at most until the deadline: the bytes read, 0 at the node's FIN, -1
// with errno (ETIMEDOUT when the deadline passed first).
ssize_t recv_by(int fd, char* buf, std::size_t n, Clock::time_point deadline) {
  for (;;) {
    if (!wait_for(fd, POLLIN, deadline)) {
      errno = ETIMEDOUT;
      return -1;
    }
    const ssize_t r = ::recv(fd, buf, n, MSG_DONTWAIT);
    if (r >= 0 || (errno != EINTR && errno != EAGAIN)) return r;
  }
}

void connect_loopback(int fd, std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return;
  // Interrupted, the connect goes on in the kernel: wait for it and read its outcome.
  if (errno != EINTR) fuzz::fail(std::string("connect: ") + std::strerror(errno));
  if (!wait_for(fd, POLLOUT, Clock::now() + std::chrono::seconds(10)))
    fuzz::fail("connect: not done within 10 s");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) fuzz::fail(std::string("connect: ") + std::strerror(err));
}

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t w = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;  // the node closed already (a protocol error): fine
    s.remove_prefix(static_cast<std::size_t>(w));
  }
  return true;
}

// One frame at the front of `in`, taken off it; nullopt (and `in` as it was) when the bytes
// end inside the frame.
struct Frame {
  unsigned op = 0;
  bool fin = false;
  bool masked = false;
  unsigned char mask[4] = {0, 0, 0, 0};
  std::string_view payload;  // as sent (still masked when `masked`)
};
std::optional<Frame> next_frame(std::string_view& in) {
  if (in.size() < 2) return std::nullopt;
  const auto b0 = static_cast<unsigned char>(in[0]), b1 = static_cast<unsigned char>(in[1]);
  Frame f;
  f.op = b0 & 0x0f;
  f.fin = (b0 & 0x80) != 0;
  f.masked = (b1 & 0x80) != 0;
  std::size_t n = b1 & 0x7f, at = 2;
  if (n >= 126) {
    const std::size_t len_bytes = n == 126 ? 2 : 8;
    if (in.size() < 2 + len_bytes) return std::nullopt;
    n = 0;
    for (std::size_t i = 0; i < len_bytes; ++i)
      n = (n << 8) | static_cast<unsigned char>(in[2 + i]);
    at += len_bytes;
  }
  if (f.masked) {
    if (in.size() < at + 4) return std::nullopt;
    std::memcpy(f.mask, in.data() + at, 4);
    at += 4;
  }
  if (in.size() - at < n) return std::nullopt;
  f.payload = in.substr(at, n);
  in.remove_prefix(at + n);
  return f;
}

// The close code of a close frame's payload (the first two bytes, unmasked).
int close_code(const Frame& f) {
  return (static_cast<unsigned char>(f.payload[0] ^ f.mask[0]) << 8) |
         static_cast<unsigned char>(f.payload[1] ^ f.mask[1]);
}

// The close codes of the close frames among the client's bytes (masked frames), in order:
// Beast answers a client's close by echoing its code, which RFC 6455 allows for any code from
// 3000 up (the fuzzer found 65405 echoed).
std::vector<int> client_close_codes(std::string_view in) {
  std::vector<int> codes;
  while (auto f = next_frame(in))
    if (f->op == 8 && f->payload.size() >= 2) codes.push_back(close_code(*f));
  return codes;
}

// Checks the frames the node sent (server frames: never masked); `echoable` are the close
// codes the client sent, which the node may send back.
void check_server_frames(std::string_view in, const std::vector<int>& echoable) {
  std::string message;
  while (auto f = next_frame(in)) {  // a frame cut off by the close: nothing to judge
    TICKDB_FUZZ_CHECK(!f->masked, "the node sent a masked frame");
    const unsigned op = f->op;
    const std::string_view payload = f->payload;
    if (op == 8) {
      if (payload.size() >= 2) {
        const int code = close_code(*f);
        // API.md's codes, and those of RFC 6455 7.4.1 Beast sends on protocol errors (1002,
        // 1007 bad UTF-8, 1009 too big); never the reserved 1004-1006 or other private ones.
        const bool rfc = code == 1002 || code == 1003 || (code >= 1007 && code <= 1011);
        const bool echo =
            code >= 3000 && std::find(echoable.begin(), echoable.end(), code) != echoable.end();
        TICKDB_FUZZ_CHECK(code == 1000 || code == 1001 || code == 4001 || code == 4002 ||
                              code == 4008 || code == 4029 || rfc || echo,
                          "close code " + std::to_string(code));
      }
      return;
    }
    if (op == 9 || op == 10) continue;  // ping, pong
    TICKDB_FUZZ_CHECK(op == 1 || op == 0, "the node sent opcode " + std::to_string(op));
    message.append(payload);
    if (!f->fin) continue;
    auto j = parse_json(message, 1000);
    TICKDB_FUZZ_CHECK(j.is_ok() && j->is_object(),
                      "a frame that is no JSON object: " + message.substr(0, 200));
    TICKDB_FUZZ_CHECK(message.rfind("{\"type\":\"", 0) == 0,
                      "'type' is not first: " + message.substr(0, 200));
    message.clear();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::node();
  loop = new Loop;
  loop->open_cfg = fuzz::node().cfg;
  loop->token_cfg = fuzz::node().cfg;
  loop->token_cfg.http_auth_token = "tok";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const Config* cfg = &loop->open_cfg;
  bool raw = false;
  if (in.rfind("AUTH\n", 0) == 0) {
    cfg = &loop->token_cfg;
    in.remove_prefix(5);
  } else if (in.rfind("RAW\n", 0) == 0) {
    raw = true;
    in.remove_prefix(4);
  }

  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fuzz::fail(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  connect_loopback(fd, loop->acceptor.local_endpoint().port());
  tcp::socket server(loop->ioc);
  for (boost::system::error_code ec;;) {  // the connection is queued: only a signal can wait
    loop->acceptor.accept(server, ec);
    if (!ec) break;
    if (ec != net::error::interrupted) fuzz::fail("accept: " + ec.message());
  }

  HttpRequest req{"GET", "/ws", "", "", {}};
  req.headers = {{"upgrade", "websocket"},
                 {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
                 {"sec-websocket-version", "13"},
                 {"sec-websocket-protocol", "tickdb.v1"}};
  // On the I/O thread, as the HTTP session hands over after an upgrade request: a session's
  // operations start on the thread that runs its completions (started from this thread, its
  // first write could race with the accept's completion and never go out).
  net::post(loop->ioc, [s = std::move(server), r = std::move(req), cfg]() mutable {
    start_websocket(std::move(s), std::move(r), fuzz::node().router->hub(), *cfg);
  });

  // The 101 answer.
  std::string got;
  char buf[16384];
  const auto hs_deadline = Clock::now() + std::chrono::seconds(10);
  while (got.find("\r\n\r\n") == std::string::npos) {
    ssize_t r = recv_by(fd, buf, sizeof buf, hs_deadline);
    if (r <= 0) {
      if (r < 0) std::fprintf(stderr, "recv: %s\n", std::strerror(errno));
      explain_stall();
      fuzz::fail("no handshake answer");
    }
    got.append(buf, static_cast<std::size_t>(r));
  }
  TICKDB_FUZZ_CHECK(got.rfind("HTTP/1.1 101", 0) == 0, got.substr(0, 100));
  got.erase(0, got.find("\r\n\r\n") + 4);

  std::string out;
  if (raw) {
    out.assign(in);
  } else {
    for (int n = 0; n < 32 && !in.empty(); ++n) {
      auto nl = in.find('\n');
      put_frame(out, 1, in.substr(0, nl));
      in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    }
  }
  put_frame(out, 8, std::string_view("\x03\xe8", 2));  // close 1000
  (void)write_all(fd, out);
  // Raw bytes may leave a frame unfinished, so that the close frame is payload to the node:
  // the client's FIN ends it then (a well-formed session sees the close frame first).
  if (raw) ::shutdown(fd, SHUT_WR);

  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    ssize_t r = recv_by(fd, buf, sizeof buf, deadline);
    if (r == 0) break;
    if (r < 0) {
      if (errno == ECONNRESET) break;  // the node gave up on bad bytes: a reset is a close
      if (errno != ETIMEDOUT) fuzz::fail(std::string("recv: ") + std::strerror(errno));
      // What the node sent until then, to tell a session stuck closing from one still open.
      std::string seen;
      for (unsigned char c : got.substr(0, 400)) {
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        seen += c >= 32 && c < 127 ? std::string(1, static_cast<char>(c)) : std::string(hex);
      }
      std::fprintf(stderr, "the node sent %zu bytes after the 101: %s\n", got.size(), seen.c_str());
      // This end of the connection, to hold against the session's socket (explain_stall).
      sockaddr_in self{};
      socklen_t len = sizeof self;
      tcp_info ti{};
      socklen_t tlen = sizeof ti;
      int inq = -1;
      ::ioctl(fd, SIOCINQ, &inq);
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) == 0 &&
          ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == 0)
        std::fprintf(stderr,
                     "the client: fd %d local-port %u tcp-state %u kernel-inq %d "
                     "last-data-recv-ms %u\n",
                     fd, ntohs(self.sin_port), static_cast<unsigned>(ti.tcpi_state), inq,
                     ti.tcpi_last_data_recv);
      explain_stall();
      fuzz::fail("the session did not close within 10 s of the client's close");
    }
    got.append(buf, static_cast<std::size_t>(r));
    if (Clock::now() > deadline) fuzz::fail("the session keeps sending");
  }
  ::close(fd);
  check_server_frames(got, client_close_codes(out));
  fuzz::reset();
  return 0;
}
