#include "config/config.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

#include "core/json_codec.h"

namespace tickdb {

using nlohmann::json;

namespace {

Error bad(const std::string& key, const std::string& why) {
  return make_error(Errc::invalid_argument, "config key '" + key + "': " + why);
}

// The schema: section -> keys.
const std::vector<std::pair<std::string, std::vector<std::string>>>& known_keys() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> k = {
      {"node", {"name"}},
      {"http", {"address", "port", "threads", "max_body_bytes", "timeout_s", "auth_token"}},
      {"tick", {"rate_hz", "procedures"}},
      {"workers", {"count", "scheduler_policy"}},
      {"storage",
       {"data_dir", "snapshot_interval_s", "snapshot_keep", "compression_level", "durability",
        "read_visibility"}},
      {"procedures", {"modules", "timeout_ms", "max_write_bytes", "max_alloc_bytes"}},
      {"cluster",
       {"name", "address", "allow_remote", "port", "peers", "heartbeat_ms", "failure_timeout_ms",
        "request_timeout_ms", "idempotency_ttl_s", "idempotency_max_keys", "decode_threads"}},
      {"subscriptions",
       {"retain_s", "retain_bytes", "max_stall_s", "max_connections", "max_per_connection",
        "threads", "nice"}},
      {"ws", {"max_frame_bytes", "max_incoming_bytes", "ping_s"}},
      {"log", {"level"}},
  };
  return k;
}

const std::vector<std::string>* section_keys(const std::string& s) {
  for (const auto& [name, keys] : known_keys())
    if (name == s) return &keys;
  return nullptr;
}

Result<std::string> get_string(const json& v, const std::string& key) {
  if (!v.is_string()) return bad(key, "must be a string");
  return v.get<std::string>();
}

// A string naming one value of an enum (core/node_modes.h); `names` lists them for the refusal.
template <class E>
Result<E> get_named(const json& v, const std::string& key,
                    std::optional<E> (*parse)(std::string_view), const char* names) {
  auto s = get_string(v, key);
  if (!s) return s.error();
  if (auto e = parse(*s)) return *e;
  return bad(key, std::string("must be ") + names + ", it is '" + s->substr(0, 32) + "'");
}
Result<std::uint64_t> get_uint(const json& v, const std::string& key, std::uint64_t lo,
                               std::uint64_t hi) {
  if (!v.is_number_integer() ||
      (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0))
    return bad(key, "must be an integer " + std::to_string(lo) + ".." + std::to_string(hi));
  auto x = v.get<std::uint64_t>();
  if (x < lo || x > hi)
    return bad(key, "must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", it is " +
                        std::to_string(x));
  return x;
}
// get_uint for a narrower field (the range fits it).
template <class T>
Result<T> get_uint_as(const json& v, const std::string& key, std::uint64_t lo, std::uint64_t hi) {
  auto x = get_uint(v, key, lo, hi);
  if (!x) return x.error();
  return static_cast<T>(*x);
}
Result<double> get_number(const json& v, const std::string& key, double lo, double hi) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < lo ||
      v.get<double>() > hi) {
    std::ostringstream os;
    os << "must be a number " << lo << ".." << hi;
    return bad(key, os.str());
  }
  return v.get<double>();
}
Result<std::vector<std::string>> get_strings(const json& v, const std::string& key) {
  if (!v.is_array()) return bad(key, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) return bad(key, "must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

Result<Config> config_from_json(const json& j) {
  Config c;
  if (!j.is_object()) return make_error(Errc::invalid_argument, "the config must be a JSON object");
  for (const auto& [section, body] : j.items()) {
    const auto* keys = section_keys(section);
    if (!keys) return bad(section.substr(0, 64), "unknown key");
    if (!body.is_object()) return bad(section, "must be an object");
    for (const auto& [k, v] : body.items()) {
      if (std::find(keys->begin(), keys->end(), k) == keys->end())
        return bad(section + "." + k.substr(0, 64), "unknown key");
      const std::string key = section + "." + k;
#define TAKE(expr, field)       \
  do {                          \
    auto r_ = (expr);           \
    if (!r_) return r_.error(); \
    field = std::move(*r_);     \
  } while (0)
      if (key == "node.name") {
        TAKE(get_string(v, key), c.node_name);
        if (c.node_name.empty() || c.node_name.size() > 63)
          return bad(key, "must be 1..63 characters");
      } else if (key == "http.address") {
        TAKE(get_string(v, key), c.http_address);
      } else if (key == "http.port") {
        TAKE(get_uint_as<std::uint16_t>(v, key, 0, 65535), c.http_port);
      } else if (key == "http.threads") {
        TAKE(get_uint_as<unsigned>(v, key, 1, 256), c.http_threads);
      } else if (key == "http.max_body_bytes") {
        TAKE(get_uint(v, key, 1024, 1ull << 32), c.http_max_body_bytes);
      } else if (key == "http.timeout_s") {
        TAKE(get_number(v, key, 0.1, 86400), c.http_timeout_s);
      } else if (key == "http.auth_token") {
        TAKE(get_string(v, key), c.http_auth_token);
      } else if (key == "subscriptions.retain_s") {
        TAKE(get_number(v, key, 0, 3600), c.subscriptions_retain_s);
      } else if (key == "subscriptions.retain_bytes") {
        TAKE(get_uint(v, key, 0, 1ull << 40), c.subscriptions_retain_bytes);
      } else if (key == "subscriptions.max_stall_s") {
        TAKE(get_number(v, key, 0.1, 3600), c.subscriptions_max_stall_s);
      } else if (key == "subscriptions.max_connections") {
        TAKE(get_uint(v, key, 1, 1u << 20), c.subscriptions_max_connections);
      } else if (key == "subscriptions.max_per_connection") {
        TAKE(get_uint(v, key, 1, 4096), c.subscriptions_max_per_connection);
      } else if (key == "subscriptions.threads") {
        TAKE(get_uint_as<unsigned>(v, key, 1, 256), c.subscriptions_threads);
      } else if (key == "subscriptions.nice") {
        TAKE(get_uint_as<int>(v, key, 0, 19), c.subscriptions_nice);
      } else if (key == "ws.max_frame_bytes") {
        TAKE(get_uint(v, key, 4096, 1ull << 30), c.ws_max_frame_bytes);
      } else if (key == "ws.max_incoming_bytes") {
        TAKE(get_uint(v, key, 256, 1ull << 30), c.ws_max_incoming_bytes);
      } else if (key == "ws.ping_s") {
        TAKE(get_number(v, key, 0.1, 3600), c.ws_ping_s);
      } else if (key == "tick.rate_hz") {
        TAKE(get_number(v, key, 15, 120), c.tick_rate_hz);
      } else if (key == "tick.procedures") {
        if (!v.is_array())
          return bad(key, "must be an array of names or {\"name\", \"every\"?, \"params\"?}");
        for (const auto& e : v) {
          TickProcedureConfig tp;
          if (e.is_string()) {
            tp.name = e.get<std::string>();
          } else if (e.is_object()) {
            for (const auto& [pk, pv] : e.items())
              if (pk != "name" && pk != "every" && pk != "params")
                return bad(key, "unknown key '" + pk.substr(0, 64) + "' in an entry");
            if (!e.contains("name") || !e["name"].is_string())
              return bad(key, "every entry needs a string 'name'");
            tp.name = e["name"].get<std::string>();
            if (e.contains("every"))
              TAKE(get_uint(e["every"], key + ".every", 1, 1'000'000), tp.every);
            if (e.contains("params")) {
              if (!e["params"].is_object()) return bad(key, "'params' must be an object");
              tp.params = e["params"];
            }
          } else {
            return bad(key, "must be an array of names or {\"name\", \"every\"?, \"params\"?}");
          }
          c.tick_procedures.push_back(std::move(tp));
        }
      } else if (key == "workers.count") {
        TAKE(get_uint_as<unsigned>(v, key, 0, 256), c.workers_count);
      } else if (key == "workers.scheduler_policy") {
        TAKE(get_named(v, key, parse_scheduler_policy, "\"sharing\" or \"stealing\""),
             c.workers_scheduler_policy);
      } else if (key == "storage.data_dir") {
        TAKE(get_string(v, key), c.storage_data_dir);
        if (c.storage_data_dir.empty()) return bad(key, "must not be empty");
      } else if (key == "storage.snapshot_interval_s") {
        TAKE(get_number(v, key, 0, 86400 * 7), c.storage_snapshot_interval_s);
      } else if (key == "storage.snapshot_keep") {
        TAKE(get_uint_as<unsigned>(v, key, 1, 1000), c.storage_snapshot_keep);
      } else if (key == "storage.compression_level") {
        TAKE(get_uint_as<int>(v, key, 1, 19), c.storage_compression_level);
      } else if (key == "storage.durability") {
        TAKE(get_named(v, key, parse_durability, "\"sync\", \"async\" or \"snapshot\""),
             c.storage_durability);
      } else if (key == "storage.read_visibility") {
        TAKE(get_named(v, key, parse_read_visibility, "\"durable\" or \"immediate\""),
             c.storage_read_visibility);
      } else if (key == "procedures.timeout_ms") {
        TAKE(get_uint(v, key, 0, 86'400'000), c.procedures_timeout_ms);
      } else if (key == "procedures.max_write_bytes") {
        TAKE(get_uint(v, key, 0, std::uint64_t{1} << 40), c.procedures_max_write_bytes);
      } else if (key == "procedures.max_alloc_bytes") {
        TAKE(get_uint(v, key, 0, std::uint64_t{1} << 40), c.procedures_max_alloc_bytes);
      } else if (key == "procedures.modules") {
        TAKE(get_strings(v, key), c.procedures_modules);
      } else if (key == "cluster.port") {
        TAKE(get_uint_as<std::uint16_t>(v, key, 0, 65535), c.cluster_port);
      } else if (key == "cluster.peers") {
        TAKE(get_strings(v, key), c.cluster_peers);
      } else if (key == "cluster.name") {
        TAKE(get_string(v, key), c.cluster_name);
        if (c.cluster_name.empty() || c.cluster_name.size() > 64)
          return bad(key, "must be 1 to 64 characters");
      } else if (key == "cluster.address") {
        TAKE(get_string(v, key), c.cluster_address);
      } else if (key == "cluster.allow_remote") {
        if (!v.is_boolean()) return bad(key, "must be true or false");
        c.cluster_allow_remote = v.get<bool>();
      } else if (key == "cluster.heartbeat_ms") {
        TAKE(get_uint(v, key, 10, 60'000), c.cluster_heartbeat_ms);
      } else if (key == "cluster.failure_timeout_ms") {
        TAKE(get_uint(v, key, 50, 600'000), c.cluster_failure_timeout_ms);
      } else if (key == "cluster.request_timeout_ms") {
        TAKE(get_uint(v, key, 10, 3'600'000), c.cluster_request_timeout_ms);
      } else if (key == "cluster.idempotency_ttl_s") {
        TAKE(get_number(v, key, 1, 86400 * 7), c.cluster_idempotency_ttl_s);
      } else if (key == "cluster.decode_threads") {
        TAKE(get_uint_as<unsigned>(v, key, 0, 64), c.cluster_decode_threads);
      } else if (key == "cluster.idempotency_max_keys") {
        TAKE(get_uint(v, key, 1, 10'000'000), c.cluster_idempotency_max_keys);
      } else if (key == "log.level") {
        TAKE(get_string(v, key), c.log_level);
        static const char* levels[] = {"trace", "debug",    "info", "warn",
                                       "error", "critical", "off"};
        if (std::find(std::begin(levels), std::end(levels), c.log_level) == std::end(levels))
          return bad(key, "must be trace, debug, info, warn, error, critical or off");
      }
#undef TAKE
    }
  }
  // The middleman does not authenticate: another address than loopback is an explicit choice.
  if (c.cluster_address != "127.0.0.1" && c.cluster_address != "::1" &&
      c.cluster_address != "localhost" && !c.cluster_allow_remote)
    return bad("cluster.address",
               "'" + c.cluster_address.substr(0, 64) +
                   "' is not loopback: the cluster port is unauthenticated, so this needs "
                   "\"cluster.allow_remote\": true (see docs/operations.md)");
  return c;
}

json Config::to_json() const {
  json tp = json::array();
  for (const auto& t : tick_procedures)
    tp.push_back({{"name", t.name}, {"every", t.every}, {"params", t.params}});
  return {{"node", {{"name", node_name}}},
          {"http",
           {{"address", http_address},
            {"port", http_port},
            {"threads", http_threads},
            {"max_body_bytes", http_max_body_bytes},
            {"timeout_s", http_timeout_s},
            {"auth_token", http_auth_token.empty() ? "" : "(set)"}}},
          {"tick", {{"rate_hz", tick_rate_hz}, {"procedures", tp}}},
          {"workers",
           {{"count", workers_count}, {"scheduler_policy", to_string(workers_scheduler_policy)}}},
          {"storage",
           {{"data_dir", storage_data_dir},
            {"snapshot_interval_s", storage_snapshot_interval_s},
            {"snapshot_keep", storage_snapshot_keep},
            {"compression_level", storage_compression_level},
            {"durability", to_string(storage_durability)},
            {"read_visibility", to_string(storage_read_visibility)}}},
          {"procedures",
           {{"modules", procedures_modules},
            {"timeout_ms", procedures_timeout_ms},
            {"max_write_bytes", procedures_max_write_bytes},
            {"max_alloc_bytes", procedures_max_alloc_bytes}}},
          {"cluster",
           {{"name", cluster_name},
            {"address", cluster_address},
            {"allow_remote", cluster_allow_remote},
            {"port", cluster_port},
            {"peers", cluster_peers},
            {"heartbeat_ms", cluster_heartbeat_ms},
            {"failure_timeout_ms", cluster_failure_timeout_ms},
            {"request_timeout_ms", cluster_request_timeout_ms},
            {"idempotency_ttl_s", cluster_idempotency_ttl_s},
            {"idempotency_max_keys", cluster_idempotency_max_keys},
            {"decode_threads", cluster_decode_threads}}},
          {"subscriptions",
           {{"retain_s", subscriptions_retain_s},
            {"retain_bytes", subscriptions_retain_bytes},
            {"max_stall_s", subscriptions_max_stall_s},
            {"max_connections", subscriptions_max_connections},
            {"max_per_connection", subscriptions_max_per_connection},
            {"threads", subscriptions_threads},
            {"nice", subscriptions_nice}}},
          {"ws",
           {{"max_frame_bytes", ws_max_frame_bytes},
            {"max_incoming_bytes", ws_max_incoming_bytes},
            {"ping_s", ws_ping_s}}},
          {"log", {{"level", log_level}}}};
}

Result<json> read_config_file(const std::string& path) {
  // stdio rather than a stream: a failed read (a directory, EIO) must not pass as an empty file.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f)
    return make_error(Errc::io_error,
                      "cannot open config file '" + path + "': " + std::strerror(errno));
  std::string text;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f.get())) text.append(buf, n);
  if (std::ferror(f.get()))
    return make_error(Errc::io_error,
                      "cannot read config file '" + path + "': " + std::strerror(errno));
  auto j = parse_json(text);
  if (!j) return make_error(j.code(), "config file '" + path + "': " + j.message());
  return j;
}

Status apply_override(json& j, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    return make_error(Errc::invalid_argument,
                      "--set '" + assignment.substr(0, 80) + "': expected key=value");
  std::string key = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  auto dot = key.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == key.size() ||
      key.find('.', dot + 1) != std::string::npos)
    return make_error(Errc::invalid_argument,
                      "--set '" + key.substr(0, 80) + "': the key must be section.name");
  json v = json::parse(value, nullptr, false);
  if (v.is_discarded()) v = value;  // not JSON: a plain string
  if (!j.is_object()) j = json::object();
  auto& section = j[key.substr(0, dot)];
  if (!section.is_object()) section = json::object();
  section[key.substr(dot + 1)] = std::move(v);
  return {};
}

}  // namespace tickdb
