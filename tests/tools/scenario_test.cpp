// The scenario parser, the JSON matcher and the variables of tickdb-test-runner, without a
// node: what each accepts, what it refuses and at which line.
#include <catch2/catch.hpp>

#include "tools/test-runner/json_match.h"
#include "tools/test-runner/scenario.h"
#include "tools/test-runner/variables.h"

using namespace tickdb::scenario;
using json = Json;

namespace {

bool matches(const char* expected, const char* actual) {
  return match_json(json::parse(expected), json::parse(actual)).ok();
}
std::string reason(const char* expected, const char* actual) {
  auto m = match_json(json::parse(expected), json::parse(actual));
  return m.ok() ? "" : m.mismatch->path + ": " + m.mismatch->reason;
}

}  // namespace

TEST_CASE("objects match as a subset, arrays element-wise with equal length", "[runner]") {
  CHECK(matches(R"({"a": 1})", R"({"a": 1, "b": 2})"));
  CHECK_FALSE(matches(R"({"a": 1, "b": 2})", R"({"a": 1})"));
  CHECK(matches(R"({"o": {"x": 1}})", R"({"o": {"x": 1.0, "y": 2}})"));
  CHECK(matches("[1, 2]", "[1, 2]"));
  CHECK_FALSE(matches("[1, 2]", "[1, 2, 3]"));
  CHECK_FALSE(matches("[1, 2]", "[2, 1]"));
  CHECK(reason(R"({"r": [{"hp": 1}, {"hp": 2}]})", R"({"r": [{"hp": 1}, {"hp": 3}]})") ==
        "$.r[1].hp: expected 2, got 3");
  CHECK(reason(R"({"a": 1})", R"({"b": 1})") == "$.a: missing key 'a'");
  CHECK(reason("[1]", "[]") == "$: expected 1 elements, got 0");
}

TEST_CASE("a trailing \"...\" lets the actual array go on", "[runner]") {
  CHECK(matches(R"([1, "..."])", "[1]"));
  CHECK(matches(R"([1, "..."])", "[1, 2, 3]"));
  CHECK_FALSE(matches(R"([1, 2, "..."])", "[1]"));
  CHECK(matches(R"(["..."])", "[]"));
}

TEST_CASE("directives: any, absent, types, comparisons, not-equal, escapes", "[runner]") {
  CHECK(matches(R"({"a": "$any"})", R"({"a": null})"));
  CHECK_FALSE(matches(R"({"a": "$any"})", R"({})"));
  CHECK(matches(R"({"a": "$absent"})", R"({"b": 1})"));
  CHECK_FALSE(matches(R"({"a": "$absent"})", R"({"a": 1})"));
  CHECK(matches(R"(["$number", "$string", "$bool", "$null", "$array", "$object"])",
                R"([1.5, "s", false, null, [], {}])"));
  CHECK_FALSE(matches(R"("$number")", R"("1")"));
  CHECK(matches(R"("$gt:1")", "2"));
  CHECK_FALSE(matches(R"("$gt:2")", "2"));
  CHECK(matches(R"("$ge:2")", "2"));
  CHECK(matches(R"("$lt:-1.5")", "-2"));
  CHECK(matches(R"("$le:3")", "3"));
  CHECK_FALSE(matches(R"("$lt:3")", R"("2")"));
  CHECK(matches(R"("$ne:null")", "0"));
  CHECK_FALSE(matches(R"("$ne:null")", "null"));
  CHECK(matches(R"("$ne:ab")", R"("abc")"));
  CHECK_FALSE(matches(R"("$ne:ab")", R"("ab")"));
  CHECK(matches(R"("$$x")", R"("$x")"));
  CHECK_FALSE(matches(R"("$$x")", R"("$$x")"));
  CHECK(reason(R"("$nope")", "1").find("unknown directive") != std::string::npos);
}

TEST_CASE("captures come only with a whole match", "[runner]") {
  auto m = match_json(json::parse(R"({"id": "$=pid", "o": {"v": "$=v"}})"),
                      json::parse(R"({"id": 7, "o": {"v": [1]}})"));
  REQUIRE(m.ok());
  CHECK(m.captures.at("pid") == 7);
  CHECK(m.captures.at("v") == json::parse("[1]"));
  auto miss = match_json(json::parse(R"({"id": "$=pid", "x": 1})"), json::parse(R"({"id": 7})"));
  CHECK_FALSE(miss.ok());
  CHECK(miss.captures.empty());
}

TEST_CASE("check_directives refuses bad directives before anything runs", "[runner]") {
  CHECK_FALSE(check_directives(json::parse(R"({"a": ["$any", "$gt:1", "$=x", "$$lit"]})")));
  CHECK(check_directives(json::parse(R"({"a": "$gt:x"})")));
  CHECK(check_directives(json::parse(R"(["$=1bad"])")));
  CHECK(check_directives(json::parse(R"({"a": {"b": "$whatever"}})")));
}

TEST_CASE("substitution: JSON text outside strings, escaped content inside, raw in paths",
          "[runner]") {
  Variables v;
  v.set("n", 7);
  v.set("s", "a\"b");
  v.set("o", json::parse(R"({"k": 1})"));
  CHECK(*v.substitute(R"({"x": ${n}, "y": ${s}, "z": ${o}})", TextKind::json) ==
        R"({"x": 7, "y": "a\"b", "z": {"k":1}})");
  CHECK(*v.substitute(R"("$gt:${n}" "p-${s}")", TextKind::json) == R"("$gt:7" "p-a\"b")");
  CHECK(*v.substitute("/t/${n}/${s}", TextKind::path) == "/t/7/a\"b");
  CHECK(*v.substitute("$${n}", TextKind::json) == "${n}");
  auto unknown = v.substitute("/t/${nope}", TextKind::path);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.message() == "unknown variable ${nope}");
  CHECK_FALSE(v.substitute("${1x}", TextKind::path));
  CHECK(*Variables::stand_in(R"({"a": ${x}, "b": "${y}"})") == R"({"a": 0, "b": "0"})");
}

TEST_CASE("the parser reads setup, calls, expectations, waits, restart and crash", "[runner]") {
  auto r = parse_scenario(R"(# comment
module tickdb_game
config tick.rate_hz=50

rpc setup
expect result {"created": true}
POST /table/players/record {"name": "ana",
                            "score": 1}
# a comment between a call and its expect
expect 201 {"id": "$=ana"}
wait 1.5s GET /table/players/record/${ana}
expect 200
rpc spawn {"owner": ${ana}, "n": 2}
expect error -32000 {"data": {"code": "procedure_failed"}}
restart
crash
POST /x raw {not json
expect 400
)",
                          "s.scenario");
  INFO((r.errors.empty() ? "" : r.errors[0].message));
  REQUIRE(r.errors.empty());
  const Scenario& s = r.scenario;
  CHECK(s.modules == std::vector<std::string>{"tickdb_game"});
  CHECK(s.sets == std::vector<std::string>{"tick.rate_hz=50"});
  CHECK(s.setup_line == 2);
  REQUIRE(s.steps.size() == 7);
  CHECK(s.steps[0].line == 5);
  CHECK(s.steps[0].exchange.rpc_method == "setup");
  CHECK(s.steps[0].exchange.expect == Exchange::Expect::rpc_result);
  CHECK(s.steps[1].line == 7);
  CHECK(s.steps[1].exchange.expect_line == 10);
  CHECK(json::parse(s.steps[1].exchange.body) == json::parse(R"({"name":"ana","score":1})"));
  CHECK(s.steps[1].exchange.expect_status == 201);
  CHECK(s.steps[2].exchange.wait_s == 1.5);
  CHECK(s.steps[2].exchange.target == "/table/players/record/${ana}");
  CHECK(s.steps[2].exchange.expect_body.empty());
  CHECK(s.steps[3].exchange.expect == Exchange::Expect::rpc_error);
  CHECK(s.steps[3].exchange.expect_rpc_code == -32000);
  CHECK(s.steps[4].kind == Step::Kind::restart);
  CHECK(s.steps[5].kind == Step::Kind::crash);
  CHECK(s.steps[6].exchange.body == "{not json");
}

TEST_CASE("parse errors name their lines, all of them", "[runner]") {
  auto r = parse_scenario(R"(GET /a
expect 200
config late.key=1
GET nopath
expect 200
PUT /a {"x": }
expect 200
rpc m
expect 200 {"a": "$wat"}
GET /b
GET /c
expect 99
expect 200
restart now
wait 2h GET /d
expect 200
POST /e {"open": [
expect 200
)",
                          "bad.scenario");
  std::vector<std::pair<int, std::string>> want = {
      {3, "'config' must come before the first step"},
      {4, "GET needs a path starting with '/'"},
      {6, "bad JSON"},
      {9, "unknown directive \"$wat\""},
      {10, "a request needs an 'expect' line after it"},
      {12, "'expect' needs an HTTP status"},
      {13, "'expect' without a request before it"},
      {14, "'restart' takes nothing after it"},
      {15, "'wait' needs a duration"},
      {17, "JSON not closed before line 18"},
  };
  REQUIRE(r.errors.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO(r.errors[i].line << ": " << r.errors[i].message);
    CHECK(r.errors[i].line == want[i].first);
    CHECK(r.errors[i].message.find(want[i].second) != std::string::npos);
  }
}

TEST_CASE("header lines set and remove request headers", "[runner]") {
  auto r =
      parse_scenario("header X-Trace: a b\nheader X-Trace:\nGET /a\nexpect 200\nheader bad\n", "s");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 5);
  REQUIRE(r.scenario.steps.size() == 3);
  CHECK(r.scenario.steps[0].kind == Step::Kind::header);
  CHECK(r.scenario.steps[0].header_name == "X-Trace");
  CHECK(r.scenario.steps[0].header_value == "a b");
  CHECK(r.scenario.steps[1].header_value.empty());
  auto only = parse_scenario("header X-Trace: a\n", "s");
  REQUIRE(only.errors.size() == 1);
  CHECK(only.errors[0].message == "no steps");
}

TEST_CASE("a scenario without steps is an error, not a pass", "[runner]") {
  auto r = parse_scenario("# nothing yet\nmodule tickdb_game\n", "s");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].message == "no steps");
}

TEST_CASE("the runner's own config keys are refused", "[runner]") {
  auto r = parse_scenario("config http.port=9090\nconfig storage.data_dir=/x\n", "s");
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[1].line == 2);
}
