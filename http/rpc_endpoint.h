// RpcEndpoint: `POST /rpc`, JSON-RPC 2.0 as API.md gives it: single calls, batches,
// notifications, the error codes (-32700 .. -32603, -32000 with the REST code in data).
//
// A db.transaction whose ops are all db.insert takes the fast path (http/fast_txn.h: read
// straight into records, answered from them); anything it does not take, and any run that
// gives up, goes the general way. A batch that nlohmann cannot read as a whole because one
// call holds a value out of range (say 1e400) is read call by call, so that call answers its
// own error and the others still run.
//
// Thread-safety: handle() from many threads at once.
#pragma once

#include <atomic>
#include <cstdint>

#include "actors/cluster.h"
#include "actors/runtime.h"
#include "http/message.h"

namespace tickdb {

struct RpcBatch;

class RpcEndpoint {
 public:
  explicit RpcEndpoint(Runtime& rt) : rt_(&rt) {}
  void handle(const HttpRequest& req, Done done);

  // Calls for tables of other nodes are forwarded to them (any time).
  void set_cluster(Cluster* c) { cluster_.store(c, std::memory_order_release); }

  std::uint64_t fast_transactions() const { return fast_txns_.load(std::memory_order_relaxed); }
  std::uint64_t fast_fallbacks() const { return fast_fallbacks_.load(std::memory_order_relaxed); }
  // Forwarded calls retried after the node said it no longer owns a table.
  std::uint64_t retried() const { return retried_.load(std::memory_order_relaxed); }

 private:
  // `forwarded`: the body was sent here by a peer.
  void general(const std::string& body, bool forwarded, Done done);

  // Runs call `i` of the batch here or on its table's node. `refreshed`: the directory was
  // refreshed for it already (a node said it was not the owner): no second retry.
  // `forwarded`: a peer sent it here: it is not sent on again.
  void dispatch(const std::shared_ptr<RpcBatch>& b, std::size_t i, json id, bool notification,
                const std::string& method, json params, bool refreshed, bool forwarded);
  // Sends call `i` to `node` and answers it with what comes back (503/504 as the call's error).
  void forward_call(const std::shared_ptr<RpcBatch>& b, std::size_t i, json id, bool notification,
                    const std::string& method, json params, const std::string& node,
                    bool refreshed);

  // The other node a call must go to ("" for this one); invalid_argument when its tables
  // live on two nodes.
  Result<std::string> remote_owner(const std::string& method, const json& params) const;

  Runtime* rt_;
  std::atomic<Cluster*> cluster_{nullptr};
  std::atomic<std::uint64_t> retried_{0};
  std::atomic<std::uint64_t> fast_txns_{0};  // db.transaction calls answered by the fast path
  std::atomic<std::uint64_t> fast_fallbacks_{
      0};  // fast runs that left the answer to the general path
};

}  // namespace tickdb
