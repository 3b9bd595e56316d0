// post_after_this_round: lets work wait until an I/O thread has run the handlers that are
// ready now, so that what they produce can leave together (the cluster batches forwarded
// calls this way: the requests one round of a thread parsed go to their owner in one message).
//
// Thread-safety: call it from any thread; only an HTTP I/O thread (server.cpp) defers.
#pragma once

#include <functional>

namespace tickdb {

// Runs `fn` on this I/O thread after the handlers ready now, and says true; on any other
// thread it does nothing and says false (the caller runs `fn` itself).
bool post_after_this_round(std::function<void()> fn);

}  // namespace tickdb
