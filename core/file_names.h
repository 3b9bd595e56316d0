// The names of the numbered files of a data directory: `<prefix><20 digits><suffix>`, so that
// they sort by number (snapshots by version, log segments by first version, key files by
// their snapshot's version).
//
// Owned by no one: pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tickdb {

// "<prefix><n, 20 digits><suffix>".
std::string numbered_file_name(std::string_view prefix, std::uint64_t n, std::string_view suffix);
// The number of such a name; nullopt for any other name.
std::optional<std::uint64_t> parse_numbered_file_name(std::string_view name,
                                                      std::string_view prefix,
                                                      std::string_view suffix);

}  // namespace tickdb
