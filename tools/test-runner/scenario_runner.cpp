#include "tools/test-runner/scenario_runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "tools/test-runner/json_match.h"
#include "tools/test-runner/node_process.h"
#include "tools/test-runner/variables.h"

namespace tickdb::scenario {

namespace fs = std::filesystem;
using json = Json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxShown = 4000;  // bytes of a body shown in a failure

std::string seconds(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

std::string shown(std::string_view body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
  if (body.empty()) return "(no body)";
  if (body.size() <= kMaxShown) return std::string(body);
  return std::string(body.substr(0, kMaxShown)) + "... (" + std::to_string(body.size()) + " bytes)";
}

// A step's failure, as printed: what was expected, what came, and where they differ.
struct Failure {
  std::string what;      // one line: "POST /rpc spawn" or "restart"
  std::string expected;  // "201 {...}" (empty: not an exchange)
  std::string actual;
  std::string reason;  // the mismatch, or why there was nothing to compare
  bool show_node_output = false;
};

// The runner of one scenario: its variables, its node, its client.
class Run {
 public:
  Run(const Scenario& sc, const RunOptions& o, std::ostream& out) : sc_(sc), o_(o), out_(out) {
    for (const auto& [k, v] : o.vars) vars_.set(k, v);
    vars_.set("SCENARIO_DIR", fs::absolute(fs::path(sc.file)).parent_path().string());
  }

  Tally go() {
    Tally t;
    if (auto f = start_node()) {
      report(sc_.setup_line ? sc_.setup_line : 1, *f);
      t.failed = 1;
      t.skipped = checks(0);
      cleanup();
      return t;
    }
    std::size_t i = 0;
    for (; i < sc_.steps.size(); ++i) {
      const Step& s = sc_.steps[i];
      if (interrupted()) {
        out_ << "  interrupted before " << sc_.file << ":" << s.line << "\n";
        break;
      }
      auto began = Clock::now();
      if (auto f = run_step(s)) {
        report(s.line, *f);
        ++t.failed;
        ++i;
        break;
      }
      if (s.kind == Step::Kind::header) continue;  // not a check
      ++t.passed;
      if (o_.verbose)
        out_ << "  ok " << sc_.file << ":" << s.line << ": " << step_text(s) << " ("
             << ms_since(began) << " ms)\n";
    }
    t.skipped = checks(i);
    if (node_ && node_->pid() > 0) {  // (a node found gone in a step failed that step)
      auto e = node_->stop();
      if (!WIFEXITED(e.status) || WEXITSTATUS(e.status) != 0) {
        // Counted only as the scenario's first failure: a failed step may be its cause.
        out_ << "FAIL " << sc_.file << ": the node did not stop cleanly: " << e.text() << "\n"
             << node_->output_tail(15);
        if (t.failed == 0) ++t.failed;
      }
    }
    node_.reset();
    cleanup();
    return t;
  }

 private:
  const Scenario& sc_;
  const RunOptions& o_;
  std::ostream& out_;
  Variables vars_;
  HttpClient client_;
  HttpClient::Headers headers_;  // from `header` lines, for every call after them
  std::unique_ptr<NodeProcess> node_;
  NodeProcess::Options node_options_;
  std::string data_dir_;
  long long rpc_id_ = 0;

  bool interrupted() const { return o_.interrupted && *o_.interrupted; }

  // The steps from `from` on that are checks (all but `header` lines).
  int checks(std::size_t from) const {
    return static_cast<int>(
        std::count_if(sc_.steps.begin() + static_cast<std::ptrdiff_t>(from), sc_.steps.end(),
                      [](const Step& s) { return s.kind != Step::Kind::header; }));
  }

  static long long ms_since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
  }

  std::string step_text(const Step& s) const {
    if (s.kind == Step::Kind::restart) return "restart";
    if (s.kind == Step::Kind::crash) return "crash";
    const Exchange& x = s.exchange;
    std::string t = x.wait_s ? "wait " + seconds(*x.wait_s) + "s " : "";
    return t + (x.rpc_method.empty() ? x.method + " " + x.target : "rpc " + x.rpc_method);
  }

  void report(int line, const Failure& f) {
    out_ << "FAIL " << sc_.file << ":" << line << ": " << f.what << "\n";
    if (!f.expected.empty()) {
      out_ << "  expected: " << f.expected << "\n";
      out_ << "  actual:   " << f.actual << "\n";
    }
    if (!f.reason.empty()) out_ << "  " << f.reason << (f.reason.ends_with('\n') ? "" : "\n");
    if (node_ && (f.show_node_output || o_.verbose))
      out_ << "  the node's last output:\n" << node_->output_tail(15);
  }

  void cleanup() {
    if (data_dir_.empty()) return;
    if (o_.keep) {
      out_ << "  kept the data dir of " << sc_.file << ": " << data_dir_ << "\n";
    } else {
      std::error_code ec;
      fs::remove_all(data_dir_, ec);
    }
  }

  // A `module NAME`: an existing path as written, or NAME / libNAME.so in a module dir, the
  // scenario's dir or the working dir.
  std::optional<std::string> resolve_module(const std::string& name, std::string& looked) const {
    fs::path p(name);
    if (p.is_absolute()) {
      looked = name;
      if (fs::is_regular_file(p)) return name;
      return std::nullopt;
    }
    std::vector<fs::path> dirs;
    for (const auto& d : o_.module_dirs) dirs.emplace_back(d);
    dirs.push_back(fs::absolute(fs::path(sc_.file)).parent_path());
    dirs.push_back(fs::current_path());
    for (const auto& d : dirs) {
      for (const fs::path& cand : {d / p, d / ("lib" + name + ".so")}) {
        looked += (looked.empty() ? "" : ", ") + cand.string();
        if (fs::is_regular_file(cand)) return fs::absolute(cand).string();
      }
    }
    return std::nullopt;
  }

  // Empty on success.
  std::optional<Failure> start_node() {
    if (o_.url) {
      client_.set_endpoint(*o_.url);
      if (!sc_.sets.empty() || !sc_.modules.empty())
        out_ << "  note: " << sc_.file << ": --url: its config and module lines are ignored\n";
      return std::nullopt;
    }
    node_options_.server = o_.server;
    node_options_.start_timeout_s = o_.start_timeout_s;
    node_options_.sets = o_.sets;
    for (const auto& s : sc_.sets) {
      auto v = vars_.substitute(s, TextKind::json);
      if (!v) return Failure{"config " + s, "", "", v.message()};
      node_options_.sets.push_back(*v);
    }
    json modules = json::array();
    for (const auto& m : sc_.modules) {
      auto name = vars_.substitute(m, TextKind::path);
      if (!name) return Failure{"module " + m, "", "", name.message()};
      std::string looked;
      auto path = resolve_module(*name, looked);
      if (!path) return Failure{"module " + m, "", "", "not found; looked for " + looked};
      modules.push_back(*path);
    }
    if (!modules.empty()) node_options_.sets.push_back("procedures.modules=" + modules.dump());
    std::string tmpl =
        (fs::temp_directory_path() / "tickdb-scenario-XXXXXX").string();  // honours TMPDIR
    if (!mkdtemp(tmpl.data()))
      return Failure{"start the node", "", "", std::string("mkdtemp: ") + std::strerror(errno)};
    data_dir_ = tmpl;
    node_options_.data_dir = data_dir_;
    if (o_.node_output)
      node_options_.echo = [](const std::string& line) { std::cerr << ("node| " + line + "\n"); };
    return launch("start the node");
  }

  std::optional<Failure> launch(const std::string& what) {
    auto n = NodeProcess::start(node_options_);
    if (!n) return Failure{what, "", "", n.message()};
    node_ = std::move(*n);
    client_.set_endpoint({"127.0.0.1", node_->port()});
    if (o_.verbose)
      out_ << "  node pid " << node_->pid() << " listening on " << client_.endpoint().url()
           << " (data dir " << data_dir_ << ")" << std::endl;  // flushed: tools watch for it
    return std::nullopt;
  }

  std::optional<Failure> set_header(const Step& s) {
    auto v = vars_.substitute(s.header_value, TextKind::path);
    if (!v) return Failure{"header " + s.header_name, "", "", v.message()};
    std::erase_if(headers_, [&](const auto& h) { return h.first == s.header_name; });
    if (!v->empty()) headers_.emplace_back(s.header_name, *v);
    return std::nullopt;
  }

  std::optional<Failure> run_step(const Step& s) {
    if (s.kind == Step::Kind::exchange) return exchange(s.exchange);
    if (s.kind == Step::Kind::header) return set_header(s);
    const bool crash = s.kind == Step::Kind::crash;
    std::string what = crash ? "crash" : "restart";
    if (!node_) return Failure{what, "", "", what + " needs a node the runner started (not --url)"};
    pid_t old = node_->pid();
    auto e = crash ? node_->kill() : node_->stop();
    bool as_expected = crash ? (WIFSIGNALED(e.status) && WTERMSIG(e.status) == SIGKILL)
                             : (WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0);
    if (!as_expected) {
      Failure f{what, "", "",
                "the node (pid " + std::to_string(old) + ") " + e.text() +
                    (crash ? "" : "; a graceful stop exits 0")};
      f.show_node_output = true;
      return f;
    }
    node_.reset();
    if (o_.verbose) out_ << "  " << what << ": node pid " << old << " " << e.text() << "\n";
    return launch(what + ": start again on the same data dir");
  }

  // The request's body and the pattern its answer must match, with variables substituted.
  struct Prepared {
    std::string target, body;
    int status = 200;
    std::optional<json> pattern;
  };

  Result<Prepared> prepare(const Exchange& x) {
    Prepared p;
    auto target = vars_.substitute(x.target, TextKind::path);
    if (!target) return target.error();
    p.target = *target;
    auto body = vars_.substitute(x.body, TextKind::json);
    if (!body) return body.error();
    p.body = *body;
    std::optional<json> expect;
    if (!x.expect_body.empty()) {
      auto e = vars_.substitute(x.expect_body, TextKind::json);
      if (!e) return e.error();
      expect = json::parse(*e, nullptr, false);
      if (expect->is_discarded())
        return make_error(Errc::invalid_argument,
                          "the expectation is not JSON with the variables in it: " + *e);
    }
    p.status = x.expect_status;
    p.pattern = expect;
    if (x.rpc_method.empty()) return p;

    json env = {{"jsonrpc", "2.0"}, {"id", ++rpc_id_}, {"method", x.rpc_method}};
    if (!p.body.empty()) {
      json params = json::parse(p.body, nullptr, false);
      if (params.is_discarded())
        return make_error(Errc::invalid_argument,
                          "the params are not JSON with the variables in it: " + p.body);
      env["params"] = std::move(params);
    }
    p.body = env.dump();
    if (x.expect == Exchange::Expect::rpc_result) {
      p.status = 200;
      p.pattern = json{{"result", expect ? *expect : json("$any")}, {"error", "$absent"}};
    } else if (x.expect == Exchange::Expect::rpc_error) {
      p.status = 200;
      if (expect && !expect->is_object())
        return make_error(Errc::invalid_argument,
                          "'expect error CODE' takes an object to match the error with");
      json err = {{"code", x.expect_rpc_code}};  // first: it prints first
      if (expect)
        for (const auto& [k, v] : expect->items()) err[k] = v;
      p.pattern = json{{"error", std::move(err)}, {"result", "$absent"}};
    }
    return p;
  }

  // Empty when the answer matches; else why not. Captures on a match.
  std::optional<std::string> check(const Prepared& p, const HttpResponse& r,
                                   std::map<std::string, json>& captures) {
    if (r.status != p.status)
      return "status: expected " + std::to_string(p.status) + ", got " + std::to_string(r.status);
    if (!p.pattern) return std::nullopt;
    json actual = json::parse(r.body, nullptr, false);
    if (actual.is_discarded())
      return r.body.empty() ? "body: expected JSON, got no body" : "body: not JSON";
    auto m = match_json(*p.pattern, actual);
    if (!m.ok()) return "body: at " + m.mismatch->path + ": " + m.mismatch->reason;
    captures = std::move(m.captures);
    return std::nullopt;
  }

  std::optional<Failure> exchange(const Exchange& x) {
    std::string what = x.rpc_method.empty() ? x.method + " " + x.target : "rpc " + x.rpc_method;
    if (x.wait_s) what = "wait " + seconds(*x.wait_s) + "s " + what;
    auto p = prepare(x);
    if (!p) return Failure{what, "", "", p.message()};
    Failure f;
    f.what = what;
    f.expected =
        std::to_string(p->status) + (p->pattern ? " " + p->pattern->dump() : " (any body)");
    const auto began = Clock::now();
    const auto deadline = began + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(x.wait_s.value_or(0)));
    int tries = 0;
    auto pause = std::chrono::milliseconds(5);
    for (;;) {
      ++tries;
      // A wait's tries end with it: each may take what is left of the wait (at least 50 ms).
      double timeout = o_.request_timeout_s;
      if (x.wait_s)
        timeout = std::min(
            timeout,
            std::max(0.05, std::chrono::duration<double>(deadline - Clock::now()).count()));
      auto r = client_.request(x.method, p->target, p->body, headers_, timeout);
      std::map<std::string, json> captures;
      if (r) {
        auto why = check(*p, *r, captures);
        if (!why) {
          for (auto& [k, v] : captures) vars_.set(k, std::move(v));
          return std::nullopt;
        }
        f.actual = std::to_string(r->status) + " " + shown(r->body);
        f.reason = *why;
        f.show_node_output = false;
      } else {
        f.actual = "no answer";
        f.reason = r.message();
        f.show_node_output = true;
        // A dying node resets its connections a moment before it is gone: give it that.
        if (auto gone = node_ ? node_->exited(0.5) : std::nullopt) {
          f.reason = "the node is gone (" + gone->text() + "): " + f.reason;
          return f;  // nothing more will answer: a wait ends here
        }
      }
      if (!x.wait_s || Clock::now() + pause >= deadline || interrupted()) break;
      std::this_thread::sleep_for(pause);  // a bounded retry of a wait step, not a fixed sleep
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
    if (x.wait_s && interrupted())
      f.reason = "interrupted after " + std::to_string(ms_since(began)) + " ms of the wait (" +
                 std::to_string(tries) + " tries); the last answer: " + f.reason;
    else if (x.wait_s)
      f.reason = "no match within " + seconds(*x.wait_s) + " s (" + std::to_string(tries) +
                 " tries); the last answer: " + f.reason;
    return f;
  }
};

}  // namespace

Tally run_scenario(const Scenario& scenario, const RunOptions& options, std::ostream& out) {
  return Run(scenario, options, out).go();
}

}  // namespace tickdb::scenario
