#include "tools/test-runner/scenario.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <nlohmann/json.hpp>

#include "tools/test-runner/json_match.h"
#include "tools/test-runner/variables.h"

namespace tickdb::scenario {

namespace {

constexpr std::array<std::string_view, 6> kMethods = {"GET",   "POST",   "PUT",
                                                      "PATCH", "DELETE", "HEAD"};
constexpr double kMaxWaitS = 600;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// The first word of `s` and the rest (trimmed).
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  s = trim(s);
  auto sp = s.find_first_of(" \t");
  if (sp == std::string_view::npos) return {s, {}};
  return {s.substr(0, sp), trim(s.substr(sp))};
}

bool skippable(std::string_view line) {
  line = trim(line);
  return line.empty() || line.front() == '#';
}

std::optional<double> parse_duration(std::string_view s) {
  std::size_t unit = s.find_first_not_of("0123456789.");
  if (unit == 0 || unit == std::string_view::npos) return std::nullopt;
  std::string_view num = s.substr(0, unit), u = s.substr(unit);
  double scale = u == "s" ? 1.0 : u == "ms" ? 0.001 : 0.0;
  if (scale == 0.0) return std::nullopt;
  auto j = nlohmann::json::parse(num, nullptr, false);
  if (j.is_discarded() || !j.is_number()) return std::nullopt;
  return j.get<double>() * scale;
}

std::optional<long long> parse_int(std::string_view s) {
  if (s.empty()) return std::nullopt;
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_number_integer()) return std::nullopt;
  return j.get<long long>();
}

// The first words of lines that are not JSON: a multi-line JSON part stops before them.
bool is_keyword(std::string_view w) {
  for (std::string_view k :
       {"expect", "rpc", "wait", "restart", "crash", "config", "module", "header"})
    if (w == k) return true;
  return std::find(kMethods.begin(), kMethods.end(), w) != kMethods.end();
}

class Parser {
 public:
  Parser(std::string_view text, std::string file) {
    result_.scenario.file = std::move(file);
    std::size_t start = 0;
    while (start <= text.size()) {
      auto nl = text.find('\n', start);
      if (nl == std::string_view::npos) nl = text.size();
      lines_.push_back(text.substr(start, nl - start));
      start = nl + 1;
    }
  }

  ParseResult run() {
    while (next_ < lines_.size()) {
      std::size_t i = next_++;
      if (skippable(lines_[i])) continue;
      line(static_cast<int>(i + 1), trim(lines_[i]));
    }
    // An empty scenario passing would hide a file that lost its steps.
    bool checks = std::any_of(sc().steps.begin(), sc().steps.end(),
                              [](const Step& s) { return s.kind != Step::Kind::header; });
    if (result_.errors.empty() && !checks) error(1, "no steps");
    return std::move(result_);
  }

 private:
  std::vector<std::string_view> lines_;
  std::size_t next_ = 0;  // the next line to read (0-based)
  ParseResult result_;

  Scenario& sc() { return result_.scenario; }
  void error(int line, std::string message) {
    result_.errors.push_back({line, std::move(message)});
  }

  void line(int no, std::string_view text) {
    auto [word, rest] = split_word(text);
    if (word == "config" || word == "module") return setup(no, word, rest);
    if (word == "restart" || word == "crash") {
      if (!rest.empty()) return error(no, "'" + std::string(word) + "' takes nothing after it");
      Step s;
      s.kind = word == "restart" ? Step::Kind::restart : Step::Kind::crash;
      s.line = no;
      sc().steps.push_back(std::move(s));
      return;
    }
    if (word == "header") return header(no, rest);
    if (word == "expect") return error(no, "'expect' without a request before it");
    std::optional<double> wait;
    if (word == "wait") {
      auto [d, req] = split_word(rest);
      wait = parse_duration(d);
      if (!wait || *wait <= 0 || *wait > kMaxWaitS) {
        skip_expect();
        return error(no, "'wait' needs a duration of at most 600s first: 500ms, 2s, 1.5s (got '" +
                             std::string(d) + "')");
      }
      if (req.empty()) {
        skip_expect();
        return error(no, "'wait " + std::string(d) + "' needs a request after it");
      }
      std::tie(word, rest) = split_word(req);
    }
    if (word == "rpc" || std::find(kMethods.begin(), kMethods.end(), word) != kMethods.end())
      return request(no, word, rest, wait);
    skip_expect();
    error(no, "unknown step '" + std::string(word) +
                  "': expected GET/POST/PUT/PATCH/DELETE/HEAD, rpc, wait, restart, crash, header, "
                  "config or module");
  }

  void header(int no, std::string_view rest) {
    auto colon = rest.find(':');
    std::string name(trim(rest.substr(0, colon == std::string_view::npos ? 0 : colon)));
    bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
    if (colon == std::string_view::npos || !token)
      return error(no, "'header' needs NAME: VALUE (an empty VALUE removes it)");
    Step s;
    s.kind = Step::Kind::header;
    s.line = no;
    s.header_name = name;
    s.header_value = std::string(trim(rest.substr(colon + 1)));
    sc().steps.push_back(std::move(s));
  }

  // After a step too broken to read: its expect line (if any) goes with it, unread.
  void skip_expect() {
    std::size_t k = next_;
    while (k < lines_.size() && skippable(lines_[k])) ++k;
    if (k < lines_.size() && split_word(lines_[k]).first == "expect") next_ = k + 1;
  }

  void setup(int no, std::string_view word, std::string_view rest) {
    if (!sc().steps.empty())
      return error(no, "'" + std::string(word) + "' must come before the first step");
    if (sc().setup_line == 0) sc().setup_line = no;
    if (rest.empty()) return error(no, "'" + std::string(word) + "' needs an argument");
    if (word == "module") {
      sc().modules.emplace_back(rest);
      return;
    }
    auto eq = rest.find('=');
    std::string key(trim(rest.substr(0, eq == std::string_view::npos ? 0 : eq)));
    auto dot = key.find('.');
    if (eq == std::string_view::npos || dot == std::string::npos || dot == 0 ||
        dot + 1 == key.size())
      return error(no, "'config' needs section.key=value (got '" + std::string(rest) + "')");
    if (key == "http.port" || key == "storage.data_dir")
      return error(no, "'config " + key + "' is the runner's own (a free port, a temp data dir)");
    sc().sets.push_back(key + "=" + std::string(trim(rest.substr(eq + 1))));
  }

  // The JSON text that starts with `first` on line `no`, going on over the next lines until
  // its brackets close. Empty optional after reporting an error.
  std::optional<std::string> json_part(int no, std::string_view first, bool directives) {
    std::string text(first);
    int depth = 0;
    bool in_string = false;
    auto scan = [&](std::string_view s) {
      for (std::size_t k = 0; k < s.size(); ++k) {
        char c = s[k];
        if (in_string) {
          if (c == '\\')
            ++k;
          else if (c == '"')
            in_string = false;
        } else if (c == '"') {
          in_string = true;
        } else if (c == '$' && k + 1 < s.size() && s[k + 1] == '{') {
          auto close = s.find('}', k);
          k = close == std::string_view::npos ? s.size() : close;
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          --depth;
        }
      }
    };
    scan(first);
    while ((depth > 0 || in_string) && next_ < lines_.size()) {
      std::string_view more = lines_[next_];
      if (!in_string && is_keyword(split_word(more).first)) {
        error(no, "JSON not closed before line " + std::to_string(next_ + 1) +
                      " (which starts a step)");
        return std::nullopt;
      }
      ++next_;
      text += '\n';
      text += more;
      scan(more);
    }
    if (depth > 0 || in_string) {
      error(no, "JSON not closed by the end of the file");
      return std::nullopt;
    }
    auto probe = Variables::stand_in(text);
    if (!probe) {
      error(no, probe.message());
      return std::nullopt;
    }
    try {
      auto j = nlohmann::json::parse(*probe);
      if (directives) {
        if (auto bad = check_directives(j)) {
          error(no, *bad);
          return std::nullopt;
        }
      }
    } catch (const nlohmann::json::parse_error& e) {
      std::string what = e.what();
      auto colon = what.find("]: ");  // drop nlohmann's "[json.exception.parse_error.101] "
      error(no, "bad JSON: " + (colon == std::string::npos ? what : what.substr(colon + 3)));
      return std::nullopt;
    }
    return text;
  }

  void request(int no, std::string_view word, std::string_view rest, std::optional<double> wait) {
    Step s;
    s.line = no;
    Exchange& x = s.exchange;
    x.wait_s = wait;
    auto [target, body] = split_word(rest);
    bool ok = true;  // false: the step is bad, but its expect line is still read
    if (word == "rpc") {
      if (target.empty()) {
        error(no, "'rpc' needs a method name");
        ok = false;
      }
      x.method = "POST";
      x.target = "/rpc";
      x.rpc_method = target.empty() ? "?" : std::string(target);
    } else if (target.empty() || target.front() != '/') {
      error(no, std::string(word) + " needs a path starting with '/'");
      ok = false;
    } else {
      x.method = std::string(word);
      x.target = std::string(target);
    }
    if (ok && !body.empty()) {
      auto [first, raw] = split_word(body);
      if (first == "raw" && x.rpc_method.empty()) {
        x.body = std::string(raw);  // sent as written: for bad_json and such
      } else if (auto j = json_part(no, body, false)) {
        x.body = *j;
      } else {
        ok = false;
      }
    }
    // The expect line.
    while (next_ < lines_.size() && skippable(lines_[next_])) ++next_;
    if (next_ == lines_.size() || split_word(lines_[next_]).first != "expect")
      return error(no, "a request needs an 'expect' line after it");
    int eno = static_cast<int>(++next_);
    x.expect_line = eno;
    auto [kind, erest] = split_word(split_word(lines_[eno - 1]).second);
    if (kind == "result" || kind == "error") {
      if (x.rpc_method.empty())
        return error(eno, "'expect " + std::string(kind) + "' is for rpc steps");
      x.expect = kind == "result" ? Exchange::Expect::rpc_result : Exchange::Expect::rpc_error;
      if (kind == "error") {
        auto [code, crest] = split_word(erest);
        auto c = parse_int(code);
        if (!c) return error(eno, "'expect error' needs a JSON-RPC error code: -32000, -32601");
        x.expect_rpc_code = *c;
        erest = crest;
      }
    } else {
      auto st = parse_int(kind);
      if (!st || *st < 100 || *st > 599)
        return error(eno,
                     "'expect' needs an HTTP status (or, for rpc, 'result' or 'error'); got '" +
                         std::string(kind) + "'");
      x.expect_status = static_cast<int>(*st);
    }
    if (!erest.empty()) {
      auto j = json_part(eno, erest, true);
      if (!j) return;
      x.expect_body = *j;
    }
    if (ok) sc().steps.push_back(std::move(s));
  }
};

}  // namespace

ParseResult parse_scenario(std::string_view text, std::string file) {
  return Parser(text, std::move(file)).run();
}

}  // namespace tickdb::scenario
