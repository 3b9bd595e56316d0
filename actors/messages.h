// The messages the actors of one node exchange, and their typed interfaces.
//
// Calls travel as CallRequest (messages_fwd.h). These are in-process messages
// (CAF_ALLOW_UNSAFE_MESSAGE_TYPE): they never cross nodes.
#pragma once

#include <caf/all.hpp>
#include <functional>
#include <latch>
#include <memory>

#include "actors/messages_fwd.h"

// ThreadSanitizer cannot see the synchronization inside libcaf_core (not built with it), so
// a message handed from sender to receiver looks like a race to it. In TSan builds a send
// releases, and the receiving handler acquires, a sync object of the receiving actor (by
// actor id): the hand-over CAF performs, made visible, and nothing more. Elsewhere no-ops.
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
namespace tickdb::detail {
inline char tsan_mailbox[4096];
}
#define TICKDB_MAILBOX_SEND(actor_id) __tsan_release(&::tickdb::detail::tsan_mailbox[(actor_id) % 4096])
#define TICKDB_MAILBOX_RECEIVE(self) __tsan_acquire(&::tickdb::detail::tsan_mailbox[(self)->id() % 4096])
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

// Counted down by each table actor once it holds (see txn_actor.h).
using HoldLatch = std::shared_ptr<std::latch>;

// One table's write path (table_actor.h).
// stop_atom: answer what is queued, then quit.
using table_actor = caf::typed_actor<caf::reacts_to<call_atom, CallRequest>, caf::reacts_to<flush_atom>,
                                     caf::reacts_to<hold_atom, HoldLatch>, caf::reacts_to<release_atom>,
                                     caf::reacts_to<stop_atom>>;
// The transaction executor (txn_actor.h).
using txn_actor = caf::typed_actor<caf::reacts_to<call_atom, CallRequest>, caf::reacts_to<flush_atom>,
                                   caf::reacts_to<stop_atom>>;

}  // namespace tickdb

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tickdb::CallRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tickdb::HoldLatch)
