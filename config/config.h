// Config: the node's settings (DESIGN.md "Config"), read from one JSON file and `--set`
// overrides. Every key is optional with a default; unknown keys and bad values are refused
// with a message that names the key.
//
//   {"node": {"name"}, "http": {"address", "port", "threads", "max_body_bytes", "timeout_s",
//    "auth_token"}, "tick": {"rate_hz", "procedures"}, "workers": {"count", "scheduler_policy"},
//    "storage": {"data_dir", "snapshot_interval_s", "snapshot_keep", "compression_level",
//    "durability", "read_visibility"}, "procedures": {"modules", "timeout_ms",
//    "max_write_bytes", "max_alloc_bytes"}, "cluster": {"name", "address", "allow_remote",
//    "port", "peers", "heartbeat_ms", "failure_timeout_ms", "request_timeout_ms",
//    "idempotency_ttl_s", "idempotency_max_keys", "decode_threads"}, "subscriptions": {"retain_s",
//    "retain_bytes", "max_stall_s", "max_connections", "max_per_connection", "threads",
//    "nice"}, "ws":
//    {"max_frame_bytes", "max_incoming_bytes", "ping_s"}, "log": {"level"}}
//
// Thread-safety: a plain value.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/node_modes.h"
#include "core/status.h"

namespace tickdb {

struct TickProcedureConfig {
  std::string name;
  std::uint64_t every = 1;
  nlohmann::json params = nlohmann::json::object();
};

struct Config {
  std::string node_name = "tickdb";
  std::string http_address = "127.0.0.1";
  std::uint16_t http_port = 8080;
  unsigned http_threads = 2;
  std::uint64_t http_max_body_bytes = 16ull << 20;
  double http_timeout_s = 30;
  std::string http_auth_token;  // empty: no auth
  double tick_rate_hz = 60;
  std::vector<TickProcedureConfig> tick_procedures;
  unsigned workers_count = 0;  // 0: one per core
  SchedulerPolicy workers_scheduler_policy = SchedulerPolicy::sharing;
  std::string storage_data_dir = "./data";
  double storage_snapshot_interval_s = 60;
  unsigned storage_snapshot_keep = 3;
  int storage_compression_level = 1;
  Durability storage_durability = Durability::sync;
  ReadVisibility storage_read_visibility = ReadVisibility::durable;
  std::vector<std::string> procedures_modules;
  // A procedure call past this is stopped and rolled back (0: no limit).
  std::uint64_t procedures_timeout_ms = 10'000;
  // ... and so is one that would write more bytes of records than this (0: no limit).
  std::uint64_t procedures_max_write_bytes = std::uint64_t{1} << 30;
  // ... and so is one that holds more heap memory than this (0: no limit; counted only by a
  // release tickdb-server: actors/alloc_budget.h).
  std::uint64_t procedures_max_alloc_bytes = std::uint64_t{1} << 30;
  std::string cluster_name = "tickdb";        // CAF's app identifier: other clusters are refused
  std::string cluster_address = "127.0.0.1";  // where the cluster port listens
  bool cluster_allow_remote = false;          // needed for any address but loopback
  std::uint16_t cluster_port = 0;             // 0: no cluster
  std::vector<std::string> cluster_peers;     // "host:port" seeds
  std::uint64_t cluster_heartbeat_ms = 250;
  std::uint64_t cluster_failure_timeout_ms = 1000;
  std::uint64_t cluster_request_timeout_ms = 2000;
  // A write with an Idempotency-Key is answered from its first answer for this long ...
  double cluster_idempotency_ttl_s = 300;
  std::uint64_t cluster_idempotency_max_keys = 100'000;  // ... for at most this many keys
  // CAF's middleman.workers: threads that decode messages from peers. 0: the middleman's own
  // thread decodes them and hands them over at once (one thread hop less per message; on two
  // cores forwarded GETs went 0.39-0.40x -> 0.44-0.47x of direct ones: docs/benchmarks.md).
  unsigned cluster_decode_threads = 0;
  // Live subscriptions (API.md): versions kept for resumes, how long a client may stall,
  // connections, subscriptions per connection, frame limits, WebSocket pings.
  double subscriptions_retain_s = 10;
  // Past this many bytes of chunks held only by retained versions (an estimate: the chunks a
  // version does not share with the one before it), the oldest are dropped early.
  std::uint64_t subscriptions_retain_bytes = 64ull << 20;
  double subscriptions_max_stall_s = 30;
  std::uint64_t subscriptions_max_connections = 1024;
  std::uint64_t subscriptions_max_per_connection = 64;
  // WebSocket and SSE connections run on their own I/O threads, this many, at this nice value
  // (0..19, above the node's other threads): streaming megabytes of deltas per tick must not
  // take the CPU from the tick and the actors that make the deltas (docs/benchmarks.md,
  // subscriptions), nor from the request/response threads.
  unsigned subscriptions_threads = 2;
  int subscriptions_nice = 10;
  std::uint64_t ws_max_frame_bytes = 1ull << 20;
  std::uint64_t ws_max_incoming_bytes = 64ull << 10;
  double ws_ping_s = 15;
  std::string log_level = "info";

  // The whole config as JSON (every key, defaults included).
  nlohmann::json to_json() const;
};

// Builds a config from JSON over the defaults: invalid_argument naming the key. Enumerated
// values (storage.durability, workers.scheduler_policy) are parsed here, once.
Result<Config> config_from_json(const nlohmann::json& j);
// Reads a config file: io_error naming the file and the OS error when it cannot be read,
// bad_json naming the file when it is not JSON.
Result<nlohmann::json> read_config_file(const std::string& path);
// Applies "a.b=value" to a config JSON: the value is parsed as JSON when it is JSON, else
// taken as a string ("http.port=9090", "http.address=0.0.0.0", "tick.procedures=[\"step\"]").
Status apply_override(nlohmann::json& j, const std::string& assignment);

}  // namespace tickdb
