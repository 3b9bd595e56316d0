// tickdb-server: one tickdb node. Loads the config (--config FILE, --set key=value), starts
// the actor runtime and the HTTP server, logs one start-up line, and on SIGINT/SIGTERM stops
// gracefully: no new connections, requests in flight answered, then the actors, exit 0.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <spdlog/spdlog.h>

#include "http/server.h"

using namespace tickdb;

int main(int argc, char** argv) {
  CLI::App app{"tickdb-server: an in-memory relational database node for real-time programs"};
  std::string config_path;
  std::vector<std::string> sets;
  bool print_config = false;
  bool baseline = false;
  app.add_option("-c,--config", config_path, "JSON config file (every key optional; see config/tickdb.json)");
  app.add_option("--set", sets, "override a config key: --set http.port=9090 (repeatable)");
  app.add_flag("--print-config", print_config, "print the effective config as JSON and exit");
  app.add_flag("--baseline", baseline, "benchmark baseline: answer every request 200 {} without the database");
  CLI11_PARSE(app, argc, argv);

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
    std::cerr << "tickdb-server: " << (config_path.empty() ? "" : config_path + ": ") << cfg.message() << "\n";
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

  RuntimeConfig rc;
  rc.tick_rate_hz = cfg->tick_rate_hz;
  rc.workers = cfg->workers_count;
  rc.modules = cfg->procedures_modules;
  for (const auto& t : cfg->tick_procedures) rc.tick_procedures.push_back({t.name, t.every, t.params});
  auto rt = Runtime::start(rc);
  if (!rt) {
    spdlog::critical("cannot start: {}", rt.message());
    return 2;
  }
  auto server = HttpServer::start(*cfg, **rt);
  if (!server) {
    spdlog::critical("cannot start: {}", server.message());
    return 2;
  }
  if (baseline) (*server)->router().set_baseline(true);
  std::string modules;
  for (const auto& m : cfg->procedures_modules) modules += (modules.empty() ? "" : ", ") + m;
  spdlog::info("tickdb node '{}' listening on http://{}:{} | data dir {} | tick {} Hz | {} workers | modules: {}",
               cfg->node_name, cfg->http_address, (*server)->port(), cfg->storage_data_dir, cfg->tick_rate_hz,
               (*rt)->workers().workers(), modules.empty() ? "none" : modules);
  if (baseline) spdlog::warn("--baseline: every request is answered 200 {} without the database");
  if (!cfg->http_auth_token.empty()) spdlog::info("auth: every route but /health needs 'Authorization: Bearer <token>'");

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("{}: stopping (answering requests in flight)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->stop();
  (*rt)->stop();
  spdlog::info("stopped");
  return 0;
}
