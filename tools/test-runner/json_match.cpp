#include "tools/test-runner/json_match.h"

#include <string_view>
#include <variant>

#include "tools/test-runner/variables.h"

namespace tickdb::scenario {

using json = Json;

namespace {

constexpr std::string_view kTail = "...";

// Short text of a value for a reason: long values are cut (the whole answer is printed
// beside the mismatch anyway).
std::string brief(const json& v) {
  std::string s = v.dump();
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

bool is_directive(const json& e) {
  if (!e.is_string()) return false;
  const auto& s = e.get_ref<const std::string&>();
  return s.size() > 1 && s[0] == '$' && s[1] != '$';
}

std::optional<double> parse_number(std::string_view s) {
  json j = json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_number()) return std::nullopt;
  return j.get<double>();
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::discarded:
      return "discarded";
    default:
      return "number";
  }
}

struct Directive {
  enum Kind { any, absent, capture, type, compare, not_equal } kind = any;
  std::string arg;  // capture name, type name, comparison operator
  double number = 0;
  json value;  // $ne's value
};

// Parses "$..." (without checking that it is a directive: the caller did); error text or a
// directive.
std::variant<Directive, std::string> parse_directive(const std::string& s) {
  std::string_view d = std::string_view(s).substr(1);
  Directive r;
  if (d == "any") return r;
  if (d == "absent") {
    r.kind = Directive::absent;
    return r;
  }
  if (d.starts_with("=")) {
    r.kind = Directive::capture;
    r.arg = std::string(d.substr(1));
    if (!Variables::valid_name(r.arg)) return "bad capture name in \"" + s + "\"";
    return r;
  }
  for (std::string_view t : {"number", "string", "bool", "null", "array", "object"}) {
    if (d == t) {
      r.kind = Directive::type;
      r.arg = std::string(t);
      return r;
    }
  }
  for (std::string_view op : {"gt:", "ge:", "lt:", "le:"}) {
    if (d.starts_with(op)) {
      auto n = parse_number(d.substr(3));
      if (!n) return "\"" + s + "\" needs a number after '" + std::string(op) + "'";
      r.kind = Directive::compare;
      r.arg = std::string(op.substr(0, 2));
      r.number = *n;
      return r;
    }
  }
  if (d.starts_with("ne:")) {
    r.kind = Directive::not_equal;
    std::string_view v = d.substr(3);
    r.value = json::parse(v, nullptr, false);
    if (r.value.is_discarded()) r.value = std::string(v);
    return r;
  }
  return "unknown directive \"" + s + "\" (write \"$$...\" for a literal string starting with '$')";
}

class Matcher {
 public:
  MatchResult result;

  // False on the first mismatch (recorded in result).
  bool match(const json& e, const json& a, const std::string& path) {
    if (is_directive(e)) return match_directive(e.get_ref<const std::string&>(), a, path);
    if (e.is_string()) {
      const auto& s = e.get_ref<const std::string&>();
      if (s.starts_with("$$")) return equal(json(s.substr(1)), a, path);
      return equal(e, a, path);
    }
    if (e.is_object()) {
      if (!a.is_object()) return fail(path, "expected an object, got " + brief(a));
      for (const auto& [k, ev] : e.items()) {
        std::string kp = path + "." + k;
        auto it = a.find(k);
        if (is_directive(ev) && ev.get_ref<const std::string&>() == "$absent") {
          if (it != a.end()) return fail(kp, "expected no key '" + k + "', got " + brief(*it));
          continue;
        }
        if (it == a.end()) return fail(kp, "missing key '" + k + "'");
        if (!match(ev, *it, kp)) return false;
      }
      return true;
    }
    if (e.is_array()) {
      if (!a.is_array()) return fail(path, "expected an array, got " + brief(a));
      bool open =
          !e.empty() && e.back().is_string() && e.back().get_ref<const std::string&>() == kTail;
      std::size_t n = open ? e.size() - 1 : e.size();
      if (open ? a.size() < n : a.size() != n)
        return fail(path, "expected " + std::string(open ? "at least " : "") + std::to_string(n) +
                              " elements, got " + std::to_string(a.size()));
      for (std::size_t i = 0; i < n; ++i)
        if (!match(e[i], a[i], path + "[" + std::to_string(i) + "]")) return false;
      return true;
    }
    return equal(e, a, path);
  }

 private:
  bool fail(const std::string& path, std::string reason) {
    result.mismatch = Mismatch{path, std::move(reason)};
    return false;
  }

  bool equal(const json& e, const json& a, const std::string& path) {
    if (e == a) return true;
    return fail(path, "expected " + brief(e) + ", got " + brief(a));
  }

  bool match_directive(const std::string& s, const json& a, const std::string& path) {
    auto parsed = parse_directive(s);
    if (auto* err = std::get_if<std::string>(&parsed)) return fail(path, *err);
    const Directive& d = std::get<Directive>(parsed);
    switch (d.kind) {
      case Directive::any:
        return true;
      case Directive::absent:
        return fail(path, "\"$absent\" is for a key of an object, not a value");
      case Directive::capture:
        result.captures[d.arg] = a;
        return true;
      case Directive::type:
        if (d.arg == type_name(a)) return true;
        return fail(path, "expected a " + d.arg + ", got " + brief(a));
      case Directive::compare: {
        if (!a.is_number()) return fail(path, "expected a number (" + s + "), got " + brief(a));
        double x = a.get<double>();
        bool ok = d.arg == "gt"   ? x > d.number
                  : d.arg == "ge" ? x >= d.number
                  : d.arg == "lt" ? x < d.number
                                  : x <= d.number;
        if (ok) return true;
        return fail(path, "expected " + s.substr(1) + ", got " + brief(a));
      }
      case Directive::not_equal:
        if (a != d.value) return true;
        return fail(path, "expected anything but " + brief(d.value) + ", got " + brief(a));
    }
    return fail(path, "unhandled directive");
  }
};

void check(const json& e, std::optional<std::string>& err) {
  if (err) return;
  if (is_directive(e)) {
    auto parsed = parse_directive(e.get_ref<const std::string&>());
    if (auto* msg = std::get_if<std::string>(&parsed)) err = *msg;
    return;
  }
  if (e.is_object() || e.is_array())
    for (const auto& v : e) check(v, err);
}

}  // namespace

MatchResult match_json(const json& expected, const json& actual) {
  Matcher m;
  if (!m.match(expected, actual, "$")) m.result.captures.clear();
  return std::move(m.result);
}

std::optional<std::string> check_directives(const json& expected) {
  std::optional<std::string> err;
  check(expected, err);
  return err;
}

}  // namespace tickdb::scenario
