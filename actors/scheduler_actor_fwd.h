// The tick loop's configuration, without CAF (see scheduler_actor.h).
#pragma once

#include <string>

#include "actors/procedures.h"

namespace tickdb {

// A procedure the tick loop runs (tick.procedures).
struct TickProcedure {
  std::string name;
  std::uint64_t every = 1;       // runs at ticks every, 2*every, ... (>= 1)
  json params = json::object();  // "dt" defaults to the tick period in seconds
};

// tick.rate_hz must be 15..120.
bool valid_tick_rate(double hz);

}  // namespace tickdb
