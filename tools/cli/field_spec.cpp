#include "tools/cli/field_spec.h"

#include "tools/cli/exit_codes.h"

namespace tickdb::cli {

namespace {

bool is_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  const auto alpha = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  };
  if (!alpha(s[0])) return false;
  for (char c : s)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

[[noreturn]] void bad(std::string_view text, const std::string& why) {
  throw CliError(kExitUsage, "field '" + std::string(text) + "': " + why +
                                 " (expected NAME:TYPE[=DEFAULT], e.g. hp:i32, name:str16)");
}

}  // namespace

json parse_field_spec(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) bad(text, "no ':' between name and type");
  const std::string_view name = text.substr(0, colon);
  std::string_view type = text.substr(colon + 1);
  std::string_view def;
  bool has_default = false;
  if (const auto eq = type.find('='); eq != std::string_view::npos) {
    def = type.substr(eq + 1);
    type = type.substr(0, eq);
    has_default = true;
  }
  if (!is_name(name)) bad(text, "bad field name '" + std::string(name) + "'");
  json spec = {{"name", std::string(name)}};
  if (type.size() > 3 && type.substr(0, 3) == "str" &&
      type.find_first_not_of("0123456789", 3) == std::string_view::npos) {
    const auto digits = type.substr(3);
    if (digits.size() > 4) bad(text, "string size out of range 1..4096");
    const int size = std::stoi(std::string(digits));
    if (size < 1 || size > 4096) bad(text, "string size out of range 1..4096");
    spec["type"] = "str";
    spec["size"] = size;
  } else if (type == "str") {
    bad(text, "a string needs its size: str16");
  } else if (is_name(type)) {
    spec["type"] = std::string(type);
  } else {
    bad(text, "bad type '" + std::string(type) + "'");
  }
  if (has_default) {
    auto v = json::parse(def, nullptr, false);
    spec["default"] = v.is_discarded() ? json(std::string(def)) : std::move(v);
  }
  return spec;
}

}  // namespace tickdb::cli
