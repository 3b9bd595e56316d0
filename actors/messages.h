// The messages the actors of one node exchange, and their typed interfaces.
//
// Calls travel as CallRequest (messages_fwd.h). These are in-process messages
// (CAF_ALLOW_UNSAFE_MESSAGE_TYPE): they never cross nodes.
#pragma once

#include <caf/all.hpp>
#include <functional>
#include <latch>
#include <memory>
#include <vector>

#include "actors/messages_fwd.h"

// ThreadSanitizer cannot see the synchronization inside libcaf_core (not built with it), so
// a message handed from sender to receiver, or an actor's state handed from one scheduler
// thread to the next, looks like a race to it. In TSan builds a send releases a sync object
// of the receiving actor (by actor id), and each handler acquires it on entry and releases it
// on exit: the orderings CAF guarantees, made visible, and nothing more. Elsewhere no-ops.
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
namespace tickdb::detail {
inline char tsan_mailbox[4096];
}
namespace tickdb::detail {
// A handler acquires what senders (and the actor's earlier handlers, maybe on another
// thread) released, and releases what it did for the actor's next handler.
struct TsanHandler {
  void* sync;
  explicit TsanHandler(void* s) : sync(s) { __tsan_acquire(sync); }
  ~TsanHandler() { __tsan_release(sync); }
};
}  // namespace tickdb::detail
#define TICKDB_MAILBOX_SEND(actor_id) __tsan_release(&::tickdb::detail::tsan_mailbox[(actor_id) % 4096])
#define TICKDB_MAILBOX_RECEIVE(self) \
  ::tickdb::detail::TsanHandler tickdb_tsan_handler_(&::tickdb::detail::tsan_mailbox[(self)->id() % 4096])
#else
#define TICKDB_MAILBOX_SEND(actor_id) ((void)0)
#define TICKDB_MAILBOX_RECEIVE(self) ((void)0)
#endif

namespace tickdb {

// caf::anon_send, with the hand-over made visible to ThreadSanitizer.
template <class Dest, class... Ts>
void post(const Dest& dest, Ts&&... xs) {
  TICKDB_MAILBOX_SEND(dest.id());
  caf::anon_send(dest, std::forward<Ts>(xs)...);
}

using call_atom = caf::atom_constant<caf::atom("call")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using work_atom = caf::atom_constant<caf::atom("work")>;
using rate_atom = caf::atom_constant<caf::atom("rate")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;

// A hold request to one table actor (see txn_actor.h): it counts the executor's latch down
// once the actor holds, or when the message dies undelivered (the actor is gone, and a gone
// actor publishes nothing), so the executor never waits for ever.
class HoldTicket {
 public:
  explicit HoldTicket(std::shared_ptr<std::latch> l) : latch_(std::move(l)) {}
  HoldTicket(const HoldTicket&) = delete;
  HoldTicket& operator=(const HoldTicket&) = delete;
  ~HoldTicket() { arrive(); }
  void arrive() {
    if (latch_) latch_->count_down();
    latch_ = nullptr;
  }

 private:
  std::shared_ptr<std::latch> latch_;
};
using HoldLatch = std::shared_ptr<HoldTicket>;

// A table actor that keeps losing to concurrent writes hands its batch to the executor (and
// holds itself until the executor releases it).
struct Handoff {
  std::vector<CallRequest> calls;
};

// One table's write path (table_actor.h).
// stop_atom: answer what is queued, then quit.
using table_actor = caf::typed_actor<caf::reacts_to<call_atom, CallRequest>, caf::reacts_to<flush_atom>,
                                     caf::reacts_to<hold_atom, HoldLatch>, caf::reacts_to<release_atom>,
                                     caf::reacts_to<stop_atom>>;
using handoff_atom = caf::atom_constant<caf::atom("handoff")>;
// The transaction executor (txn_actor.h).
using txn_actor = caf::typed_actor<caf::reacts_to<call_atom, CallRequest>, caf::reacts_to<flush_atom>,
                                   caf::reacts_to<handoff_atom, Handoff, table_actor>, caf::reacts_to<stop_atom>>;

}  // namespace tickdb

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tickdb::CallRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tickdb::HoldLatch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tickdb::Handoff)
