#include "tools/cli/table_printer.h"

#include <algorithm>

namespace tickdb::cli {

namespace {

bool looks_numeric(const std::string& s) {
  if (s.empty()) return false;
  std::size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  return s.find_first_not_of("0123456789.eE+-", i) == std::string::npos &&
         (s[i] >= '0' && s[i] <= '9');
}

// `hp:i32 name:str16 pos:vec3` for an array of field specs; empty when it is not one.
std::string field_list(const json& a) {
  if (!a.is_array()) return {};
  std::string out;
  for (const auto& f : a) {
    if (!f.is_object() || !f.contains("name") || !f.contains("type") || !f["type"].is_string() ||
        !f.contains("offset"))
      return {};
    if (!out.empty()) out += ' ';
    out += f["name"].get<std::string>() + ':' + f["type"].get<std::string>();
    if (f["type"] == "str" && f.contains("size")) out += f["size"].dump();
  }
  return out.empty() ? "-" : out;
}

std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  if (v.is_array()) {
    if (auto fl = field_list(v); !fl.empty()) return fl;
    bool scalars = true;
    for (const auto& e : v) scalars = scalars && !e.is_structured();
    if (scalars) {
      std::string out;
      for (const auto& e : v)
        out += (out.empty() ? "" : ",") + (e.is_string() ? e.get<std::string>() : e.dump());
      return out.empty() ? "-" : out;
    }
    // Arrays of objects inside a row (a table's indexes): their names if they have them.
    std::string out;
    for (const auto& e : v) {
      if (!e.is_object() || !e.contains("name")) return v.dump();
      out += (out.empty() ? "" : ",") + scalar_text(e["name"]);
    }
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

// Leaves of an object, dotted; arrays stay whole.
void flatten(const json& v, const std::string& prefix,
             std::vector<std::pair<std::string, const json*>>& out) {
  for (const auto& [k, val] : v.items()) {
    const std::string key = prefix.empty() ? k : prefix + "." + k;
    if (val.is_object() && !val.empty())
      flatten(val, key, out);
    else
      out.emplace_back(key, &val);
  }
}

bool is_object_array(const json& v) {
  if (!v.is_array() || v.empty()) return false;
  for (const auto& e : v)
    if (!e.is_object()) return false;
  return true;
}

}  // namespace

// Columns a code point takes on a terminal: 0 for combining marks, 2 for East Asian wide
// and fullwidth forms and emoji, else 1 (the locale-free core of wcwidth).
int code_point_width(char32_t c) {
  if ((c >= 0x300 && c <= 0x36F) || (c >= 0x200B && c <= 0x200F) || c == 0xFE0F) return 0;
  if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) ||
      (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
      (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
      (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
      (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD))
    return 2;
  return 1;
}

std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    const int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
    char32_t c = len == 1 ? b : b & (0x7F >> len);
    for (int k = 1; k < len && i + k < s.size(); ++k)
      c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    n += static_cast<std::size_t>(code_point_width(c));
    i += static_cast<std::size_t>(len);
  }
  return n;
}

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  const std::size_t cols = header.size();
  std::vector<std::size_t> width(cols);
  std::vector<bool> right(cols, !rows.empty());
  for (std::size_t c = 0; c < cols; ++c) width[c] = display_width(header[c]);
  for (const auto& r : rows)
    for (std::size_t c = 0; c < cols && c < r.size(); ++c) {
      width[c] = std::max(width[c], display_width(r[c]));
      if (!looks_numeric(r[c]) && r[c] != "-") right[c] = false;
    }
  const auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (std::size_t c = 0; c < cols; ++c) {
      const std::string& cell = c < r.size() ? r[c] : std::string();
      const std::string pad(width[c] - display_width(cell), ' ');
      if (c) s += "  ";
      s += right[c] ? pad + cell : cell + (c + 1 < cols ? pad : "");
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(header);
  std::vector<std::string> rule;
  for (std::size_t c = 0; c < cols; ++c) rule.emplace_back(width[c], '-');
  line(rule);
  for (const auto& r : rows) line(r);
}

void print_objects(std::ostream& out, const json& array) {
  std::vector<std::string> header;
  std::vector<std::vector<std::pair<std::string, const json*>>> flat;
  for (const auto& e : array) {
    flat.emplace_back();
    flatten(e, "", flat.back());
    for (const auto& [k, v] : flat.back())
      if (std::find(header.begin(), header.end(), k) == header.end()) header.push_back(k);
  }
  // `id` first where there is one: records read best that way.
  if (auto it = std::find(header.begin(), header.end(), "id"); it != header.end())
    std::rotate(header.begin(), it, it + 1);
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : flat) {
    std::vector<std::string> row(header.size());
    for (std::size_t c = 0; c < header.size(); ++c) {
      auto it =
          std::find_if(f.begin(), f.end(), [&](const auto& p) { return p.first == header[c]; });
      row[c] = it == f.end() ? "" : scalar_text(*it->second);
    }
    rows.push_back(std::move(row));
  }
  print_table(out, header, rows);
}

void print_human(std::ostream& out, const json& v) {
  if (!v.is_object()) {
    if (is_object_array(v))
      print_objects(out, v);
    else if (v.is_array() && v.empty())
      out << "(none)\n";
    else
      out << scalar_text(v) << '\n';
    return;
  }
  // Scalars and small objects as aligned key/value lines, arrays of objects as tables after.
  std::vector<std::pair<std::string, const json*>> flat;
  flatten(v, "", flat);
  std::vector<std::pair<std::string, const json*>> tables;
  std::size_t key_width = 0;
  for (const auto& [k, val] : flat)
    if (!(is_object_array(*val) && field_list(*val).empty()) &&
        !(val->is_array() && val->empty() && flat.size() == 1))
      key_width = std::max(key_width, display_width(k));
  for (const auto& [k, val] : flat) {
    if (is_object_array(*val) && field_list(*val).empty()) {
      tables.emplace_back(k, val);
      continue;
    }
    if (val->is_array() && val->empty() && flat.size() == 1) {
      out << "(no " << k << ")\n";
      continue;
    }
    out << k << ':' << std::string(key_width - display_width(k) + 1, ' ') << scalar_text(*val)
        << '\n';
  }
  for (const auto& [k, val] : tables) {
    // A lone list (`{"tables": [...]}`) is the answer itself: no title.
    if (flat.size() > 1) out << '\n' << k << ":\n";
    print_objects(out, *val);
  }
}

}  // namespace tickdb::cli
