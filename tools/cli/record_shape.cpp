#include "tools/cli/record_shape.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>

#include "tools/cli/exit_codes.h"

namespace tickdb::cli {

namespace {

bool is_int_type(const std::string& t) {
  return t.size() >= 2 && (t[0] == 'i' || t[0] == 'u');
}

// [min, max] of an integer type, as signed/unsigned 64-bit bounds.
void int_range(const std::string& t, long long& lo, unsigned long long& hi) {
  const int bits = std::stoi(t.substr(1));
  if (t[0] == 'u') {
    lo = 0;
    hi = bits == 64 ? std::numeric_limits<unsigned long long>::max() : (1ull << bits) - 1;
  } else {
    lo = bits == 64 ? std::numeric_limits<long long>::min() : -(1ll << (bits - 1));
    hi = bits == 64 ? static_cast<unsigned long long>(std::numeric_limits<long long>::max())
                    : (1ull << (bits - 1)) - 1;
  }
}

[[noreturn]] void fail(const std::string& msg) {
  throw std::invalid_argument(msg);
}

}  // namespace

json cell_to_json(const std::string& cell, const std::string& type, int size) {
  if (type == "str") {
    if (static_cast<int>(cell.size()) > size)
      fail("string of " + std::to_string(cell.size()) + " bytes, longer than " +
           std::to_string(size));
    return cell;
  }
  if (type == "bool") {
    if (cell == "true" || cell == "1") return true;
    if (cell == "false" || cell == "0" || cell.empty()) return false;
    fail("'" + cell + "' is not a bool");
  }
  if (cell.empty()) return 0;
  const char* b = cell.data();
  const char* e = b + cell.size();
  if (is_int_type(type)) {
    long long lo;
    unsigned long long hi;
    int_range(type, lo, hi);
    if (cell[0] == '-') {
      long long v;
      auto [p, ec] = std::from_chars(b, e, v);
      if (ec != std::errc() || p != e || v < lo) fail("'" + cell + "' is not a " + type);
      return v;
    }
    unsigned long long v;
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || p != e || v > hi) fail("'" + cell + "' is not a " + type);
    return v;
  }
  if (type == "f32" || type == "f64") {
    char* end = nullptr;
    const double v = std::strtod(cell.c_str(), &end);
    if (end != cell.c_str() + cell.size() || !std::isfinite(v))
      fail("'" + cell + "' is not a finite number");
    return v;
  }
  fail("unknown type " + type);
}

void check_scalar(const json& v, const std::string& type, int size) {
  if (type == "str") {
    if (!v.is_string()) fail("expected a string");
    if (static_cast<int>(v.get_ref<const std::string&>().size()) > size)
      fail("string longer than " + std::to_string(size) + " bytes");
    return;
  }
  if (type == "bool") {
    if (!v.is_boolean()) fail("expected true or false");
    return;
  }
  if (!v.is_number()) fail("expected a number");
  if (type == "f32" || type == "f64") return;  // JSON has no NaN/Infinity
  long long lo;
  unsigned long long hi;
  int_range(type, lo, hi);
  if (v.is_number_unsigned()) {
    if (v.get<unsigned long long>() > hi) fail("out of range for " + type);
  } else if (v.is_number_integer()) {
    if (v.get<long long>() < lo) fail("out of range for " + type);
  } else {
    const double d = v.get<double>();
    if (d != std::floor(d)) fail("expected an integer for " + type);
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
      fail("out of range for " + type);
  }
}

RecordShape::RecordShape(const json& table, const json& types) {
  std::map<std::string, const json*> by_name;
  for (const auto& t : types) by_name[t.at("name").get<std::string>()] = &t;
  // Recursion with a depth bound: the node refuses cycles, the bound guards a confused answer.
  std::function<std::vector<Node>(const json&, int)> build = [&](const json& fields, int depth) {
    std::vector<Node> out;
    for (const auto& f : fields) {
      Node n;
      n.name = f.at("name").get<std::string>();
      n.type = f.at("type").get<std::string>();
      n.size = f.value("size", 0);
      static const char* kBuiltins[] = {"bool", "i8",  "i16", "i32", "i64", "u8",
                                        "u16",  "u32", "u64", "f32", "f64", "str"};
      bool builtin = false;
      for (const char* b : kBuiltins) builtin = builtin || n.type == b;
      if (!builtin) {
        auto it = by_name.find(n.type);
        if (it == by_name.end() || depth > 32)
          throw CliError(kExitServerError, "unknown composite type '" + n.type + "'");
        n.fields = build(it->second->at("fields"), depth + 1);
      }
      out.push_back(std::move(n));
    }
    return out;
  };
  tree_ = build(table.at("fields"), 0);
  std::function<void(const std::vector<Node>&, std::vector<std::string>&)> flatten =
      [&](const std::vector<Node>& nodes, std::vector<std::string>& path) {
        for (const auto& n : nodes) {
          path.push_back(n.name);
          if (n.fields.empty()) {  // a built-in scalar
            Leaf l{path, "", n.type, n.size};
            for (std::size_t i = 0; i < path.size(); ++i) l.dotted += (i ? "." : "") + path[i];
            leaves_.push_back(std::move(l));
          } else {
            flatten(n.fields, path);
          }
          path.pop_back();
        }
      };
  std::vector<std::string> path;
  flatten(tree_, path);
}

std::vector<std::string> RecordShape::header() const {
  std::vector<std::string> h{"id"};
  for (const auto& l : leaves_) h.push_back(l.dotted);
  return h;
}

std::vector<std::string> RecordShape::to_cells(const json& record) const {
  std::vector<std::string> cells;
  cells.reserve(leaves_.size() + 1);
  const auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  cells.push_back(record.contains("id") ? text(record["id"]) : std::string());
  for (const auto& l : leaves_) {
    const json* v = &record;
    for (const auto& p : l.path) {
      auto it = v->find(p);
      if (it == v->end()) {
        v = nullptr;
        break;
      }
      v = &*it;
    }
    cells.push_back(v ? text(*v) : std::string());
  }
  return cells;
}

std::vector<int> RecordShape::columns_of(const std::vector<std::string>& header) const {
  std::vector<int> cols;
  for (const auto& h : header) {
    if (h == "id") {
      cols.push_back(-1);
      continue;
    }
    int found = -2;
    for (std::size_t i = 0; i < leaves_.size(); ++i)
      if (leaves_[i].dotted == h) found = static_cast<int>(i);
    if (found == -2) fail("unknown column '" + h + "'");
    cols.push_back(found);
  }
  return cols;
}

json RecordShape::from_cells(const std::vector<int>& columns,
                             const std::vector<std::string>& cells) const {
  if (cells.size() != columns.size())
    fail(std::to_string(cells.size()) + " fields where the header has " +
         std::to_string(columns.size()));
  json rec = json::object();
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (columns[i] == -1) {
      if (!cells[i].empty()) rec["id"] = cell_to_json(cells[i], "u64", 8);
      continue;
    }
    const Leaf& l = leaves_[columns[i]];
    json* at = &rec;
    for (std::size_t k = 0; k + 1 < l.path.size(); ++k) at = &(*at)[l.path[k]];
    try {
      (*at)[l.path.back()] = cell_to_json(cells[i], l.type, l.size);
    } catch (const std::invalid_argument& e) {
      fail("column '" + l.dotted + "': " + e.what());
    }
  }
  return rec;
}

void RecordShape::check(const json& record) const {
  if (!record.is_object()) fail("expected a JSON object");
  if (auto it = record.find("id"); it != record.end()) {
    try {
      check_scalar(*it, "u64", 8);
    } catch (const std::invalid_argument& e) {
      fail(std::string("id: ") + e.what());
    }
  }
  check_node(tree_, record, "");
}

void RecordShape::check_node(const std::vector<Node>& fields, const json& v,
                             const std::string& where) const {
  if (!v.is_object()) fail((where.empty() ? "record" : where) + ": expected an object");
  for (const auto& [k, val] : v.items()) {
    if (where.empty() && k == "id") continue;
    const Node* n = nullptr;
    for (const auto& f : fields)
      if (f.name == k) n = &f;
    const std::string path = where.empty() ? k : where + "." + k;
    if (!n) fail("unknown field '" + path + "'");
    if (!n->fields.empty()) {
      check_node(n->fields, val, path);
      continue;
    }
    try {
      check_scalar(val, n->type, n->size);
    } catch (const std::invalid_argument& e) {
      fail(path + ": " + e.what());
    }
  }
}

}  // namespace tickdb::cli
