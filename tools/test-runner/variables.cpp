#include "tools/test-runner/variables.h"

namespace tickdb::scenario {

using json = Json;

namespace {

// The JSON escaping of a string's content, without the quotes.
std::string escaped_content(const std::string& s) {
  std::string quoted = json(s).dump();
  return quoted.substr(1, quoted.size() - 2);
}

// Walks `text`, calling `replace(name, in_string)` for each `${name}`; false from it stops
// the walk. Tracks JSON strings (with escapes) so the callback knows where it is.
template <class Fn>
Status walk(std::string_view text, std::string& out, Fn&& replace) {
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '$' && i + 2 < text.size() && text[i + 1] == '$' && text[i + 2] == '{') {
      out += "${";  // $${ is a literal ${
      i += 2;
      continue;
    }
    if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      auto close = text.find('}', i + 2);
      if (close == std::string_view::npos)
        return make_error(Errc::invalid_argument, "'${' without a closing '}'");
      std::string name(text.substr(i + 2, close - i - 2));
      if (!Variables::valid_name(name))
        return make_error(Errc::invalid_argument, "bad variable name '${" + name + "}'");
      TICKDB_TRY(replace(name, in_string));
      i = close;
      continue;
    }
    out += c;
    if (in_string && c == '\\' && i + 1 < text.size()) {
      out += text[++i];
    } else if (c == '"') {
      in_string = !in_string;
    }
  }
  return {};
}

}  // namespace

const json* Variables::find(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

bool Variables::valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

Result<std::string> Variables::substitute(std::string_view text, TextKind kind) const {
  std::string out;
  out.reserve(text.size());
  auto st = walk(text, out, [&](const std::string& name, bool in_string) -> Status {
    const json* v = find(name);
    if (!v) return make_error(Errc::invalid_argument, "unknown variable ${" + name + "}");
    if (v->is_string()) {
      const auto& s = v->get_ref<const std::string&>();
      if (kind == TextKind::path)
        out += s;
      else
        out += in_string ? escaped_content(s) : v->dump();
    } else {
      std::string d = v->dump();
      out += (in_string && kind == TextKind::json) ? escaped_content(d) : d;
    }
    return {};
  });
  if (!st) return st.error();
  return out;
}

Result<std::string> Variables::stand_in(std::string_view text) {
  std::string out;
  TICKDB_TRY(walk(text, out, [&](const std::string&, bool) -> Status {
    out += '0';
    return {};
  }));
  return out;
}

}  // namespace tickdb::scenario
