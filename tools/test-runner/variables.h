// Variables: the named values of one scenario run (`--var NAME=VALUE`, and the captures of
// `"$=name"` in expectations), and the `${name}` substitution into the text of later steps.
//
// Substitution knows where it is: in JSON text, `${v}` outside a string becomes v's JSON text
// (`{"owner": ${pid}}` -> `{"owner": 7}`, a string keeps its quotes), inside a string it
// becomes v's content escaped for JSON (`"$gt:${t0}"` -> `"$gt:12"`); in a URL path a string
// is its raw content and anything else its JSON text. `$${` is a literal `${`.
//
// Owned by the ScenarioRunner of one scenario. Thread-safety: a plain value.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/status.h"
#include "tools/test-runner/scenario_json.h"

namespace tickdb::scenario {

enum class TextKind { json, path };

class Variables {
 public:
  void set(const std::string& name, Json value) { values_[name] = std::move(value); }
  const Json* find(const std::string& name) const;

  // `text` with every `${name}` replaced; invalid_argument naming an unknown variable.
  Result<std::string> substitute(std::string_view text, TextKind kind) const;

  // `text` with every `${name}` replaced by a stand-in (`0`, in strings too),
  // known or not: what the parser checks for JSON syntax before any variable has a value.
  // invalid_argument for a malformed `${...}`.
  static Result<std::string> stand_in(std::string_view text);

  // A variable name: [A-Za-z_][A-Za-z0-9_]*.
  static bool valid_name(std::string_view name);

 private:
  std::map<std::string, Json> values_;
};

}  // namespace tickdb::scenario
