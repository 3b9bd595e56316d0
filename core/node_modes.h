// The two ways of running a node that the config chooses by name: how writes are made
// durable (storage.durability) and how CAF schedules the actors (workers.scheduler_policy).
//
// They live here, the lowest layer, because the layers that act on them (actors/persistence,
// actors/runtime) and the one that parses them (config/) must not include each other. The
// names are parsed once, by config/; everything after works with the enums. Each to_string
// is for display (logs, /stats, the config as JSON) only.
//
// Thread-safety: constants and pure functions.
#pragma once

#include <optional>
#include <string_view>

namespace tickdb {

// storage.durability (README "Durability", actors/persistence.h):
//   sync      a write is answered once its commit log entry is fsynced (group commit);
//   async     answered at once, the log is written and fsynced every async_flush_s;
//   snapshot  no log: what was written after the last snapshot is lost in a crash.
enum class Durability { sync, async, snapshot };

// CAF's scheduler (actors/runtime.cpp): work sharing (one shared queue) or work stealing.
enum class SchedulerPolicy { sharing, stealing };

constexpr std::string_view to_string(Durability d) {
  switch (d) {
    case Durability::sync:
      return "sync";
    case Durability::async:
      return "async";
    case Durability::snapshot:
      return "snapshot";
  }
  return "sync";
}

constexpr std::string_view to_string(SchedulerPolicy p) {
  switch (p) {
    case SchedulerPolicy::sharing:
      return "sharing";
    case SchedulerPolicy::stealing:
      return "stealing";
  }
  return "sharing";
}

// nullopt for any other name (the caller names the key in its refusal).
constexpr std::optional<Durability> parse_durability(std::string_view s) {
  for (auto d : {Durability::sync, Durability::async, Durability::snapshot})
    if (s == to_string(d)) return d;
  return std::nullopt;
}

constexpr std::optional<SchedulerPolicy> parse_scheduler_policy(std::string_view s) {
  for (auto p : {SchedulerPolicy::sharing, SchedulerPolicy::stealing})
    if (s == to_string(p)) return p;
  return std::nullopt;
}

}  // namespace tickdb
