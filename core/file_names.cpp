#include "core/file_names.h"

#include <charconv>

namespace tickdb {

std::string numbered_file_name(std::string_view prefix, std::uint64_t n, std::string_view suffix) {
  const std::string digits = std::to_string(n);
  std::string out(prefix);
  out.append(20 - digits.size(), '0');
  out += digits;
  out += suffix;
  return out;
}

std::optional<std::uint64_t> parse_numbered_file_name(std::string_view name,
                                                      std::string_view prefix,
                                                      std::string_view suffix) {
  if (name.size() != prefix.size() + 20 + suffix.size() ||
      name.substr(0, prefix.size()) != prefix || name.substr(prefix.size() + 20) != suffix)
    return std::nullopt;
  const std::string_view digits = name.substr(prefix.size(), 20);
  for (char c : digits)
    if (c < '0' || c > '9') return std::nullopt;
  std::uint64_t v = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return std::nullopt;
  return v;
}

}  // namespace tickdb
