// Scenario: one scenario file, parsed: the node's setup (`config`, `module`) and the steps
// to run against it in order. The file format is docs/testing.md; in short:
//
//   # a comment line                    config tick.rate_hz=100      module tickdb_game
//   rpc setup                           POST /table/players/record {"name": "ana"}
//   expect result {"created": true}     expect 201 {"id": "$=ana"}
//   wait 2s GET /health                 restart        (SIGTERM, start again, same data)
//   expect 200 {"tick": "$ge:5"}        crash          (SIGKILL, start again, same data)
//   header Authorization: Bearer ${token}   (for the calls after it)
//
// A JSON part may go on over the following lines until its brackets close. JSON texts are
// kept as written (with `${var}` in them): variables get their values only while it runs.
// The parser checks everything it can before anything runs (JSON syntax with stand-ins for
// variables, directives, durations, order) and reports every error with its line.
//
// Thread-safety: plain values; parse_scenario is a pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tickdb::scenario {

// One HTTP exchange and what its answer must be.
struct Exchange {
  // The request. An `rpc` line becomes POST /rpc with a JSON-RPC 2.0 envelope whose id the
  // runner assigns; `rpc_method` is then set and `body` holds the params (or is empty).
  std::string method;  // GET POST PUT PATCH DELETE HEAD
  std::string target;  // path and query, as written (substituted at run time)
  std::string body;    // JSON text or empty
  std::string rpc_method;

  // The expectation, from the `expect` line. For `expect result X` and `expect error C X`
  // the runner builds the envelope pattern; `expect_body` empty means "any body".
  enum class Expect { status, rpc_result, rpc_error } expect = Expect::status;
  int expect_status = 200;
  long long expect_rpc_code = 0;
  std::string expect_body;
  int expect_line = 0;

  // `wait D` before the request: try again until the answer matches, for at most D.
  std::optional<double> wait_s;
};

struct Step {
  // `header` is not a check: it sets (or, with an empty value, removes) a request header for
  // the calls after it, and is not counted as a step.
  enum class Kind { exchange, restart, crash, header } kind = Kind::exchange;
  int line = 0;  // where the step starts (the request line)
  Exchange exchange;
  std::string header_name, header_value;  // for `header NAME: VALUE`
};

struct Scenario {
  std::string file;
  std::vector<std::string> sets;     // `config key=value`: the node's --set assignments
  std::vector<std::string> modules;  // `module NAME`: as written (resolved by the runner)
  int setup_line = 0;                // the first config/module line (0: none)
  std::vector<Step> steps;
};

struct ParseError {
  int line = 0;
  std::string message;
};

struct ParseResult {
  Scenario scenario;
  std::vector<ParseError> errors;  // empty: the scenario may run
};

ParseResult parse_scenario(std::string_view text, std::string file);

}  // namespace tickdb::scenario
