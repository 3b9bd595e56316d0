// The forwarded calls waiting for their owner's answer: each ends exactly once, with the
// owner's answer (whole or in pieces), a 504 past its deadline or when its peer went down, or a
// 503 when the node stops; and the per-peer counts of the metrics follow.
#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "actors/forward_table.h"

using namespace tickdb;
using Clock = ForwardTable::Clock;

namespace {
struct Got {
  int calls = 0;
  ForwardReply last;
  ForwardTable::Done done() {
    return [this](ForwardReply r) {
      ++calls;
      last = std::move(r);
    };
  }
  std::string code() const {
    return nlohmann::json::parse(last.body)["error"]["code"].get<std::string>();
  }
  std::string message() const {
    return nlohmann::json::parse(last.body)["error"]["message"].get<std::string>();
  }
};

ForwardReply reply(int status, std::string body) {
  ForwardReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

const auto later = Clock::now() + std::chrono::hours(1);
}  // namespace

TEST_CASE("a call ends once, with its owner's answer", "[forward-table]") {
  ForwardTable t;
  Got g;
  const auto id = t.open("127.0.0.1:1", "b", later, g.done());
  CHECK(t.open_calls() == 1);
  ForwardReply r = reply(200, "{\"id\":1}");
  r.headers = {"X-Tickdb-Version", "7"};
  t.piece(id, 0, true, r);
  CHECK(g.calls == 1);
  CHECK(g.last.status == 200);
  CHECK(g.last.body == "{\"id\":1}");
  CHECK(g.last.headers == std::vector<std::string>{"X-Tickdb-Version", "7"});
  CHECK(t.open_calls() == 0);
  // Late or repeated answers of a call that ended change nothing.
  t.piece(id, 0, true, reply(500, "x"));
  t.expire(later + std::chrono::hours(1), 10);
  t.fail_all("stop");
  CHECK(g.calls == 1);
  auto c = t.counts("127.0.0.1:1");
  CHECK(c.forwarded == 1);
  CHECK(c.timeouts == 0);
  CHECK(c.answered == std::vector<std::pair<int, std::uint64_t>>{{200, 1}});
  CHECK(t.counts("elsewhere").forwarded == 0);
}

TEST_CASE("an answer in pieces is put together; a piece out of order is a 504", "[forward-table]") {
  ForwardTable t;
  Got whole, broken;
  const auto a = t.open("p", "b", later, whole.done());
  const auto b = t.open("p", "b", later, broken.done());
  CHECK(a != b);
  ForwardReply first = reply(200, "abc");
  first.content_type = "text/plain; version=0.0.4";
  t.piece(a, 0, false, first);
  t.piece(b, 0, false, reply(200, "xyz"));
  t.piece(a, 1, false, reply(0, "def"));
  CHECK(whole.calls == 0);
  t.piece(a, 2, true, reply(0, "g"));
  CHECK(whole.calls == 1);
  CHECK(whole.last.status == 200);
  CHECK(whole.last.body == "abcdefg");
  CHECK(whole.last.content_type == "text/plain; version=0.0.4");
  // Piece 1 lost: piece 2 cannot be trusted.
  t.piece(b, 2, true, reply(0, "!"));
  CHECK(broken.calls == 1);
  CHECK(broken.last.status == 504);
  CHECK(broken.code() == "node_timeout");
  CHECK(broken.message() == "the answer of node 'b' came incomplete");
  CHECK(t.open_calls() == 0);
  CHECK(t.counts("p").answered == std::vector<std::pair<int, std::uint64_t>>{{200, 1}, {504, 1}});
}

TEST_CASE("calls past their deadline answer 504; the others wait", "[forward-table]") {
  ForwardTable t;
  const auto now = Clock::now();
  Got due, early, due2;
  t.open("p", "b", now - std::chrono::milliseconds(1), due.done());
  const auto e = t.open("p", "b", now + std::chrono::seconds(5), early.done());
  t.open("q", "c", now, due2.done());
  t.expire(now, 2000);
  CHECK(due.calls == 1);
  CHECK(due.last.status == 504);
  CHECK(due.code() == "node_timeout");
  CHECK(due.message() ==
        "node 'b' did not answer within cluster.request_timeout_ms (2000); the outcome is "
        "unknown");
  CHECK(due2.calls == 1);
  CHECK(due2.message().find("node 'c'") == 0);
  CHECK(early.calls == 0);
  CHECK(t.open_calls() == 1);
  t.piece(e, 0, true, reply(201, "{}"));
  CHECK(early.calls == 1);
  CHECK(early.last.status == 201);
  auto c = t.counts("p");
  CHECK(c.forwarded == 2);
  CHECK(c.timeouts == 1);
  CHECK(c.answered == std::vector<std::pair<int, std::uint64_t>>{{201, 1}, {504, 1}});
}

TEST_CASE("a peer that goes down ends its calls with 504, not the others'", "[forward-table]") {
  ForwardTable t;
  Got p1, p2, q1;
  t.open("p", "b", later, p1.done());
  t.open("p", "b", later, p2.done());
  const auto q = t.open("q", "c", later, q1.done());
  t.fail_peer("p", "connection lost");
  CHECK(p1.calls == 1);
  CHECK(p2.calls == 1);
  CHECK(p1.last.status == 504);
  CHECK(p1.message() ==
        "node 'b' went down (connection lost) with the call in flight; the outcome is unknown");
  CHECK(q1.calls == 0);
  t.piece(q, 0, true, reply(200, "{}"));
  CHECK(q1.calls == 1);
  CHECK(t.counts("p").timeouts == 2);
  CHECK(t.counts("q").timeouts == 0);
}

TEST_CASE("the node stopping answers every call 503 with Retry-After; so does the table's end",
          "[forward-table]") {
  Got a, b;
  {
    ForwardTable t;
    t.open("p", "b", later, a.done());
    t.fail_all("the node stopped before the answer came");
    CHECK(a.calls == 1);
    CHECK(a.last.status == 503);
    CHECK(a.code() == "node_unavailable");
    CHECK(a.last.headers == std::vector<std::string>{"Retry-After", "1"});
    CHECK(t.counts("p").answered.empty());  // not an answer of the peer
    t.open("p", "b", later, b.done());      // a call after the stop stays open ...
    CHECK(b.calls == 0);
  }
  // ... until the table goes.
  CHECK(b.calls == 1);
  CHECK(b.last.status == 503);
  CHECK(b.message() == "the node stopped before the answer came");
}

TEST_CASE("calls answered 503 before they were sent are counted", "[forward-table]") {
  ForwardTable t;
  t.count_unavailable("p");
  t.count_unavailable("p");
  auto c = t.counts("p");
  CHECK(c.unavailable == 2);
  CHECK(c.forwarded == 0);
  CHECK(c.answered == std::vector<std::pair<int, std::uint64_t>>{{503, 2}});
}

TEST_CASE("an answer may use the table: it is given outside the lock", "[forward-table]") {
  ForwardTable t;
  Got retried;
  std::uint64_t second = 0;
  const auto first = t.open("p", "b", later, [&](ForwardReply) {
    second = t.open("p", "b", later, retried.done());  // a retry, from the answer
    t.fail_peer("q", "x");
  });
  t.piece(first, 0, true, reply(404, "{}"));
  REQUIRE(second != 0);
  CHECK(t.open_calls() == 1);
  t.piece(second, 0, true, reply(200, "{}"));
  CHECK(retried.calls == 1);
}

TEST_CASE("calls opened, answered and expired from many threads end exactly once",
          "[forward-table]") {
  ForwardTable t;
  constexpr int kThreads = 4, kCalls = 2000;
  std::atomic<int> ended{0}, twice{0};
  std::vector<std::thread> ts;
  for (int k = 0; k < kThreads; ++k)
    ts.emplace_back([&, k] {
      for (int i = 0; i < kCalls; ++i) {
        auto once = std::make_shared<std::atomic<bool>>(false);
        // Every third call is already due: the sweeper may end it before its answer.
        const auto deadline = i % 3 ? later : Clock::now();
        const auto id = t.open(k % 2 ? "p" : "q", "b", deadline, [&, once](ForwardReply) {
          if (once->exchange(true)) ++twice;
          ++ended;
        });
        t.piece(id, 0, true, reply(200, "{}"));
      }
    });
  std::atomic<bool> stop{false};
  std::thread sweeper([&] {
    while (!stop) t.expire(Clock::now(), 1);
  });
  for (auto& th : ts) th.join();
  stop = true;
  sweeper.join();
  CHECK(ended == kThreads * kCalls);
  CHECK(twice == 0);
  CHECK(t.open_calls() == 0);
  const auto p = t.counts("p"), q = t.counts("q");
  CHECK(p.forwarded + q.forwarded == std::uint64_t{kThreads * kCalls});
  std::uint64_t answered = 0;
  for (const auto& c : {p, q})
    for (const auto& [status, n] : c.answered) answered += n;
  CHECK(answered == std::uint64_t{kThreads * kCalls});
}
