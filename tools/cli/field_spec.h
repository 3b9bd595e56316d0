// The short form of a field on the command line, `NAME:TYPE[=DEFAULT]`, turned into the
// field spec of API.md: `hp:i32` -> {"name":"hp","type":"i32"}, `name:str16` ->
// {"name":"name","type":"str","size":16}, `pos:vec3` -> {"name":"pos","type":"vec3"} (any
// other type name is taken as a composite type; the node checks that it exists), and
// `hp:i32=100` adds "default": 100 (the default is JSON; a bare word is taken as a string).
//
// Pure functions: safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include "tools/cli/json.h"

namespace tickdb::cli {

// The spec, or a CliError(kExitUsage) saying what is wrong with `text`.
json parse_field_spec(std::string_view text);

}  // namespace tickdb::cli
