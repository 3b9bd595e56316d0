// JsonMatch: whether an actual JSON answer matches the expectation a scenario wrote.
//
// The rules (docs/testing.md, Matching):
//   - an object matches when every key of the expectation is in the actual object and its
//     value matches (extra keys in the actual object are fine);
//   - an array matches element by element with equal length; a last expected element "..."
//     lets the actual array go on (`[1, 2, "..."]` matches [1, 2] and [1, 2, 3]);
//   - a string starting with `$` is a directive:
//       "$any"                       any value (the key must be there)
//       "$absent"                    the key must not be there (in an object only)
//       "$=name"                     any value, captured into variable `name`
//       "$number" "$string" "$bool" "$null" "$array" "$object"   any value of that type
//       "$gt:N" "$ge:N" "$lt:N" "$le:N"   a number compared with N
//       "$ne:V"                      anything but V (V as JSON, else as a string)
//       "$$..."                      the literal string "$..."
//     an unknown directive is a mismatch that says so (never a silent literal);
//   - anything else compares by value (numbers by value: 1 matches 1.0).
// Captures are returned only for a whole match, so a failed try binds nothing.
//
// Thread-safety: free functions over values.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "tools/test-runner/scenario_json.h"

namespace tickdb::scenario {

struct Mismatch {
  std::string path;    // where: `$`, `$.records[2].hp`
  std::string reason;  // what: `expected 99, got 100`
};

struct MatchResult {
  std::optional<Mismatch> mismatch;      // empty: it matches
  std::map<std::string, Json> captures;  // the "$=name" values of a match
  bool ok() const { return !mismatch.has_value(); }
};

MatchResult match_json(const Json& expected, const Json& actual);

// A directive string's syntax error (unknown directive, bad number, bad name), or empty:
// the parser checks expectations with it before anything runs.
std::optional<std::string> check_directives(const Json& expected);

}  // namespace tickdb::scenario
