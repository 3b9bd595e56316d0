#include "actors/scheduler_actor.h"

#include <chrono>
#include <thread>

namespace tickdb {

bool valid_tick_rate(double hz) {
  return hz >= 15.0 && hz <= 120.0;
}

namespace {

using Clock = std::chrono::steady_clock;

Clock::duration period_of(double hz) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / hz));
}

// Runs one tick procedure through the executor and waits for its answer.
void run_procedure(const SchedulerSetup& s, const SchedulerSetup::Due& d, std::uint64_t tick,
                   double dt) {
  auto latch = std::make_shared<std::latch>(1);
  auto result = std::make_shared<Result<json>>(json());
  CallRequest req;
  req.callable = d.callable;
  req.params = d.proc.params;
  req.tick = tick;
  req.tick_dt = dt;
  req.reply = std::make_shared<ReplyTo>([latch, result](Result<json> r) {
    *result = std::move(r);
    latch->count_down();
  });
  post(s.executor, call_atom::value, std::move(req));
  latch->wait();
  if (!result->is_ok())
    s.stats->record_error("tick " + std::to_string(tick) + ": " + d.proc.name + ": " +
                          std::string(errc_name(result->error().code)) + ": " +
                          result->error().message);
}

void scheduler_loop(caf::blocking_actor* self, SchedulerSetup s) {
  double hz = s.rate_hz;
  Clock::duration period = period_of(hz);
  s.stats->set_rate(hz);
  Clock::time_point deadline = Clock::now() + period;
  std::uint64_t tick = 0;
  bool running = true;
  auto answer_queued = [&] {
    self->receive(
        [&](rate_atom, double new_hz) {
          TICKDB_MAILBOX_RECEIVE(self);
          if (!valid_tick_rate(new_hz)) return;
          deadline +=
              period_of(new_hz) - period;  // the next deadline: one new period after the last
          hz = new_hz;
          period = period_of(hz);
          s.stats->set_rate(hz);
        },
        [&](stop_atom) {
          TICKDB_MAILBOX_RECEIVE(self);
          running = false;
        },
        caf::after(std::chrono::microseconds(1)) >> [] {});
  };
  while (running) {
    // Answer what is queued (a stop, a new rate), then sleep to the deadline: the same
    // sleep_until as a bare loop (a timed receive() waits on a condition variable and came
    // out later, measured), so a message waits at most one period.
    while (running && !self->mailbox().empty()) {
      answer_queued();
    }
    if (!running) break;
    std::this_thread::sleep_until(deadline);

    const Clock::time_point start = Clock::now();
    ++tick;
    s.ticks->store(tick, std::memory_order_relaxed);
    const double dt = 1.0 / hz;
    for (const auto& d : s.procedures)
      if (tick % d.proc.every == 0) run_procedure(s, d, tick, dt);
    const Clock::time_point end = Clock::now();

    Clock::time_point next = deadline + period;
    std::uint64_t skipped = 0;
    const bool overrun = end > next;
    if (overrun) {
      // Run the next tick at once, but never the ones whose deadlines passed meanwhile.
      skipped = static_cast<std::uint64_t>((end - next) / period);
      next += period * static_cast<std::int64_t>(skipped);
    }
    s.stats->record(std::chrono::duration_cast<std::chrono::nanoseconds>(start - deadline).count(),
                    std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count(),
                    overrun, skipped);
    deadline = next;
  }
}

}  // namespace

caf::actor spawn_scheduler(caf::actor_system& sys, SchedulerSetup setup) {
  return sys.spawn<caf::detached>(scheduler_loop, std::move(setup));
}

}  // namespace tickdb
