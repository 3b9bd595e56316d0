// The scheduler actor: the tick loop.
//
// It ticks at `rate_hz` (15..120) on absolute deadlines: deadline k is start + k periods, so
// waiting never adds drift. At each tick it runs the tick procedures that are due (each every
// `every` ticks) through the executor, one after the other, each in its own transaction, and
// waits for them: a slow tick delays the next one, which then starts at once; deadlines that
// passed meanwhile are skipped (counted), never run late in a burst. Every tick is measured
// (lateness of its start against its deadline, duration, overrun) into TickStats.
//
// It is a blocking actor on a thread of its own: before each tick it answers its mailbox (a
// new rate, stop), then sleeps until the deadline with sleep_until, so a message waits at most
// one period. A new rate takes effect from the next deadline.
//
// Thread-safety: talk to it with messages (rate_atom + double, stop_atom); the stats and the
// tick counter are safe to read from anywhere.
#pragma once

#include <atomic>

#include "actors/messages.h"
#include "actors/scheduler_actor_fwd.h"
#include "actors/tick_stats.h"

namespace tickdb {

struct SchedulerSetup {
  double rate_hz = 60;
  struct Due {
    const Callable* callable;
    TickProcedure proc;
  };
  std::vector<Due> procedures;
  txn_actor executor;
  TickStats* stats = nullptr;
  std::atomic<std::uint64_t>* ticks = nullptr;  // ticks started
};

caf::actor spawn_scheduler(caf::actor_system& sys, SchedulerSetup setup);

}  // namespace tickdb
