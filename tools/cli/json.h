// The JSON type of tickdb-cli: nlohmann's ordered_json, so answers keep the node's key order
// (a record's fields in schema order, in tables for people and in exported lines alike).
#pragma once

#include <nlohmann/json.hpp>

namespace tickdb::cli {

using json = nlohmann::ordered_json;

}  // namespace tickdb::cli
