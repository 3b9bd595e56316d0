// The JSON codec: records <-> JSON by schema exactly as API.md says, and the schema
// (types, tables, relations, id counters) <-> JSON.
//
// Values: integers must be JSON integers within their type's range (u64 exact up to
// 18446744073709551615); floats must be finite numbers within their type's range; str(N)
// takes at most N bytes of valid UTF-8 with no zero byte; a composite is a nested object;
// unknown fields are rejected. Every error is invalid_argument naming the field.
// Records are written straight from the packed bytes into text (append_record_json) or into
// an nlohmann::json value (record_to_json); f32 values print in their shortest exact form.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/transaction.h"

namespace tickdb {

using json = nlohmann::json;

// ---- values and records ----

// Writes one JSON value of type `t` into `out` (t.size bytes). `path` names it in errors.
Status value_from_json(const FieldType& t, const json& j, std::byte* out, const std::string& path);
json value_to_json(const FieldType& t, const std::byte* p);
void append_value_json(std::string& out, const FieldType& t, const std::byte* p);
// A string as a JSON string literal (quoted, escaped).
void append_json_string(std::string& out, std::string_view s);

// Applies the fields of a JSON object onto `record` (record_size bytes of `schema`); fields
// not named keep their bytes. An "id" key is returned through `id` when `id` is given, and
// is an error otherwise.
Status record_from_json(const TableSchema& schema, const json& obj, std::byte* record,
                        std::optional<std::uint64_t>* id = nullptr);
json record_to_json(const RecordView& r);
void append_record_json(std::string& out, const RecordView& r);
std::string record_to_string(const RecordView& r);

// Inserts a record given as a JSON object (fields not given get their default; "id" asks for
// that id). Returns the new id.
Result<std::uint64_t> insert_json(Transaction& txn, std::string_view table, const json& values);
// Changes only the fields given. An "id" in `values` must equal `id`.
Status update_json(Transaction& txn, std::string_view table, std::uint64_t id, const json& values);

// ---- schema ----

// {"name","type","size"?,"default"?}; "offset" is accepted and returned through `offset`.
Result<FieldSpec> field_spec_from_json(const json& j, const TypeRegistry& types,
                                       std::optional<std::uint32_t>* offset = nullptr);
struct TableSpec {
  std::string name;
  std::vector<FieldSpec> fields;
};
// {"name", "fields": [...]}; as in POST /table and POST /type.
Result<TableSpec> table_spec_from_json(const json& j, const TypeRegistry& types);
struct RelationSpec {
  std::string from_table, from_field, to_table;
  OnDelete on_delete = OnDelete::restrict;
};
Result<RelationSpec> relation_spec_from_json(const json& j);

json field_to_json(const Field& f);
json type_to_json(const CompositeType& c);
json table_to_json(const TableVersion& t);
json relation_to_json(const Relation& r);
// Indexes: {"name", "fields", "type", "unique"} (the definition, as stored in catalogs and
// taken by POST /table/{name}/index; "type" defaults to "ordered", "unique" to false, a
// "table" key is allowed and ignored) and the description of API.md.
json index_def_to_json(const IndexDef& d);
Result<IndexDef> index_def_from_json(const json& j);
json index_description_to_json(const IndexDescription& d);

// The whole catalog: types, tables (no records), relations, id counters, the db version.
json catalog_to_json(const DbVersion& db);
// Recreates a database with the catalog's structures and counters and empty tables.
// invalid_argument for malformed or inconsistent input, naming what is wrong.
Result<std::shared_ptr<const DbVersion>> catalog_from_json(const json& j);
Status save_catalog_file(const DbVersion& db, const std::string& path);
Result<std::shared_ptr<const DbVersion>> load_catalog_file(const std::string& path);

// Steps a scan of JSON text over `c`: true while `c` is inside a string (after its opening
// quote, up to and with its closing one), which text scans (nesting checks, element splits)
// skip.
inline bool in_json_string(char c, bool& in_str, bool& esc) {
  if (!in_str) return false;
  if (esc)
    esc = false;
  else if (c == '\\')
    esc = true;
  else if (c == '"')
    in_str = false;
  return true;
}

// Parses text into JSON: bad_json (with the parser's position) on malformed input and
// invalid_argument when nesting is deeper than max_depth.
Result<json> parse_json(std::string_view text, std::size_t max_depth = 64);

}  // namespace tickdb
