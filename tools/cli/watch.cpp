#include "tools/cli/watch.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>

#include "tools/cli/exit_codes.h"
#include "tools/cli/live_model.h"
#include "tools/cli/table_printer.h"
#include "tools/cli/ws_client.h"

namespace tickdb::cli {

namespace {

constexpr const char* kSub = "watch";

int terminal_rows() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return ws.ws_row;
  return 24;
}

void draw(Session& s, const WatchOptions& o, const LiveModel& m, std::uint64_t version,
          std::uint64_t tick) {
  const int room = std::max(3, terminal_rows() - 4);
  json shown = json::array();
  int n = 0;
  for (const auto& [id, row] : m.rows()) {
    if (n++ >= room) break;
    shown.push_back(row);
  }
  s.out << "\033[H\033[2J"
        << "watch " << o.table << (o.filter.empty() ? "" : " [" + o.filter + "]") << "  version "
        << version << "  tick " << tick << "  " << m.rows().size() << " rows"
        << "  (Ctrl-C stops)\n\n";
  if (shown.empty())
    s.out << "(no rows)\n";
  else
    print_objects(s.out, shown);
  if (m.rows().size() > shown.size())
    s.out << "... " << m.rows().size() - shown.size() << " more\n";
  s.out.flush();
}

}  // namespace

int watch_table(Session& s, const WatchOptions& o) {
  const bool lines = s.settings.json || isatty(STDOUT_FILENO) != 1;
  WsClient ws(s.settings.url, s.settings.token, std::chrono::milliseconds(s.settings.timeout_ms));
  json sub = {{"op", "subscribe"}, {"sub", kSub}, {"table", o.table}};
  if (!o.filter.empty()) {
    json f = json::parse(o.filter, nullptr, false);
    sub["filter"] = !f.is_discarded() && f.is_array() ? f : json(o.filter);
  }
  if (!o.select.empty()) {
    json sel = json::array();
    std::size_t i = 0;
    while (i <= o.select.size()) {
      auto j = o.select.find(',', i);
      if (j == std::string::npos) j = o.select.size();
      if (j > i) sel.push_back(o.select.substr(i, j - i));
      i = j + 1;
    }
    sub["select"] = sel;
  }
  if (o.rate_hz > 0) sub["rate_hz"] = o.rate_hz;
  ws.send(sub.dump());

  LiveModel model;
  bool ready = false;
  int events = 0;
  std::uint64_t version = 0, tick = 0;
  auto last_draw = std::chrono::steady_clock::time_point();
  bool dirty = false;
  const auto print = [&](const json& line) {
    s.out << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
    s.out.flush();
  };
  for (;;) {
    const json f = json::parse(ws.read(), nullptr, false);
    if (!f.is_object()) continue;
    const std::string type = f.value("type", std::string());
    const bool ours = f.value("sub", std::string()) == kSub;
    if (type == "snapshot" && ours) {
      model.add_rows(f["rows"]);
    } else if (type == "ready" && ours) {
      ready = true;
      version = f.value("version", 0ull);
      if (f.contains("changes") && f["changes"].contains(kSub)) model.apply(f["changes"][kSub]);
      if (lines)
        print({{"type", "snapshot"},
               {"table", o.table},
               {"version", version},
               {"rows", model.to_json()}});
      else
        dirty = true;
    } else if (type == "delta") {
      version = f.value("to", version);
      tick = f.value("tick", tick);
      auto it = f.find("changes");
      if (it == f.end() || !it->contains(kSub)) continue;
      const json& ch = (*it)[kSub];
      if (model.apply(ch) == 0) continue;
      if (lines) {
        json line = {{"type", "delta"}, {"from", f["from"]}, {"to", f["to"]}, {"tick", f["tick"]}};
        for (const char* k : {"ins", "upd", "del", "out"})
          line[k] = ch.contains(k) ? ch[k] : json::array();
        print(line);
      }
      dirty = true;
      if (o.max_events > 0 && ++events >= o.max_events) {
        if (!lines) draw(s, o, model, version, tick);
        return kExitOk;
      }
    } else if (type == "progress") {
      version = f.value("version", version);
      tick = f.value("tick", tick);
    } else if (type == "reset" && ours) {
      model.clear();
      ready = false;
      if (lines) print({{"type", "reset"}, {"reason", f.value("reason", std::string())}});
    } else if (type == "ended" && ours) {
      const std::string reason = f.value("reason", std::string());
      if (lines)
        print({{"type", "ended"}, {"reason", reason}});
      else
        s.out << "\nsubscription ended: " << reason << '\n';
      return kExitOk;
    } else if (type == "error") {
      throw CliError(kExitServerError, f.value("code", std::string("error")) + ": " +
                                           f.value("message", std::string()));
    }
    const auto now = std::chrono::steady_clock::now();
    if (!lines && ready && dirty && now - last_draw >= std::chrono::milliseconds(100)) {
      draw(s, o, model, version, tick);
      last_draw = now;
      dirty = false;
    }
  }
}

}  // namespace tickdb::cli
