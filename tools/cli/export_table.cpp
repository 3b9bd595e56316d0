#include "tools/cli/export_table.h"

#include <fstream>
#include <optional>

#include "tools/cli/csv.h"
#include "tools/cli/exit_codes.h"
#include "tools/cli/progress_bar.h"
#include "tools/cli/record_shape.h"

namespace tickdb::cli {

int export_table(Session& s, const ExportOptions& o) {
  NodeClient& node = s.node();
  const json table = node.get("/table/" + url_encode(o.table));
  std::optional<RecordShape> shape;
  if (o.format == "csv") shape.emplace(table, node.get("/types")["types"]);

  std::ofstream file;
  std::ostream* out = &s.out;
  if (!o.output.empty()) {
    file.open(o.output, std::ios::binary | std::ios::trunc);
    if (!file) throw CliError(kExitBadInput, "export: cannot write '" + o.output + "'");
    out = &file;
  }
  if (shape) *out << csv_row(shape->header());

  const std::uint64_t total = o.filter.empty() ? table.value("count", 0ull) : 0;
  ProgressBar bar("export " + o.table, total);
  std::string base = "/table/" + url_encode(o.table) + "/records?limit=" + std::to_string(o.page);
  if (!o.filter.empty()) base += "&filter=" + url_encode(o.filter);
  std::string cursor;
  std::uint64_t n = 0;
  std::string text;
  for (;;) {
    json page = node.get(cursor.empty() ? base : base + "&cursor=" + url_encode(cursor));
    text.clear();
    for (const auto& r : page["records"]) {
      if (shape)
        text += csv_row(shape->to_cells(r));
      else
        text += r.dump(-1, ' ', false, json::error_handler_t::strict) + '\n';
      ++n;
    }
    out->write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!*out)
      throw CliError(kExitBadInput, "export: write failed after " + std::to_string(n) + " records");
    bar.update(n, n);
    if (!page.contains("next_cursor") || page["next_cursor"].is_null()) break;
    cursor = page["next_cursor"].get<std::string>();
  }
  out->flush();
  bar.finish();
  if (!o.output.empty()) {
    if (s.settings.json)
      s.emit(json{{"table", o.table}, {"exported", n}, {"file", o.output}});
    else
      s.out << "exported " << n << " record" << (n == 1 ? "" : "s") << " of " << o.table << " to "
            << o.output << '\n';
  }
  return kExitOk;
}

}  // namespace tickdb::cli
