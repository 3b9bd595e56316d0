// ScenarioRunner: runs one parsed Scenario against a fresh node (a NodeProcess on its own
// temp data dir and port) or against a running node (`--url`), step by step, and tells the
// run how many steps passed, failed and were skipped.
//
// A step passes when the answer's status is the expected one and its JSON body matches the
// expectation (json_match.h); a `wait` step tries again until it does, for at most its
// duration. The first failing step ends the scenario (the state after it is unknown, so the
// later steps would only fail in its wake): it is printed as `file:line:` with the request,
// the expected status and body, the actual ones and where they differ, and the steps after
// it count as skipped. The node is then stopped gracefully; a node that does not stop cleanly
// fails the scenario too. The data dir is removed unless `keep`.
//
// Thread-safety: run() is the caller's thread's; several runners must not share an ostream.
#pragma once

#include <csignal>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tools/test-runner/http_client.h"
#include "tools/test-runner/scenario.h"
#include "tools/test-runner/scenario_json.h"

namespace tickdb::scenario {

struct RunOptions {
  std::string server;                    // tickdb-server to start (unless url)
  std::optional<Endpoint> url;           // a running node instead: no restart, crash or config
  std::vector<std::string> module_dirs;  // where `module NAME` looks first
  std::vector<std::pair<std::string, Json>> vars;  // --var: predefined variables
  std::vector<std::string> sets;                   // --set for every node started
  bool keep = false;                               // keep the data dirs (and say where)
  bool verbose = false;                            // print every step
  bool node_output = false;                        // echo the node's output as it comes
  double start_timeout_s = 20;
  double request_timeout_s = 10;
  // Set (by a signal handler) to stop the run: checked before every step and every try of
  // a wait; the node is then stopped and its data dir removed as after a failure.
  const volatile std::sig_atomic_t* interrupted = nullptr;
};

struct Tally {
  int passed = 0, failed = 0, skipped = 0;
  Tally& operator+=(const Tally& o) {
    passed += o.passed;
    failed += o.failed;
    skipped += o.skipped;
    return *this;
  }
};

// Runs `scenario`; writes what failed (and with `verbose`, what passed) to `out`.
Tally run_scenario(const Scenario& scenario, const RunOptions& options, std::ostream& out);

}  // namespace tickdb::scenario
