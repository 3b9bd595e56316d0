#include "tools/cli/import_file.h"

#include <chrono>
#include <fstream>
#include <memory>

#include "tools/cli/csv.h"
#include "tools/cli/exit_codes.h"
#include "tools/cli/progress_bar.h"
#include "tools/cli/record_shape.h"

namespace tickdb::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The batch being filled: the request body built as text as the lines come, so a JSON line
// is sent as it was written (its numbers exactly as in the file).
class Batch {
 public:
  void add(const std::string& record_text, std::size_t line) {
    if (records_ == 0) first_line_ = line;
    body_ += records_ ? "," : "{\"records\":[";
    body_ += record_text;
    ++records_;
    last_line_ = line;
  }
  std::size_t size() const { return records_; }
  std::string take() {
    std::string b = std::move(body_) + "]}";
    body_.clear();
    records_ = 0;
    return b;
  }
  std::size_t first_line() const { return first_line_; }
  std::size_t last_line() const { return last_line_; }

 private:
  std::string body_;
  std::size_t records_ = 0, first_line_ = 0, last_line_ = 0;
};

}  // namespace

std::string format_of(const std::string& file) {
  if (ends_with(file, ".jsonl") || ends_with(file, ".ndjson") || ends_with(file, ".json"))
    return "jsonl";
  if (ends_with(file, ".csv")) return "csv";
  return {};
}

int import_file(Session& s, const ImportOptions& o) {
  const std::string format = o.format.empty() ? format_of(o.file) : o.format;
  if (format.empty())
    throw CliError(kExitUsage, "import: say --format jsonl or --format csv for '" + o.file + "'");

  NodeClient& node = s.node();
  const json table = node.get("/table/" + url_encode(o.table));
  const RecordShape shape(table, node.get("/types")["types"]);

  std::ifstream file;
  std::istream* in = &std::cin;
  std::uint64_t total_bytes = 0;
  if (o.file != "-") {
    file.open(o.file, std::ios::binary | std::ios::ate);
    if (!file) throw CliError(kExitBadInput, "import: cannot open '" + o.file + "'");
    total_bytes = static_cast<std::uint64_t>(file.tellg());
    file.seekg(0);
    in = &file;
  }

  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar("import " + o.table, total_bytes);
  std::uint64_t imported = 0;
  Batch batch;
  const auto where = [&] {
    return std::to_string(imported) + " record" + (imported == 1 ? "" : "s") +
           " imported before it";
  };
  const auto send = [&] {
    if (batch.size() == 0) return;
    const std::size_t n = batch.size(), first = batch.first_line(), last = batch.last_line();
    HttpResponse r =
        node.http().request("POST", "/table/" + url_encode(o.table) + "/records", batch.take());
    if (r.status != 201) {
      bar.finish();
      try {
        throw_server_error(r.status, r.body);
      } catch (const CliError& e) {
        throw CliError(kExitServerError, "import: the node refused the batch of lines " +
                                             std::to_string(first) + "-" + std::to_string(last) +
                                             ": " + e.what() + "; " + where() +
                                             " (none of this batch)");
      }
    }
    imported += n;
    bar.update(in->good() ? static_cast<std::uint64_t>(in->tellg()) : total_bytes, imported);
  };
  const auto bad_line = [&](std::size_t line, const std::string& why) {
    bar.finish();
    return CliError(kExitBadInput, "import: line " + std::to_string(line) + ": " + why + "; " +
                                       where() + ", its batch (from line " +
                                       std::to_string(batch.size() ? batch.first_line() : line) +
                                       ") not sent");
  };

  if (format == "jsonl") {
    std::string line;
    std::size_t n = 0;
    while (std::getline(*in, line)) {
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      const json rec = json::parse(line, nullptr, false);
      if (rec.is_discarded()) throw bad_line(n, "not valid JSON");
      try {
        shape.check(rec);
      } catch (const std::invalid_argument& e) {
        throw bad_line(n, e.what());
      }
      batch.add(line, n);
      if (batch.size() >= static_cast<std::size_t>(o.batch)) send();
    }
  } else {
    CsvReader reader(*in);
    std::vector<std::string> cells;
    if (!reader.next(cells)) {
      if (!reader.error().empty()) throw bad_line(reader.line(), reader.error());
      throw CliError(kExitBadInput, "import: '" + o.file + "' has no header row");
    }
    std::vector<int> columns;
    try {
      columns = shape.columns_of(cells);
    } catch (const std::invalid_argument& e) {
      throw bad_line(reader.line(), std::string("header: ") + e.what());
    }
    while (reader.next(cells)) {
      json rec;
      try {
        rec = shape.from_cells(columns, cells);
      } catch (const std::invalid_argument& e) {
        throw bad_line(reader.line(), e.what());
      }
      batch.add(rec.dump(), reader.line());
      if (batch.size() >= static_cast<std::size_t>(o.batch)) send();
    }
    if (!reader.error().empty()) throw bad_line(reader.line(), reader.error());
  }
  if (in->bad()) throw CliError(kExitBadInput, "import: cannot read '" + o.file + "'");
  send();
  bar.finish();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (s.settings.json) {
    s.emit(json{{"table", o.table}, {"imported", imported}});
  } else {
    char rate[64];
    std::snprintf(rate, sizeof rate, " in %.2f s (%.0f records/s)", secs,
                  secs > 0 ? static_cast<double>(imported) / secs : 0.0);
    s.out << "imported " << imported << " record" << (imported == 1 ? "" : "s") << " into "
          << o.table << rate << '\n';
  }
  return kExitOk;
}

}  // namespace tickdb::cli
