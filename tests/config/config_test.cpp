// The config: defaults, every key read, unknown keys and bad values refused naming the key.
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>

#include "config/config.h"

using namespace tickdb;
using nlohmann::json;

TEST_CASE("no config at all gives the documented defaults", "[config]") {
  auto c = config_from_json(json::object());
  REQUIRE(c.is_ok());
  CHECK(c->http_address == "127.0.0.1");
  CHECK(c->http_port == 8080);
  CHECK(c->http_max_body_bytes == 16u << 20);
  CHECK(c->tick_rate_hz == 60);
  CHECK(c->storage_data_dir == "./data");
  CHECK(c->http_auth_token.empty());
  CHECK(c->subscriptions_threads == 2);
  CHECK(c->subscriptions_nice == 10);
}

TEST_CASE("every key is read", "[config]") {
  json j = json::parse(
      R"({"node": {"name": "n1"}, "http": {"address": "0.0.0.0", "port": 9090, "threads": 4,
    "max_body_bytes": 4096, "timeout_s": 5, "auth_token": "t"}, "tick": {"rate_hz": 120,
    "procedures": ["step", {"name": "other", "every": 3, "params": {"k": 1}}]}, "workers": {"count": 3},
    "storage": {"data_dir": "/tmp/x", "snapshot_interval_s": 10, "snapshot_keep": 5, "compression_level": 3,
    "durability": "sync"}, "procedures": {"modules": ["a.so"]}, "cluster": {"port": 7000, "peers": ["h:1"]},
    "subscriptions": {"threads": 3, "nice": 0}, "log": {"level": "debug"}})");
  auto c = config_from_json(j);
  INFO((c ? "" : c.message()));
  REQUIRE(c.is_ok());
  CHECK(c->node_name == "n1");
  CHECK(c->http_port == 9090);
  CHECK(c->http_threads == 4);
  CHECK(c->tick_procedures.size() == 2);
  CHECK(c->tick_procedures[1].every == 3);
  CHECK(c->tick_procedures[1].params["k"] == 1);
  CHECK(c->workers_count == 3);
  CHECK(c->storage_durability == Durability::sync);
  CHECK(c->workers_scheduler_policy == SchedulerPolicy::sharing);  // the default
  CHECK(c->procedures_modules == std::vector<std::string>{"a.so"});
  CHECK(c->cluster_peers == std::vector<std::string>{"h:1"});
  CHECK(c->subscriptions_threads == 3);
  CHECK(c->subscriptions_nice == 0);
  CHECK(c->to_json()["subscriptions"]["nice"] == 0);
  CHECK(c->to_json()["http"]["auth_token"] == "(set)");  // never printed
}

TEST_CASE("unknown keys and bad values are refused naming the key", "[config]") {
  for (auto [text, key] : std::vector<std::pair<const char*, const char*>>{
           {R"({"htp": {}})", "htp"},
           {R"({"http": {"prot": 1}})", "http.prot"},
           {R"({"http": {"port": 70000}})", "http.port"},
           {R"({"http": {"port": -1}})", "http.port"},
           {R"({"http": {"port": "80"}})", "http.port"},
           {R"({"http": {"threads": 0}})", "http.threads"},
           {R"({"tick": {"rate_hz": 14}})", "tick.rate_hz"},
           {R"({"tick": {"rate_hz": 121}})", "tick.rate_hz"},
           {R"({"tick": {"procedures": [{"name": "x", "every": 0}]}})", "tick.procedures.every"},
           {R"({"tick": {"procedures": [{"nam": "x"}]}})", "tick.procedures"},
           {R"({"storage": {"durability": "maybe"}})", "storage.durability"},
           {R"({"storage": {"durability": "SYNC"}})", "storage.durability"},
           {R"({"storage": {"durability": 1}})", "storage.durability"},
           {R"({"storage": {"read_visibility": "dirty"}})", "storage.read_visibility"},
           {R"({"storage": {"read_visibility": true}})", "storage.read_visibility"},
           {R"({"workers": {"scheduler_policy": "fifo"}})", "workers.scheduler_policy"},
           {R"({"storage": {"compression_level": 30}})", "storage.compression_level"},
           {R"({"procedures": {"modules": "a.so"}})", "procedures.modules"},
           {R"({"procedures": {"timeout_ms": -1}})", "procedures.timeout_ms"},
           {R"({"procedures": {"timeout_ms": "5s"}})", "procedures.timeout_ms"},
           {R"({"procedures": {"max_write_bytes": 1.5}})", "procedures.max_write_bytes"},
           {R"({"log": {"level": "loud"}})", "log.level"},
           {R"({"subscriptions": {"nice": 20}})", "subscriptions.nice"},
           {R"({"subscriptions": {"nice": -1}})", "subscriptions.nice"},
           {R"({"subscriptions": {"threads": 0}})", "subscriptions.threads"},
           {R"({"http": 5})", "http"},
       }) {
    auto c = config_from_json(json::parse(text));
    INFO(text);
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.code() == Errc::invalid_argument);
    CHECK(c.message().find(std::string("'") + key + "'") != std::string::npos);
  }
  CHECK_FALSE(config_from_json(json::array()).is_ok());
}

TEST_CASE("set overrides (key=value) parse JSON values and take other text as strings",
          "[config]") {
  json j = json::object();
  REQUIRE(apply_override(j, "http.port=9091").is_ok());
  REQUIRE(apply_override(j, "http.address=0.0.0.0").is_ok());
  REQUIRE(apply_override(j, "tick.procedures=[\"step\"]").is_ok());
  CHECK(j["http"]["port"] == 9091);
  CHECK(j["http"]["address"] == "0.0.0.0");
  auto c = config_from_json(j);
  REQUIRE(c.is_ok());
  CHECK(c->tick_procedures[0].name == "step");
  CHECK_FALSE(apply_override(j, "noequals").is_ok());
  CHECK_FALSE(apply_override(j, "nodot=1").is_ok());
  CHECK_FALSE(apply_override(j, "a.b.c=1").is_ok());
}

TEST_CASE("a config file that cannot be read is io_error naming it and the OS error", "[config]") {
  auto r = read_config_file("/nonexistent/x.json");
  CHECK(r.code() == Errc::io_error);
  CHECK(r.message().find("/nonexistent/x.json") != std::string::npos);
  CHECK(r.message().find(std::strerror(ENOENT)) != std::string::npos);
  auto d = read_config_file(TICKDB_SOURCE_DIR "/config");  // a directory: opens, cannot be read
  CHECK(d.code() == Errc::io_error);
}

TEST_CASE("durability and the scheduler policy are parsed once into enums and shown by name",
          "[config]") {
  for (auto [text, d] :
       std::vector<std::pair<const char*, Durability>>{{"sync", Durability::sync},
                                                       {"async", Durability::async},
                                                       {"snapshot", Durability::snapshot}}) {
    auto c = config_from_json(json{{"storage", {{"durability", text}}}});
    REQUIRE(c.is_ok());
    CHECK(c->storage_durability == d);
    CHECK(c->to_json()["storage"]["durability"] == text);
  }
  // Reads see only what is on disk unless told otherwise; procedures are bounded.
  auto dflt = config_from_json(json::object());
  REQUIRE(dflt.is_ok());
  CHECK(dflt->procedures_timeout_ms == 10'000);
  CHECK(dflt->procedures_max_write_bytes == std::uint64_t{1} << 30);
  CHECK(config_from_json(json{{"procedures", {{"timeout_ms", 0}}}})->procedures_timeout_ms == 0);
  CHECK(dflt->storage_read_visibility == ReadVisibility::durable);
  CHECK(dflt->to_json()["storage"]["read_visibility"] == "durable");
  auto imm = config_from_json(json{{"storage", {{"read_visibility", "immediate"}}}});
  REQUIRE(imm.is_ok());
  CHECK(imm->storage_read_visibility == ReadVisibility::immediate);
  CHECK(imm->to_json()["storage"]["read_visibility"] == "immediate");
  auto c = config_from_json(json{{"workers", {{"scheduler_policy", "stealing"}}}});
  REQUIRE(c.is_ok());
  CHECK(c->workers_scheduler_policy == SchedulerPolicy::stealing);
  CHECK(c->to_json()["workers"]["scheduler_policy"] == "stealing");
  auto bad = config_from_json(json{{"storage", {{"durability", "fast"}}}});
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.message().find("'storage.durability'") != std::string::npos);
  CHECK(bad.message().find("fast") != std::string::npos);
}

TEST_CASE("the shipped config files are valid", "[config]") {
  for (const char* f :
       {TICKDB_SOURCE_DIR "/config/tickdb.json", TICKDB_SOURCE_DIR "/config/game.json"}) {
    auto j = read_config_file(f);
    INFO(f << ": " << (j ? "" : j.message()));
    REQUIRE(j.is_ok());
    auto c = config_from_json(*j);
    INFO((c ? "" : c.message()));
    CHECK(c.is_ok());
  }
}

TEST_CASE("cluster keys: defaults, ranges, and a non-loopback address only when allowed",
          "[config]") {
  auto d = config_from_json(json::object());
  REQUIRE(d.is_ok());
  CHECK(d->cluster_name == "tickdb");
  CHECK(d->cluster_address == "127.0.0.1");
  CHECK(d->cluster_heartbeat_ms == 250);
  CHECK(d->cluster_failure_timeout_ms == 1000);
  CHECK(d->cluster_request_timeout_ms == 2000);
  CHECK(d->cluster_idempotency_ttl_s == 300);
  CHECK(d->cluster_decode_threads == 0);
  auto threads = config_from_json(json{{"cluster", {{"decode_threads", 2}}}});
  REQUIRE(threads.is_ok());
  CHECK(threads->cluster_decode_threads == 2);
  CHECK(threads->to_json()["cluster"]["decode_threads"] == 2);
  auto many = config_from_json(json{{"cluster", {{"decode_threads", 65}}}});
  REQUIRE_FALSE(many.is_ok());
  CHECK(many.message().find("'cluster.decode_threads'") != std::string::npos);
  CHECK_FALSE(config_from_json(json{{"cluster", {{"decode_threads", -1}}}}).is_ok());
  auto open = config_from_json(json{{"cluster", {{"address", "0.0.0.0"}}}});
  REQUIRE_FALSE(open.is_ok());
  CHECK(open.message().find("cluster.allow_remote") != std::string::npos);
  auto allowed =
      config_from_json(json{{"cluster", {{"address", "0.0.0.0"}, {"allow_remote", true}}}});
  CHECK(allowed.is_ok());
  auto fast = config_from_json(json{{"cluster", {{"heartbeat_ms", 1}}}});
  REQUIRE_FALSE(fast.is_ok());
  CHECK(fast.message().find("'cluster.heartbeat_ms'") != std::string::npos);
  CHECK_FALSE(config_from_json(json{{"cluster", {{"name", ""}}}}).is_ok());
  CHECK_FALSE(config_from_json(json{{"cluster", {{"allow_remote", "yes"}}}}).is_ok());
  CHECK_FALSE(config_from_json(json{{"cluster", {{"gossip", 1}}}}).is_ok());
  auto c = config_from_json(json{{"cluster", {{"name", "blue"}, {"request_timeout_ms", 500}}}});
  REQUIRE(c.is_ok());
  CHECK(c->to_json()["cluster"]["name"] == "blue");
  CHECK(c->to_json()["cluster"]["request_timeout_ms"] == 500);
}
