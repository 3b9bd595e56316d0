// ForwardTable: the forwarded calls of this node that wait for their owner's answer, and the
// per-peer counts of forwarded calls (issue 11's metrics).
//
// A call is opened by the HTTP thread that forwards it (Cluster::forward), then ends exactly
// once: with its owner's answer (given in one or more pieces, on the thread that receives
// them: CAF's middleman), with 504 node_timeout past its deadline (expire, the node actor's
// sweep) or when its peer went down (fail_peer), or with 503 node_unavailable when the node
// stops (fail_all, or the table's destruction). No thread between the HTTP session and the
// peer: that hop was most of what forwarding cost (docs/benchmarks.md, cluster_bench).
//
// Owned by Cluster::Impl. Thread-safety: every method is safe from any thread; the answers
// are given outside the table's lock, so an answer may call back into the table.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/cluster.h"
#include "core/status.h"

namespace tickdb {

// The answer of a call that did not reach its owner or got none: the error body of API.md,
// with Retry-After for node_unavailable.
ForwardReply forward_error_reply(Errc code, const std::string& message);

class ForwardTable {
 public:
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(ForwardReply)>;

  struct Counts {
    std::uint64_t forwarded = 0, timeouts = 0, unavailable = 0;
    std::vector<std::pair<int, std::uint64_t>> answered;  // by status, ascending
  };

  ForwardTable() = default;
  ForwardTable(const ForwardTable&) = delete;
  ForwardTable& operator=(const ForwardTable&) = delete;
  ~ForwardTable();  // fail_all

  // A call sent to `peer` (its cluster address; `node`, its name, for messages): its id.
  std::uint64_t open(const std::string& peer, const std::string& node, Clock::time_point deadline,
                     Done done);
  // A piece of a call's answer: the n-th, the last one or not. The last piece answers the
  // call; a piece out of order answers 504 (the answer cannot be trusted). A call that is not
  // open (answered already, or expired) is ignored.
  void piece(std::uint64_t call, std::uint32_t n, bool last, ForwardReply part);
  // Every call past its deadline answers 504; `timeout_ms` is named in the message.
  void expire(Clock::time_point now, std::int64_t timeout_ms);
  // Every call of `peer` answers 504: it went down (`why`) with the call in flight.
  void fail_peer(const std::string& peer, const std::string& why);
  // Every call answers 503: the node stops. Calls opened afterwards stay open.
  void fail_all(const std::string& why);
  // A call for `peer` answered 503 before it was sent (the peer is known to be down).
  void count_unavailable(const std::string& peer);

  Counts counts(const std::string& peer) const;
  std::size_t open_calls() const;

 private:
  struct Call {
    std::string peer, node;
    Clock::time_point deadline;
    Done done;
    ForwardReply reply;
    std::uint32_t next_piece = 0;
  };
  struct PeerCounts {
    std::uint64_t forwarded = 0, timeouts = 0, unavailable = 0;
    std::map<int, std::uint64_t> answered;
  };
  using Ended = std::vector<std::pair<Done, ForwardReply>>;
  // Moves every call `pick` chooses out of the table, answered by `reply(call)`, counting it
  // as `status`.
  template <class Pick, class Reply>
  Ended take(Pick pick, Reply reply, int status, bool timeout);
  static void give(Ended ended);

  mutable std::mutex mu_;
  std::uint64_t next_ = 1;
  std::unordered_map<std::uint64_t, Call> calls_;
  std::map<std::string, PeerCounts, std::less<>> counts_;
};

}  // namespace tickdb
