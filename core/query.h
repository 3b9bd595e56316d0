// Queries: one page of a table's records chosen by a filter, put in an order, cut down to
// the selected fields and paged by a keyset cursor (API.md, Queries). QuerySpec is what a
// client asked (from db.list/db.query params, a POST /query body, or a GET's query string
// turned into the same JSON object); run_query answers it over one TableVersion, so a page
// reads exactly one version.
//
// Plans: an order by id (ascending, or descending with `-id`) walks the records in slot order
// from the cursor and stops once the page is full; any other order scans every match and
// keeps a bounded top-K (offset + limit + 1 candidates). Filters run as compiled programs over
// packed chunks (see filter.h).
//
// Thread-safety: free functions over immutable versions; safe from many threads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/filter.h"
#include "core/table.h"

namespace tickdb {

inline constexpr std::uint64_t kQueryMaxLimit = 10000;
inline constexpr std::uint64_t kQueryMaxOffset = 100000;
inline constexpr std::size_t kQueryMaxOrderFields = 4;

struct OrderKey {
  std::string path;  // "id", "score", "pos.x"
  bool desc = false;
};

struct QuerySpec {
  enum class Count { automatic, exact, none };
  std::optional<FilterExpr> filter;
  std::vector<OrderKey> order;      // empty: by id
  std::vector<std::string> select;  // empty: every field
  std::uint64_t limit = 100;
  std::optional<std::uint64_t> after, offset;
  std::optional<std::string> cursor;
  Count count = Count::automatic;  // automatic: exact without a filter, none with one
  bool explain = false;
};

// A list of field names as `order` and `select` take it: "a,b" or ["a", "b"]. `what` starts
// the error ("select: an empty field name").
Result<std::vector<std::string>> field_names_from_json(const nlohmann::json& v, const char* what);

// The parameters of db.list / db.query / POST /table/{name}/query (and of a GET's query string
// made into an object of strings and numbers by the caller). `known` lists the keys besides
// these that the caller accepts (e.g. "table"); any other key is invalid_argument. `in_url`
// picks the filter text limit (4 KiB in a URL, 64 KiB in a body).
Result<QuerySpec> query_spec_from_json(const nlohmann::json& params,
                                       const std::vector<std::string>& known, bool in_url);

struct QueryPage {
  std::vector<RecordView> records;
  std::optional<std::uint64_t> total;       // null with count=none
  std::optional<std::uint64_t> next_after;  // default order only; null on the last page
  std::optional<std::string> next_cursor;   // null on the last page
  std::string index;                        // the index used; empty for a scan
  std::uint64_t scanned = 0;                // records examined
  double ms = 0;
};

// One page of `t`. invalid_argument for a filter, order, select or cursor that does not fit
// the table (with the position, for filters).
Result<QueryPage> run_query(const TableVersion& t, const QuerySpec& q);

// {"records", "count", "total", "next_after", "next_cursor"} (and "plan" with explain), each
// record cut to the spec's select, written as JSON text straight from the packed records
// (REST), or as a JSON value (RPC results).
void append_query_page_json(std::string& out, const QueryPage& page, const QuerySpec& q,
                            const TableSchema& schema);
nlohmann::json query_page_to_json(const QueryPage& page, const QuerySpec& q,
                                  const TableSchema& schema);

}  // namespace tickdb
