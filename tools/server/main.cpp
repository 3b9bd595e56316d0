// tickdb-server: one tickdb node. Loads the config (--config FILE, --set key=value), recovers
// the database from storage.data_dir (the newest valid snapshot, then the commit log), starts
// the actor runtime and the HTTP server, logs one start-up line, and on SIGINT/SIGTERM stops
// gracefully: no new connections, requests in flight answered, the actors stopped, the log
// flushed and a last snapshot written, exit 0. `--verify FILE` checks a snapshot file.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <ctime>
#include <iostream>

#include "actors/cluster.h"
#include "actors/persistence.h"
#include "http/server.h"

using namespace tickdb;

namespace {

// --verify FILE: what the file holds and whether it loads; exit 0 only when it does.
int verify(const std::string& path) {
  auto info = inspect_snapshot(path);
  if (!info) {
    std::cout << path << ": " << errc_name(info.code()) << ": " << info.message() << "\n";
    return 1;
  }
  std::time_t secs = static_cast<std::time_t>(info->time_ns / 1000000000);
  char when[64] = "?";
  std::tm tm{};
  if (gmtime_r(&secs, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::cout << "file:      " << path << "\n"
            << "format:    " << info->format << "\n"
            << "version:   " << info->version << "\n"
            << "taken:     " << when << "\n"
            << "bytes:     " << info->bytes << "\n"
            << "checksum:  " << (info->checksum_ok ? "ok" : "MISMATCH (corruption)") << "\n"
            << "tables:    " << info->tables.size() << "\n";
  for (const auto& t : info->tables)
    std::cout << "  " << t.name << ": " << t.records << " records of " << t.record_size
              << " bytes\n";
  if (!info->checksum_ok) return 1;
  auto loaded = read_snapshot(path);
  std::cout << "content:   "
            << (loaded ? std::string("ok (every table, id and record loads)")
                       : std::string(errc_name(loaded.code())) + ": " + loaded.message())
            << "\n";
  return loaded ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tickdb-server: an in-memory relational database node for real-time programs"};
  std::string config_path;
  std::vector<std::string> sets;
  bool print_config = false;
  bool baseline = false;
  app.add_option("-c,--config", config_path,
                 "JSON config file (every key optional; see config/tickdb.json)");
  app.add_option("--set", sets, "override a config key: --set http.port=9090 (repeatable)");
  app.add_flag("--print-config", print_config, "print the effective config as JSON and exit");
  app.add_flag("--baseline", baseline,
               "benchmark baseline: answer every request 200 {} without the database");
  std::string verify_path;
  app.add_option("--verify", verify_path,
                 "check a snapshot file (version, time, tables, records, checksum) and exit");
  CLI11_PARSE(app, argc, argv);
  if (!verify_path.empty()) return verify(verify_path);

  nlohmann::json j = nlohmann::json::object();
  if (!config_path.empty()) {
    auto f = read_config_file(config_path);
    if (!f) {
      std::cerr << "tickdb-server: " << f.message() << "\n";
      return 2;
    }
    j = std::move(*f);
  }
  for (const auto& s : sets) {
    if (auto st = apply_override(j, s); !st) {
      std::cerr << "tickdb-server: " << st.message() << "\n";
      return 2;
    }
  }
  auto cfg = config_from_json(j);
  if (!cfg) {
    std::cerr << "tickdb-server: " << (config_path.empty() ? "" : config_path + ": ")
              << cfg.message() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << cfg->to_json().dump(2) << "\n";
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(cfg->log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Signals go to the waiting main thread only: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  PersistenceOptions po;
  po.data_dir = cfg->storage_data_dir;
  po.durability = cfg->storage_durability;
  po.durable_reads = cfg->storage_read_visibility == ReadVisibility::durable;
  po.snapshot_interval_s = cfg->storage_snapshot_interval_s;
  po.snapshot_keep = cfg->storage_snapshot_keep;
  po.compression_level = cfg->storage_compression_level;
  po.log = [](int level, const std::string& m) {
    if (level == 0)
      spdlog::info("{}", m);
    else if (level == 1)
      spdlog::warn("{}", m);
    else
      spdlog::error("{}", m);
  };
  auto persistence = Persistence::open(po);
  if (!persistence) {
    spdlog::critical("cannot start: {}: {}", errc_name(persistence.code()), persistence.message());
    return 2;
  }
  Persistence& store = **persistence;
  auto recovered = store.recover();
  if (!recovered) {
    spdlog::critical("cannot recover: {}: {}", errc_name(recovered.code()), recovered.message());
    return 2;
  }

  RuntimeConfig rc;
  rc.tick_rate_hz = cfg->tick_rate_hz;
  rc.workers = cfg->workers_count;
  rc.scheduler_policy = cfg->workers_scheduler_policy;
  rc.modules = cfg->procedures_modules;
  rc.procedure_timeout_ms = cfg->procedures_timeout_ms;
  rc.procedure_max_write_bytes = cfg->procedures_max_write_bytes;
  rc.procedure_max_alloc_bytes = cfg->procedures_max_alloc_bytes;
  rc.idempotency_ttl_s = cfg->cluster_idempotency_ttl_s;
  rc.idempotency_max_keys = cfg->cluster_idempotency_max_keys;
  rc.start_ticks = false;  // after recovery
  for (const auto& t : cfg->tick_procedures)
    rc.tick_procedures.push_back({t.name, t.every, t.params});
  rc.snapshot = [&store](std::function<void(Result<json>)> done) {
    store.snapshot_async([done = std::move(done)](Result<SnapshotWriteInfo> r) {
      if (!r) return done(Result<json>(r.error()));
      done(Result<json>(json{{"path", r->path}, {"bytes", r->bytes}, {"ms", r->seconds * 1000.0}}));
    });
  };
  const bool clustered = cfg->cluster_port != 0;
  if (clustered) {
    RuntimeConfig::ClusterTransport ct;
    ct.name = cfg->cluster_name;
    ct.heartbeat = std::chrono::milliseconds(cfg->cluster_heartbeat_ms);
    ct.connection_timeout = std::chrono::milliseconds(cfg->cluster_failure_timeout_ms);
    ct.decode_threads = cfg->cluster_decode_threads;
    rc.cluster = ct;
  }
  auto rt = Runtime::start(rc, recovered->db);
  if (!rt) {
    spdlog::critical("cannot start: {}", rt.message());
    return 2;
  }
  {
    // The keyed writes of the snapshot, then those of the log as it replays.
    if (const auto kept = (*rt)->idempotency_ledger().load(recovered->keys))
      spdlog::info("{} Idempotency-Keys recovered with the snapshot", kept);
    recovered->keys.clear();
    auto t0 = std::chrono::steady_clock::now();
    auto last_report = t0;
    std::size_t done = 0;
    for (const auto& e : recovered->entries) {
      if (auto st = (*rt)->replay(e); !st) {
        spdlog::critical("cannot recover: replaying the commit log: {}", st.message());
        return 2;
      }
      ++done;
      auto now = std::chrono::steady_clock::now();
      if (now - last_report > std::chrono::seconds(2)) {
        spdlog::info("replaying the commit log: {} of {} entries", done, recovered->entries.size());
        last_report = now;
      }
    }
    if (done)
      spdlog::info("replayed {} log entries in {:.3f} s: the database is at version {}", done,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                   (*rt)->current()->version());
    recovered->entries.clear();
  }
  if (auto st = store.start(**rt); !st) {
    spdlog::critical("cannot start: {}", st.message());
    return 2;
  }
  // From here on every way out of main (a port in use, a failed cluster start, the signal)
  // stops the runtime and then the store, as a graceful stop does: the store's stop writes the
  // last snapshot from the runtime's head, so it must run while the runtime lives (the locals
  // die in the reverse order: the runtime before the store).
  struct StopInOrder {
    Runtime& rt;
    Persistence& store;
    ~StopInOrder() {
      rt.stop();
      store.stop();
    }
  } stop_in_order{**rt, store};
  (*rt)->start_ticks();
  auto server = HttpServer::start(*cfg, **rt);
  if (!server) {
    spdlog::critical("cannot start: {}", server.message());
    return 2;
  }
  if (baseline) (*server)->router().set_baseline(true);
  (*server)->router().set_persistence(&store);
  std::unique_ptr<Cluster> cluster;
  if (clustered) {
    ClusterOptions co;
    co.name = cfg->cluster_name;
    co.node = cfg->node_name;
    co.address = cfg->cluster_address;
    co.port = cfg->cluster_port;
    co.peers = cfg->cluster_peers;
    co.http = cfg->http_address + ":" + std::to_string((*server)->port());
    co.heartbeat = std::chrono::milliseconds(cfg->cluster_heartbeat_ms);
    co.failure_timeout = std::chrono::milliseconds(cfg->cluster_failure_timeout_ms);
    co.request_timeout = std::chrono::milliseconds(cfg->cluster_request_timeout_ms);
    co.log = po.log;
    Router* router = &(*server)->router();
    auto c = Cluster::start(
        std::move(co), **rt,
        [router](ForwardRequest req, std::function<void(ForwardReply)> reply) {
          router->serve_forwarded(std::move(req), std::move(reply));
        },
        [router](ForwardRequest req, std::shared_ptr<StreamOut> out,
                 std::function<void(ForwardReply)> reply) {
          router->serve_stream(std::move(req), std::move(out), std::move(reply));
        });
    if (!c) {
      spdlog::critical("cannot start: {}", c.message());
      (*server)->stop(std::chrono::milliseconds(0));
      return 2;
    }
    cluster = std::move(*c);
    router->set_cluster(cluster.get());
    spdlog::info(
        "cluster '{}': node '{}' on {}:{} (unauthenticated: keep it on a private network), peers: "
        "{}",
        cfg->cluster_name, cfg->node_name, cfg->cluster_address, cluster->port(),
        cfg->cluster_peers.empty() ? std::string("none")
                                   : nlohmann::json(cfg->cluster_peers).dump());
  }
  std::string modules;
  for (const auto& m : cfg->procedures_modules) modules += (modules.empty() ? "" : ", ") + m;
  spdlog::info(
      "tickdb node '{}' listening on http://{}:{} | data dir {} ({} durability, {} reads) | "
      "tick {} Hz | {} workers | modules: {}",
      cfg->node_name, cfg->http_address, (*server)->port(), cfg->storage_data_dir,
      to_string(cfg->storage_durability), (*rt)->durable_reads() ? "durable" : "immediate",
      cfg->tick_rate_hz, (*rt)->workers().workers(), modules.empty() ? "none" : modules);
  if (baseline) spdlog::warn("--baseline: every request is answered 200 {} without the database");
  if (!cfg->http_auth_token.empty())
    spdlog::info("auth: every route but /health needs 'Authorization: Bearer <token>'");

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("{}: stopping (answering requests in flight)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->stop();
  if (cluster) cluster->stop();
  (*rt)->stop();
  store.stop();  // the rest of the log, then a last snapshot
  spdlog::info("stopped");
  return 0;
}
