#include "tools/cli/commands.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <iterator>

#include "tools/cli/exit_codes.h"
#include "tools/cli/export_table.h"
#include "tools/cli/field_spec.h"
#include "tools/cli/import_file.h"
#include "tools/cli/watch.h"

namespace tickdb::cli {

namespace {

json parse_json_arg(const std::string& what, const std::string& text) {
  std::string src = text;
  if (text == "-") src.assign(std::istreambuf_iterator<char>(std::cin), {});
  json v = json::parse(src, nullptr, false);
  if (v.is_discarded()) throw CliError(kExitUsage, what + ": not valid JSON: " + text);
  return v;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= s.size()) {
    auto j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// The ok answer of a 204 route.
void emit_done(Session& s, const std::string& what) {
  if (s.settings.json)
    s.emit(json{{"ok", true}});
  else
    s.out << "ok: " << what << '\n';
}

std::string seg(const std::string& name) {
  return url_encode(name);
}

// list / query: one page, or every page with --all.
struct QueryArgs {
  std::string table, filter, order, select, cursor, count;
  std::optional<std::uint64_t> limit, after, offset;
  bool all = false, explain = false;
};

json run_query(Session& s, const QueryArgs& q, bool post) {
  json all_records = json::array();
  std::string cursor = q.cursor;
  json page;
  for (;;) {
    if (post) {
      json body = json::object();
      if (!q.filter.empty()) {
        json f = json::parse(q.filter, nullptr, false);
        body["filter"] = !f.is_discarded() && f.is_array() ? f : json(q.filter);
      }
      if (!q.order.empty()) body["order"] = split_commas(q.order);
      if (!q.select.empty()) body["select"] = split_commas(q.select);
      if (!cursor.empty()) body["cursor"] = cursor;
      if (!q.count.empty()) body["count"] = q.count;
      if (q.limit) body["limit"] = *q.limit;
      if (q.after) body["after"] = *q.after;
      if (q.offset) body["offset"] = *q.offset;
      if (q.explain) body["explain"] = true;
      page = s.node().post("/table/" + seg(q.table) + "/query", body);
    } else {
      std::string t = "/table/" + seg(q.table) + "/records";
      char sep = '?';
      const auto add = [&](const char* k, const std::string& v) {
        t += sep;
        t += k;
        t += '=';
        t += url_encode(v);
        sep = '&';
      };
      if (!q.filter.empty()) add("filter", q.filter);
      if (!q.order.empty()) add("order", q.order);
      if (!q.select.empty()) add("select", q.select);
      if (!cursor.empty()) add("cursor", cursor);
      if (!q.count.empty()) add("count", q.count);
      if (q.limit) add("limit", std::to_string(*q.limit));
      if (q.after) add("after", std::to_string(*q.after));
      if (q.offset) add("offset", std::to_string(*q.offset));
      if (q.explain) add("explain", "true");
      page = s.node().get(t);
    }
    if (!q.all) return page;
    for (auto& r : page["records"]) all_records.push_back(std::move(r));
    if (!page.contains("next_cursor") || page["next_cursor"].is_null()) break;
    cursor = page["next_cursor"].get<std::string>();
    if (q.after || q.offset)
      throw CliError(kExitUsage, "--all pages by cursor: drop --after/--offset");
  }
  json out = {{"records", std::move(all_records)}};
  out["count"] = out["records"].size();
  out["total"] = page.value("total", json(nullptr));
  return out;
}

void emit_page(Session& s, const json& page) {
  if (s.settings.json) return s.emit(page);
  const json& recs = page["records"];
  if (recs.empty())
    s.out << "(no records)\n";
  else
    s.emit(recs);
  s.out << recs.size() << " record" << (recs.size() == 1 ? "" : "s");
  if (page.contains("total") && !page["total"].is_null()) s.out << " of " << page["total"].dump();
  if (page.contains("next_cursor") && !page["next_cursor"].is_null())
    s.out << "; next page: --cursor " << page["next_cursor"].get<std::string>();
  s.out << '\n';
  if (page.contains("plan")) s.out << "plan: " << page["plan"].dump() << '\n';
}

}  // namespace

CommandResult run_command_line(Session& session, const std::vector<std::string>& args,
                               bool in_prompt) {
  CLI::App app{"tickdb-cli: the command-line client of a tickdb node (docs/cli.md)", "tickdb-cli"};
  app.fallthrough();
  app.set_help_all_flag("--help-all", "Every command's help");
  Settings st = session.settings;
  // The environment is read once, from argv's parse: in the prompt the session's settings
  // (argv's --url over TICKDB_URL) are the defaults of every line.
  auto* url_opt = app.add_option("--url", st.url, "The node, http://HOST:PORT (env TICKDB_URL)")
                      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
                      ->capture_default_str();
  auto* token_opt = app.add_option("--token", st.token,
                                   "Bearer token, the node's http.auth_token (env TICKDB_TOKEN)")
                        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  if (!in_prompt) {
    url_opt->envname("TICKDB_URL");
    token_opt->envname("TICKDB_TOKEN");
  }
  app.add_flag("--json", st.json, "Answers as JSON (one line each) for scripts");
  app.add_option("--timeout", st.timeout_ms, "Milliseconds to wait for the node")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  std::function<int()> action;
  CommandResult result;
  Session& s = session;
  const auto on = [&](CLI::App* cmd, std::function<int()> fn) {
    cmd->callback([&action, fn = std::move(fn)] { action = fn; });
  };

  // Values the subcommands parse into; they live as long as the app.
  std::string name, name2, name3, text, node_name, on_delete = "restrict", idx_type = "ordered";
  std::vector<std::string> words;
  std::uint64_t id = 0;
  bool unique = false;
  QueryArgs q;
  ImportOptions imp;
  ExportOptions exp;
  WatchOptions w;

  on(app.add_subcommand("tables", "List tables"), [&] {
    s.emit(s.node().get("/tables"));
    return 0;
  });

  auto* table = app.add_subcommand("table", "Create, show or drop a table")->require_subcommand(1);
  {
    auto* c = table->add_subcommand("create", "Create a table: table create NAME FIELD:TYPE...");
    c->add_option("name", name, "Table name")->required();
    c->add_option("fields", words, "Fields: hp:i32 name:str16 pos:vec3 (NAME:TYPE[=DEFAULT])");
    c->add_option("--node", node_name, "The cluster node that owns the table");
    on(c, [&] {
      json body = {{"name", name}, {"fields", json::array()}};
      for (const auto& f : words) body["fields"].push_back(parse_field_spec(f));
      if (!node_name.empty()) body["node"] = node_name;
      s.emit(s.node().post("/table", body));
      return 0;
    });
    auto* show = table->add_subcommand("show", "Describe a table");
    show->add_option("name", name)->required();
    on(show, [&] {
      s.emit(s.node().get("/table/" + seg(name)));
      return 0;
    });
    auto* drop = table->add_subcommand("drop", "Drop a table");
    drop->add_option("name", name)->required();
    on(drop, [&] {
      s.node().call("DELETE", "/table/" + seg(name));
      emit_done(s, "dropped table " + name);
      return 0;
    });
  }

  auto* field = app.add_subcommand("field", "Add or remove a field")->require_subcommand(1);
  {
    auto* add = field->add_subcommand("add", "Add a field: field add TABLE NAME:TYPE[=DEFAULT]");
    add->add_option("table", name)->required();
    add->add_option("field", text, "NAME:TYPE[=DEFAULT]")->required();
    on(add, [&] {
      s.emit(s.node().post("/table/" + seg(name) + "/field", parse_field_spec(text)));
      return 0;
    });
    auto* rm = field->add_subcommand("remove", "Remove a field: field remove TABLE FIELD");
    rm->add_option("table", name)->required();
    rm->add_option("field", name2)->required();
    on(rm, [&] {
      s.emit(s.node().call("DELETE", "/table/" + seg(name) + "/field/" + seg(name2)));
      return 0;
    });
  }

  auto* type = app.add_subcommand("type", "Composite types")->require_subcommand(1);
  {
    auto* c = type->add_subcommand("create", "Create a type: type create NAME FIELD:TYPE...");
    c->add_option("name", name)->required();
    c->add_option("fields", words, "Fields: x:f32 y:f32 z:f32");
    on(c, [&] {
      json body = {{"name", name}, {"fields", json::array()}};
      for (const auto& f : words) body["fields"].push_back(parse_field_spec(f));
      s.emit(s.node().post("/type", body));
      return 0;
    });
    auto* drop = type->add_subcommand("drop", "Drop a type");
    drop->add_option("name", name)->required();
    on(drop, [&] {
      s.node().call("DELETE", "/type/" + seg(name));
      emit_done(s, "dropped type " + name);
      return 0;
    });
    on(type->add_subcommand("list", "List composite types"), [&] {
      s.emit(s.node().get("/types"));
      return 0;
    });
    auto* show = type->add_subcommand("show", "Describe a type");
    show->add_option("name", name)->required();
    on(show, [&] {
      s.emit(s.node().get("/type/" + seg(name)));
      return 0;
    });
  }

  auto* rel = app.add_subcommand("relation", "Relations between tables")->require_subcommand(1);
  {
    auto* c = rel->add_subcommand(
        "create", "relation create FROM_TABLE FROM_FIELD TO_TABLE [--on-delete MODE]");
    c->add_option("from_table", name)->required();
    c->add_option("from_field", name2)->required();
    c->add_option("to_table", name3)->required();
    c->add_option("--on-delete", on_delete, "restrict, cascade or set_zero")
        ->check(CLI::IsMember({"restrict", "cascade", "set_zero"}))
        ->capture_default_str();
    on(c, [&] {
      s.emit(s.node().post("/relation", {{"from_table", name},
                                         {"from_field", name2},
                                         {"to_table", name3},
                                         {"on_delete", on_delete}}));
      return 0;
    });
    auto* del = rel->add_subcommand("delete", "Delete a relation by its id");
    del->add_option("id", id)->required();
    on(del, [&] {
      s.node().call("DELETE", "/relation/" + std::to_string(id));
      emit_done(s, "deleted relation " + std::to_string(id));
      return 0;
    });
    on(rel->add_subcommand("list", "List relations"), [&] {
      s.emit(s.node().get("/relations"));
      return 0;
    });
  }

  auto* index =
      app.add_subcommand("index", "Indexes and unique constraints")->require_subcommand(1);
  {
    auto* c =
        index->add_subcommand("create", "index create TABLE NAME FIELD... [--type] [--unique]");
    c->add_option("table", name)->required();
    c->add_option("name", name2)->required();
    c->add_option("fields", words, "1 to 4 fields (composite leaves: pos.x)")->required();
    c->add_option("--type", idx_type, "ordered or hash")
        ->check(CLI::IsMember({"ordered", "hash"}))
        ->capture_default_str();
    c->add_flag("--unique", unique, "Refuse two records with the same key");
    on(c, [&] {
      s.emit(s.node().post(
          "/table/" + seg(name) + "/index",
          {{"name", name2}, {"fields", words}, {"type", idx_type}, {"unique", unique}}));
      return 0;
    });
    auto* drop = index->add_subcommand("drop", "index drop TABLE NAME");
    drop->add_option("table", name)->required();
    drop->add_option("name", name2)->required();
    on(drop, [&] {
      s.node().call("DELETE", "/table/" + seg(name) + "/index/" + seg(name2));
      emit_done(s, "dropped index " + name2);
      return 0;
    });
    auto* list = index->add_subcommand("list", "index list TABLE");
    list->add_option("table", name)->required();
    on(list, [&] {
      s.emit(s.node().get("/table/" + seg(name) + "/indexes"));
      return 0;
    });
  }

  {
    auto* c = app.add_subcommand(
        "insert", "insert TABLE '{json}'... (several, or an array: one atomic bulk insert)");
    c->add_option("table", name)->required();
    c->add_option("records", words, "JSON objects or arrays ('-' reads stdin)")->required();
    on(c, [&] {
      json recs = json::array();
      bool bulk = words.size() > 1;
      for (const auto& wd : words) {
        json v = parse_json_arg("record", wd);
        bulk = bulk || v.is_array();
        if (v.is_array())
          for (auto& e : v) recs.push_back(std::move(e));
        else
          recs.push_back(std::move(v));
      }
      if (!bulk) {
        s.emit(s.node().post("/table/" + seg(name) + "/record", recs[0]));
      } else {
        s.emit(s.node().post("/table/" + seg(name) + "/records", {{"records", recs}}));
      }
      return 0;
    });
    auto* get = app.add_subcommand("get", "get TABLE ID");
    get->add_option("table", name)->required();
    get->add_option("id", id)->required();
    on(get, [&] {
      s.emit(s.node().get("/table/" + seg(name) + "/record/" + std::to_string(id)));
      return 0;
    });
    auto* upd = app.add_subcommand("update", "update TABLE ID '{json}': change the fields given");
    upd->add_option("table", name)->required();
    upd->add_option("id", id)->required();
    upd->add_option("values", text, "A JSON object ('-' reads stdin)")->required();
    on(upd, [&] {
      json v = parse_json_arg("values", text);
      s.emit(s.node().call("PUT", "/table/" + seg(name) + "/record/" + std::to_string(id), &v));
      return 0;
    });
    auto* del = app.add_subcommand("delete", "delete TABLE ID");
    del->add_option("table", name)->required();
    del->add_option("id", id)->required();
    on(del, [&] {
      s.node().call("DELETE", "/table/" + seg(name) + "/record/" + std::to_string(id));
      emit_done(s, "deleted " + name + " " + std::to_string(id));
      return 0;
    });
  }

  for (const char* verb : {"list", "query"}) {
    const bool post = std::string(verb) == "query";
    auto* c = app.add_subcommand(
        verb, post ? "A page of records, the query sent as a JSON body (long filters)"
                   : "A page of records: --filter, --order, --select, --limit, --cursor, --all");
    c->add_option("table", q.table)->required();
    c->add_option("--filter,-f", q.filter, "hp < 50 && team = \"red\" (or the JSON form)");
    c->add_option("--order,-o", q.order, "-score,name");
    c->add_option("--select,-s", q.select, "hp,pos.x");
    c->add_option("--limit,-n", q.limit, "Records per page (1..10000, default 100)");
    c->add_option("--after", q.after, "Records with id > AFTER (default order only)");
    c->add_option("--offset", q.offset, "Skip this many records");
    c->add_option("--cursor", q.cursor, "The next_cursor of the previous page");
    c->add_option("--count", q.count, "exact or none")->check(CLI::IsMember({"exact", "none"}));
    c->add_flag("--explain", q.explain, "Show the plan (index used, records scanned)");
    c->add_flag("--all", q.all, "Follow the cursor through every page");
    on(c, [&, post] {
      emit_page(s, run_query(s, q, post));
      return 0;
    });
  }

  {
    auto* c = app.add_subcommand("call", "call PROCEDURE ['{json params}']: JSON-RPC");
    c->add_option("procedure", name)->required();
    c->add_option("params", text, "JSON params ('-' reads stdin)");
    on(c, [&] {
      json params;
      if (!text.empty()) params = parse_json_arg("params", text);
      s.emit(s.node().rpc(name, text.empty() ? nullptr : &params));
      return 0;
    });
  }
  on(app.add_subcommand("procedures", "Every callable procedure"), [&] {
    s.emit(s.node().get("/procedures"));
    return 0;
  });
  on(app.add_subcommand("snapshot", "Write a snapshot now"), [&] {
    s.emit(s.node().post("/snapshot", json::object()));
    return 0;
  });
  on(app.add_subcommand("health", "Liveness of the node"), [&] {
    s.emit(s.node().get("/health"));
    return 0;
  });
  on(app.add_subcommand("stats", "The node's figures"), [&] {
    s.emit(s.node().get("/stats"));
    return 0;
  });
  on(app.add_subcommand("cluster", "The cluster's nodes and tables"), [&] {
    s.emit(s.node().get("/cluster"));
    return 0;
  });

  {
    auto* c = app.add_subcommand("watch", "A live view of a table (WebSocket subscription)");
    c->add_option("table", w.table)->required();
    c->add_option("--filter,-f", w.filter, "Only records that match");
    c->add_option("--select,-s", w.select, "Only these fields: hp,pos.x");
    c->add_option("--rate", w.rate_hz, "At most this many updates a second");
    c->add_option("--events", w.max_events, "Stop after this many changes (0: never)");
    on(c, [&] { return watch_table(s, w); });
  }
  {
    auto* c =
        app.add_subcommand("import", "import TABLE FILE.jsonl|FILE.csv: bulk insert in batches");
    c->add_option("table", imp.table)->required();
    c->add_option("file", imp.file, "The file ('-': stdin, then --format is needed)")->required();
    c->add_option("--format", imp.format, "jsonl or csv (default: by the file's extension)")
        ->check(CLI::IsMember({"jsonl", "csv"}));
    c->add_option("--batch", imp.batch, "Records per atomic batch")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    on(c, [&] { return import_file(s, imp); });
  }
  {
    auto* c = app.add_subcommand("export", "export TABLE [--filter] [--format jsonl|csv]");
    c->add_option("table", exp.table)->required();
    c->add_option("--filter,-f", exp.filter, "Only records that match");
    c->add_option("--format", exp.format, "jsonl or csv")
        ->check(CLI::IsMember({"jsonl", "csv"}))
        ->capture_default_str();
    c->add_option("--output", exp.output, "A file instead of stdout");
    c->add_option("--page", exp.page, "Records per request")
        ->check(CLI::Range(1, 10000))
        ->capture_default_str();
    on(c, [&] { return export_table(s, exp); });
  }
  if (in_prompt) {
    on(app.add_subcommand("exit", "Leave the prompt")->alias("quit"), [&] {
      result.quit = true;
      return 0;
    });
  }

  try {
    // CLI11 reads a value written [a,b] as a list of a and b; a JSON array ('[{"hp":1}]')
    // must stay one word: a trailing blank (JSON ignores it) keeps CLI11 off it.
    std::vector<std::string> rev(args.rbegin(), args.rend());
    for (auto& a : rev)
      if (a.size() >= 2 && a.front() == '[' && a.back() == ']') a.push_back(' ');
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help
      app.exit(e, session.out, session.err);
      return result;
    }
    session.err << "error: " << e.what() << "\n(tickdb-cli --help lists the commands)\n";
    result.exit_code = kExitUsage;
    return result;
  }
  if (!action) {
    if (!in_prompt) session.settings = st;
    result.no_command = true;
    return result;
  }
  const Settings saved = session.settings;
  session.settings = st;
  try {
    result.exit_code = action();
  } catch (const CliError& e) {
    session.out.flush();
    session.err << "error: " << e.what() << '\n';
    result.exit_code = e.code();
  } catch (const std::exception& e) {
    session.out.flush();
    session.err << "error: " << e.what() << '\n';
    result.exit_code = kExitServerError;
  }
  if (in_prompt) session.settings = saved;
  return result;
}

}  // namespace tickdb::cli
