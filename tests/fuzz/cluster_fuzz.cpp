// Fuzz target: the cluster messages a peer can send (actors/cluster_messages.h), read as CAF's
// middleman reads them off the wire (caf::binary_deserializer over our inspect functions),
// and the forwarded requests among them served as a peer's forward is served
// (Router::serve_forwarded: a local request, answered with a ForwardReply).
//
// Input: one byte choosing the message (PeerHello, ForwardRequest, ForwardReply,
// ForwardBatch, ReplyBatch), then its serialized bytes. A message that deserializes must
// serialize back to bytes that deserialize to the same message. Every forwarded request
// (at most 4 a batch) must be answered, once, within 10 s, with a status in 100..599 and, for
// JSON, a body that parses.
//
// Not reached here: the node actor's handlers of hellos and reply pieces (learn, complete in
// actors/cluster.cpp) run inside the actor and need a connected peer; see docs/fuzzing.md.
#include <caf/all.hpp>

#include "actors/cluster_messages.h"
#include "tests/fuzz/fuzz_node.h"

using namespace tickdb;

namespace {

template <class T>
bool read(const char* p, std::size_t n, T& x) {
  caf::binary_deserializer src(static_cast<caf::execution_unit*>(nullptr), p, n);
  return !src(x);
}

template <class T>
std::vector<char> write(T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink(static_cast<caf::execution_unit*>(nullptr), buf);
  if (auto err = sink(x)) fuzz::fail("a message read does not serialize");
  return buf;
}

// Deserialize, serialize, deserialize: the same bytes again.
template <class T>
std::optional<T> round_trip(const char* p, std::size_t n) {
  T x;
  if (!read(p, n, x)) return std::nullopt;
  std::vector<char> once = write(x);
  T y;
  TICKDB_FUZZ_CHECK(read(once.data(), once.size(), y), "its own bytes do not deserialize");
  TICKDB_FUZZ_CHECK(write(y) == once, "the round trip changed the message");
  return x;
}

void serve(ForwardRequest req) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<ForwardReply> rep;
  };
  auto w = std::make_shared<Wait>();
  const std::string what = req.method.substr(0, 20) + " " + req.target.substr(0, 200);
  fuzz::node().router->serve_forwarded(std::move(req), [w](ForwardReply r) {
    std::lock_guard lk(w->mu);
    if (w->rep) fuzz::fail("answered twice");
    w->rep = std::move(r);
    w->cv.notify_all();
  });
  std::unique_lock lk(w->mu);
  if (!w->cv.wait_for(lk, std::chrono::seconds(10), [&] { return w->rep.has_value(); }))
    fuzz::fail("no answer within 10 s: " + what);
  const ForwardReply& r = *w->rep;
  TICKDB_FUZZ_CHECK(r.status >= 100 && r.status <= 599, what);
  TICKDB_FUZZ_CHECK(r.headers.size() % 2 == 0, "headers are name, value pairs");
  if (r.content_type == "application/json" && !r.body.empty())
    TICKDB_FUZZ_CHECK(parse_json(r.body, 1000).is_ok(), what + ": " + r.body.substr(0, 200));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::node();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const char* p = reinterpret_cast<const char*>(data) + 1;
  const std::size_t n = size - 1;
  switch (data[0] % 5) {
    case 0:
      (void)round_trip<PeerHello>(p, n);
      break;
    case 1:
      if (auto r = round_trip<ForwardRequest>(p, n)) serve(std::move(*r));
      break;
    case 2:
      (void)round_trip<ForwardReply>(p, n);
      break;
    case 3:
      if (auto b = round_trip<ForwardBatch>(p, n)) {
        for (std::size_t i = 0; i < b->requests.size() && i < 4; ++i)
          serve(std::move(b->requests[i]));
      }
      break;
    case 4:
      (void)round_trip<ReplyBatch>(p, n);
      break;
  }
  fuzz::reset();
  return 0;
}

// Seeds: TICKDB_FUZZ_WRITE_SEEDS=DIR cluster_fuzz writes one message of each kind.
namespace {
void write_seed(const std::string& path, char kind, const std::vector<char>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fuzz::fail("cannot write " + path);
  std::fputc(kind, f);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}
[[maybe_unused]] const bool seeds_written = [] {
  const char* dir = std::getenv("TICKDB_FUZZ_WRITE_SEEDS");
  if (!dir) return false;
  const std::string d = dir;
  PeerHello h{"tickdb", "n2", "127.0.0.1:8081", "127.0.0.1:9001",
              42,       3,    {"t", "p"},       {"127.0.0.1:9002"}};
  write_seed(d + "/hello", 0, write(h));
  ForwardRequest get{
      "GET", "/table/t/records?limit=2&filter=i32%3E0", "", "", {"idempotency-key", "k"}, "n2"};
  write_seed(d + "/forward-get", 1, write(get));
  ForwardRequest post{"POST", "/table/t/record", R"({"i32":5,"s":"x"})", "Bearer x", {}, "n2"};
  write_seed(d + "/forward-post", 1, write(post));
  ForwardReply rep{201, R"({"id":1})", "application/json", {"X-Tickdb-Node", "n1"}};
  write_seed(d + "/reply", 2, write(rep));
  ForwardRequest rpc{
      "POST",
      "/rpc",
      R"({"jsonrpc":"2.0","id":1,"method":"db.insert","params":{"table":"t","values":{}}})",
      "",
      {},
      "n3"};
  ForwardBatch batch{{1, 2}, {post, rpc}};
  write_seed(d + "/batch", 3, write(batch));
  ReplyBatch rb{{1}, {rep}};
  write_seed(d + "/reply-batch", 4, write(rb));
  std::exit(0);
}();
}  // namespace
