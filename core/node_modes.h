// The ways of running a node that the config chooses by name: how writes are made durable
// (storage.durability), when readers see them (storage.read_visibility) and how CAF
// schedules the actors (workers.scheduler_policy).
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

// storage.read_visibility (actors/database.h, docs/operations.md "Read visibility"):
//   durable    readers see a version once its commit log entry is on disk (confirmed reads),
//              so nothing a reader saw can be taken back by a crash;
//   immediate  readers see a version as soon as it is published, before it is on disk: a
//              crash before the fsync takes back writes a reader may have seen.
// With durability "snapshot" there is no log to wait for: reads are immediate.
enum class ReadVisibility { durable, immediate };

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

constexpr std::string_view to_string(ReadVisibility v) {
  return v == ReadVisibility::immediate ? "immediate" : "durable";
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

constexpr std::optional<ReadVisibility> parse_read_visibility(std::string_view s) {
  for (auto v : {ReadVisibility::durable, ReadVisibility::immediate})
    if (s == to_string(v)) return v;
  return std::nullopt;
}

constexpr std::optional<SchedulerPolicy> parse_scheduler_policy(std::string_view s) {
  for (auto p : {SchedulerPolicy::sharing, SchedulerPolicy::stealing})
    if (s == to_string(p)) return p;
  return std::nullopt;
}

}  // namespace tickdb
