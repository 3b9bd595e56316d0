// tickdb-test-runner: runs scenario files (docs/testing.md) against fresh tickdb nodes, so
// authors of procedure modules can work test-first. Each file gets its own node (its own
// temp data dir and port) unless --url names a running one. A failing step prints
// `file:line:` with the expected and the actual status and body; the run ends with
// `N passed, N failed, N skipped` (steps) and exits 0 when nothing failed, 1 when a step or a
// parse failed, 2 on a usage error, 130 when interrupted (SIGINT/SIGTERM: the node is stopped
// and the data dir removed first).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tools/test-runner/scenario.h"
#include "tools/test-runner/scenario_runner.h"
#include "tools/test-runner/variables.h"

using namespace tickdb;
using namespace tickdb::scenario;
namespace fs = std::filesystem;

namespace {

// SIGINT/SIGTERM: the run stops at the next step, stops its node and removes its data dir
// (a second signal kills at once: the default action is restored by SA_RESETHAND).
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_signal(int) {
  g_interrupted = 1;
}

// The tickdb-server beside this executable, or in ../server (the build tree's layout).
std::string default_server() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "tickdb-server";
  for (const fs::path& cand : {self.parent_path() / "tickdb-server",
                               self.parent_path() / ".." / "server" / "tickdb-server"})
    if (fs::exists(cand)) return fs::weakly_canonical(cand).string();
  return (self.parent_path() / "tickdb-server").string();
}

// Files as given; directories: their *.scenario files, sorted.
std::vector<std::string> scenario_files(const std::vector<std::string>& paths, std::string& error) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    if (fs::is_directory(p)) {
      std::vector<std::string> in;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && e.path().extension() == ".scenario")
          in.push_back(e.path().string());
      std::sort(in.begin(), in.end());
      if (in.empty()) error = p + ": no *.scenario files in it";
      files.insert(files.end(), in.begin(), in.end());
    } else if (fs::is_regular_file(p)) {
      files.push_back(p);
    } else {
      error = p + ": no such file or directory";
    }
  }
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tickdb-test-runner: runs scenario files (docs/testing.md) against fresh tickdb nodes"};
  std::vector<std::string> paths, vars;
  RunOptions o;
  std::string url;
  o.server = default_server();
  app.add_option("paths", paths, "scenario files, or directories of *.scenario files")->required();
  app.add_option("--server", o.server,
                 "the tickdb-server to start (default: the one beside "
                 "this program)");
  app.add_option("--url", url,
                 "run against a running node (http://host:port) instead: no restart, crash, "
                 "config or module");
  app.add_option("--module-dir", o.module_dirs, "where 'module NAME' looks first (repeatable)")
      ->allow_extra_args(false);  // one value an option: the paths after it stay paths
  app.add_option("--var", vars, "NAME=VALUE: predefine ${NAME} (VALUE as JSON, else a string)")
      ->allow_extra_args(false);
  app.add_option("--set", o.sets, "key=value: one more --set for every node (repeatable)")
      ->allow_extra_args(false);
  app.add_flag("--keep", o.keep, "keep the nodes' data dirs (printed)");
  app.add_flag("-v,--verbose", o.verbose, "print every step, and the node's output on failure");
  app.add_flag("--node-output", o.node_output, "echo the nodes' output (prefixed 'node| ')");
  app.add_option("--start-timeout", o.start_timeout_s, "seconds a node may take to listen (20)");
  app.add_option("--request-timeout", o.request_timeout_s, "seconds one request may take (10)");
  CLI11_PARSE(app, argc, argv);

  if (!url.empty()) {
    auto e = Endpoint::parse(url);
    if (!e) {
      std::cerr << "tickdb-test-runner: " << e.message() << "\n";
      return 2;
    }
    o.url = *e;
  }
  for (const auto& v : vars) {
    auto eq = v.find('=');
    std::string name = v.substr(0, eq == std::string::npos ? 0 : eq);
    if (!Variables::valid_name(name)) {
      std::cerr << "tickdb-test-runner: --var '" << v << "': expected NAME=VALUE\n";
      return 2;
    }
    auto j = Json::parse(v.substr(eq + 1), nullptr, false);
    o.vars.emplace_back(name, j.is_discarded() ? Json(v.substr(eq + 1)) : j);
  }
  std::string error;
  auto files = scenario_files(paths, error);
  if (!error.empty() || files.empty()) {
    std::cerr << "tickdb-test-runner: " << (error.empty() ? "no scenario files" : error) << "\n";
    return 2;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  o.interrupted = &g_interrupted;

  const auto began = std::chrono::steady_clock::now();
  Tally total;
  int scenarios_failed = 0;
  std::size_t ran = 0;
  for (const auto& file : files) {
    if (g_interrupted) break;
    ++ran;
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      std::cout << "FAIL " << file << ": cannot read it\n";
      ++total.failed;
      ++scenarios_failed;
      continue;
    }
    auto parsed = parse_scenario(text.str(), file);
    if (!parsed.errors.empty()) {
      for (const auto& e : parsed.errors)
        std::cout << file << ":" << e.line << ": parse error: " << e.message << "\n";
      std::cout << "FAIL " << file << ": " << parsed.errors.size()
                << " parse error(s); nothing run\n";
      ++total.failed;
      ++scenarios_failed;
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    Tally t = run_scenario(parsed.scenario, o, std::cout);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    const char* verdict = t.failed ? "FAIL " : g_interrupted ? "STOPPED " : "PASS ";
    std::cout << verdict << file << " (" << t.passed << " passed, " << t.failed << " failed, "
              << t.skipped << " skipped, " << ms << " ms)\n"
              << std::flush;
    if (t.failed) ++scenarios_failed;
    total += t;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::cout << total.passed << " passed, " << total.failed << " failed, " << total.skipped
            << " skipped (" << ran << " scenarios, " << scenarios_failed << " failed; "
            << static_cast<long long>(secs * 1000) << " ms)"
            << (g_interrupted ? "; interrupted" : "") << "\n";
  if (g_interrupted) return 130;
  return total.failed ? 1 : 0;
}
