// CallRequest without CAF: what the commit path (database.h) and the actors share.
#pragma once

#include <functional>
#include <memory>

#include "actors/procedures.h"
#include "core/commit_log.h"

namespace tickdb {

// The way back to a caller: send() hands it its answer, once. A request that dies unanswered
// (the node stopped with it still in a mailbox) answers node_unavailable, so no caller ever
// waits forever.
class ReplyTo {
 public:
  explicit ReplyTo(std::function<void(Result<json>)> fn) : fn_(std::move(fn)) {}
  ReplyTo(const ReplyTo&) = delete;
  ReplyTo& operator=(const ReplyTo&) = delete;
  ~ReplyTo() {
    send(Result<json>(make_error(Errc::node_unavailable, "the node stopped before answering")));
  }
  void send(Result<json> r) noexcept {
    if (!fn_) return;
    auto fn = std::move(fn_);
    fn_ = nullptr;
    try {
      fn(std::move(r));
    } catch (...) {
      // The caller's own callback failed: its problem, never the answering actor's.
    }
  }

 private:
  std::function<void(Result<json>)> fn_;
};

// A call on its way to the actor that runs it: the callable (a pointer into the node's
// Registry, which outlives every actor), its params, the tick it runs in (0 outside the tick
// loop), and where the answer goes (called on the actor's thread). A callable made for one
// call (Runtime::run_async) travels with the request in `owned`. A call made under an
// Idempotency-Key carries its `key` (actors/idempotency_ledger.h) into the log and the ledger.
struct CallRequest {
  const Callable* callable = nullptr;
  json params;
  std::uint64_t tick = 0;
  double tick_dt = 0.0;
  std::shared_ptr<ReplyTo> reply;
  std::shared_ptr<const Callable> owned;
  CallKey key;
};

}  // namespace tickdb
