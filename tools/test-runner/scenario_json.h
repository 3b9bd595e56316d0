// Json: the JSON value type of the runner's scenarios (patterns, answers, variables).
// ordered_json keeps the keys in the order they were written, so a failure prints the
// expectation as its author wrote it; objects in scenarios are small, so its linear key
// lookup costs nothing.
//
// Thread-safety: a plain value type.
#pragma once

#include <nlohmann/json.hpp>

namespace tickdb::scenario {

using Json = nlohmann::ordered_json;

}  // namespace tickdb::scenario
