#include "http/route_table.h"

namespace tickdb {

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding into `out`; false on a malformed escape.
bool decode(std::string_view s, bool plus_is_space, std::string& out) {
  out.clear();
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return false;
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return true;
}

// Calls fn with each non-empty segment of a '/'-separated path.
template <class Fn>
void for_each_segment(std::string_view path, Fn fn) {
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    fn(path.substr(i, j - i));
    i = j;
  }
}

Error invalid(std::string msg) {
  return make_error(Errc::invalid_argument, std::move(msg));
}

}  // namespace

Result<Target> parse_target(std::string_view target) {
  if (target.empty() || target[0] != '/') return invalid("malformed request target");
  const auto qpos = target.find('?');
  const std::string_view path = target.substr(0, qpos);
  Target t;
  bool bad = false;
  for_each_segment(path, [&](std::string_view seg) {
    // Each segment is decoded on its own, so an encoded '/' stays inside its segment.
    if (seg.find('%') == std::string_view::npos) {
      t.segments.emplace_back(seg);
    } else {
      std::string d;
      bad = bad || !decode(seg, false, d);
      t.segments.push_back(std::move(d));
    }
  });
  if (bad) return invalid("malformed percent-encoding in the path");
  if (qpos == std::string_view::npos) return t;
  const std::string_view qs = target.substr(qpos + 1);
  std::size_t i = 0;
  while (i < qs.size()) {
    auto j = qs.find('&', i);
    if (j == std::string_view::npos) j = qs.size();
    const std::string_view kv = qs.substr(i, j - i);
    if (!kv.empty()) {
      const auto eq = kv.find('=');
      std::string k, v;
      if (!decode(kv.substr(0, eq), true, k) ||
          !decode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1), true, v))
        return invalid("malformed query string");
      if (t.query.count(k)) return invalid("query parameter '" + k.substr(0, 40) + "' given twice");
      t.query.emplace(std::move(k), std::move(v));
    }
    i = j + 1;
  }
  return t;
}

RouteTable::RouteTable()
    : names_{"unknown", "baseline", "rejected", "invalid", "not_found", "method_not_allowed"} {}

void RouteTable::add(std::string method, std::string pattern, std::string summary, int ok_status,
                     Handler h) {
  HttpRoute r;
  r.id = static_cast<RouteId>(names_.size());
  r.method = std::move(method);
  for_each_segment(pattern, [&](std::string_view seg) { r.pattern.emplace_back(seg); });
  r.pattern_text = std::move(pattern);
  r.summary = std::move(summary);
  r.ok_status = ok_status;
  r.handler = std::move(h);
  names_.push_back(r.method + " " + r.pattern_text);
  routes_.push_back(std::move(r));
}

RouteTable::Match RouteTable::match(std::string_view method,
                                    const std::vector<std::string>& segments) const {
  Match m;
  const std::string_view want = method == "HEAD" ? std::string_view("GET") : method;
  for (const auto& r : routes_) {
    if (r.pattern.size() != segments.size()) continue;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i)
      ok = r.pattern[i].front() == '{' || r.pattern[i] == segments[i];
    if (!ok) continue;
    if (r.method == want) {
      m.route = &r;
      for (std::size_t i = 0; i < segments.size(); ++i)
        if (r.pattern[i].front() == '{') m.params.push_back(segments[i]);
      m.allow.clear();
      return m;
    }
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += r.method;
    if (r.method == "GET") m.allow += ", HEAD";
  }
  return m;
}

}  // namespace tickdb
