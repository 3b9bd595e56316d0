// /openapi.json: the route table's operations, described by the table below, plus a record
// schema and record paths per table of the current catalog (see openapi.h).
//
// A route the table below does not describe still appears (a generic operation named after its
// method and pattern), so the document never misses a route the node serves; the unit test
// requires every route to be described.
#include "http/openapi.h"

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <limits>
#include <map>
#include <set>

#include "core/catalog.h"
#include "core/json_codec.h"
#include "http/router.h"

namespace tickdb {

using nlohmann::json;

namespace {

// ---- values and records ----

json integer(const char* format, json min, json max) {
  return {{"type", "integer"},
          {"format", format},
          {"minimum", std::move(min)},
          {"maximum", std::move(max)}};
}

template <class T>
json integer_of(const char* format) {
  return integer(format, std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
}

json ref(const std::string& where, const std::string& name) {
  return {{"$ref", "#/components/" + where + "/" + name}};
}
json schema_ref(const std::string& name) {
  return ref("schemas", name);
}

}  // namespace

json value_schema(const FieldType& t, RecordShape shape) {
  json s;
  switch (t.kind) {
    case Kind::Bool:
      s = {{"type", "boolean"}};
      break;
    case Kind::I8:
      s = integer_of<std::int8_t>("int32");
      break;
    case Kind::I16:
      s = integer_of<std::int16_t>("int32");
      break;
    case Kind::I32:
      s = integer_of<std::int32_t>("int32");
      break;
    case Kind::I64:
      s = integer_of<std::int64_t>("int64");
      break;
    case Kind::U8:
      s = integer_of<std::uint8_t>("int32");
      break;
    case Kind::U16:
      s = integer_of<std::uint16_t>("int32");
      break;
    case Kind::U32:
      s = integer_of<std::uint32_t>("int64");
      break;
    case Kind::U64:
      s = integer_of<std::uint64_t>("uint64");
      s["description"] =
          "u64: exact up to 18446744073709551615; values beyond 2^53 do not fit a double, read "
          "them with a JSON parser that keeps integers exact";
      break;
    case Kind::F32:
      s = {{"type", "number"}, {"format", "float"}, {"minimum", -FLT_MAX}, {"maximum", FLT_MAX}};
      break;
    case Kind::F64:
      s = {{"type", "number"}, {"format", "double"}};
      break;
    case Kind::Str:
      s = {{"type", "string"},
           {"maxLength", t.size},
           {"x-tickdb-max-bytes", t.size},
           {"description", "at most " + std::to_string(t.size) +
                               " bytes of UTF-8 (maxLength counts characters: the byte count is "
                               "the limit), no \\u0000"}};
      break;
    case Kind::Composite: {
      json props = json::object();
      json required = json::array();
      for (const auto& f : t.composite->fields) {
        json p = value_schema(f.type, shape);
        if (!f.default_value.empty()) p["default"] = value_to_json(f.type, f.default_value.data());
        props[f.name] = std::move(p);
        required.push_back(f.name);
      }
      s = {{"type", "object"},
           {"description", "composite type " + t.composite->name + " (" +
                               std::to_string(t.composite->size) + " bytes)"},
           {"properties", std::move(props)},
           {"additionalProperties", false}};
      if (shape == RecordShape::whole) s["required"] = std::move(required);
      break;
    }
  }
  s["x-tickdb-type"] = t.kind == Kind::Str ? "str" : t.name();
  return s;
}

json record_schema(const TableSchema& schema, RecordShape shape) {
  json props = json::object();
  json id = integer("uint64", 1, std::numeric_limits<std::uint64_t>::max() - 1);
  id["description"] = shape == RecordShape::values
                          ? "on insert: ask for this id (409 already_exists if taken); on "
                            "update: must be the path's id"
                          : "the record id, assigned by the node";
  props["id"] = std::move(id);
  json required = json::array({"id"});
  for (const auto& f : schema.fields()) {
    json p = value_schema(f.type, shape);
    if (!f.default_value.empty()) p["default"] = value_to_json(f.type, f.default_value.data());
    props[f.name] = std::move(p);
    required.push_back(f.name);
  }
  json s = {{"type", "object"}, {"properties", std::move(props)}, {"additionalProperties", false}};
  switch (shape) {
    case RecordShape::whole:
      s["description"] = "a record of table " + schema.name() + ", every field";
      s["required"] = std::move(required);
      break;
    case RecordShape::values:
      s["description"] = "fields of a record of table " + schema.name() +
                         " to write: on insert the others get their default, on update they "
                         "keep their value";
      break;
    case RecordShape::selection:
      s["description"] = "a record of table " + schema.name() +
                         " as a query returns it: id and the selected fields (every field "
                         "without select)";
      s["required"] = json::array({"id"});
      break;
  }
  return s;
}

std::string pascal_name(std::string_view name) {
  // A name may start with '_' then a digit ("_1"): the stem then starts with 'T'.
  const bool digit_first = [&] {
    for (char c : name)
      if (c != '_') return c >= '0' && c <= '9';
    return true;
  }();
  std::string out = digit_first ? "T" : "";
  bool up = true;
  for (char c : name) {
    if (c == '_') {
      up = true;
      continue;
    }
    out.push_back(up && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
    up = false;
  }
  return out;
}

namespace {

// ---- the fixed components ----

json object(json props, json required = json::array()) {
  json s = {{"type", "object"}, {"properties", std::move(props)}};
  if (!required.empty()) s["required"] = std::move(required);
  return s;
}
json array_of(json items) {
  return {{"type", "array"}, {"items", std::move(items)}};
}
json str(const char* description = nullptr) {
  json s = {{"type", "string"}};
  if (description) s["description"] = description;
  return s;
}
json u64(const char* description = nullptr) {
  json s = integer("uint64", 0, std::numeric_limits<std::uint64_t>::max());
  if (description) s["description"] = description;
  return s;
}
json nullable(json s) {
  s["nullable"] = true;
  return s;
}
json described(json s, const char* description) {
  s["description"] = description;
  return s;
}

json error_codes() {
  json codes = json::array();
  for (int c = static_cast<int>(Errc::bad_json); c <= static_cast<int>(Errc::misdirected); ++c)
    codes.push_back(std::string(errc_name(static_cast<Errc>(c))));
  return codes;
}

const char* const kNamePattern = "^[A-Za-z_][A-Za-z0-9_]{0,62}$";

json fixed_schemas() {
  json s;
  s["ErrorCode"] = {{"type", "string"},
                    {"enum", error_codes()},
                    {"description",
                     "API.md, Errors: the code names the kind, the HTTP status "
                     "follows from it"}};
  s["Error"] = object({{"error", object({{"code", schema_ref("ErrorCode")}, {"message", str()}},
                                        {"code", "message"})}},
                      {"error"});
  s["Name"] = {{"type", "string"}, {"pattern", kNamePattern}};
  s["FieldSpec"] =
      object({{"name", schema_ref("Name")},
              {"type", str("a built-in type (bool, i8..i64, u8..u64, f32, f64, str) or a composite "
                           "type's name")},
              {"size",
               {{"type", "integer"},
                {"minimum", 1},
                {"maximum", kMaxStrSize},
                {"description", "str only: its size in bytes"}}},
              {"default", {{"description", "the value new records get (else zero, false, \"\")"}}},
              {"offset",
               {{"type", "integer"},
                {"minimum", 0},
                {"description", "accepted when it matches the packed layout"}}}},
             {"name", "type"});
  s["Field"] = object({{"name", schema_ref("Name")},
                       {"type", str()},
                       {"offset", {{"type", "integer"}, {"minimum", 0}}},
                       {"size", {{"type", "integer"}, {"minimum", 1}}},
                       {"default", {{"description", "present when the field has one"}}}},
                      {"name", "type", "offset", "size"});
  s["TypeSpec"] =
      object({{"name", schema_ref("Name")},
              {"fields", {{"type", "array"}, {"items", schema_ref("FieldSpec")}, {"minItems", 1}}}},
             {"name", "fields"});
  s["TypeDescription"] = object({{"name", schema_ref("Name")},
                                 {"size", {{"type", "integer"}, {"minimum", 1}}},
                                 {"fields", array_of(schema_ref("Field"))}},
                                {"name", "size", "fields"});
  s["TypeList"] = object({{"types", array_of(schema_ref("TypeDescription"))}}, {"types"});
  s["IndexSpec"] =
      object({{"name", schema_ref("Name")},
              {"fields",
               {{"type", "array"},
                {"items", str()},
                {"minItems", 1},
                {"maxItems", 4},
                {"description",
                 "scalar fields or composite leaves (pos.x); id is the last "
                 "key part implicitly"}}},
              {"type", {{"type", "string"}, {"enum", {"ordered", "hash"}}, {"default", "ordered"}}},
              {"unique", {{"type", "boolean"}, {"default", false}}}},
             {"name", "fields"});
  s["IndexDescription"] =
      object({{"name", schema_ref("Name")},
              {"table", schema_ref("Name")},
              {"fields", array_of(str())},
              {"type", {{"type", "string"}, {"enum", {"ordered", "hash"}}}},
              {"unique", {{"type", "boolean"}}},
              {"entries", u64("records indexed")},
              {"bytes", u64("memory of the index")},
              {"auto", described({{"type", "boolean"}}, "made for a relation's from_field")}},
             {"name", "table", "fields", "type", "unique", "entries", "bytes", "auto"});
  s["IndexList"] = object({{"indexes", array_of(schema_ref("IndexDescription"))}}, {"indexes"});
  s["TableSpec"] =
      object({{"name", schema_ref("Name")},
              {"fields", array_of(schema_ref("FieldSpec"))},
              {"indexes", array_of(schema_ref("IndexSpec"))},
              {"node", str("the cluster node the table lives on (default: the one asked)")}},
             {"name"});
  s["TableDescription"] = object({{"name", schema_ref("Name")},
                                  {"record_size", {{"type", "integer"}, {"minimum", 0}}},
                                  {"count", u64("records in the table")},
                                  {"fields", array_of(schema_ref("Field"))},
                                  {"indexes", array_of(schema_ref("IndexDescription"))}},
                                 {"name", "record_size", "count", "fields", "indexes"});
  s["TableList"] = object({{"tables", array_of(schema_ref("TableDescription"))}}, {"tables"});
  json on_delete = {
      {"type", "string"}, {"enum", {"restrict", "cascade", "set_zero"}}, {"default", "restrict"}};
  s["RelationSpec"] = object(
      {{"from_table", schema_ref("Name")},
       {"from_field",
        {{"type", "string"}, {"pattern", kNamePattern}, {"description", "a top-level u64 field"}}},
       {"to_table", schema_ref("Name")},
       {"on_delete", on_delete}},
      {"from_table", "from_field", "to_table"});
  s["Relation"] = object({{"id", u64()},
                          {"from_table", schema_ref("Name")},
                          {"from_field", schema_ref("Name")},
                          {"to_table", schema_ref("Name")},
                          {"on_delete", on_delete}},
                         {"id", "from_table", "from_field", "to_table", "on_delete"});
  s["RelationList"] = object({{"relations", array_of(schema_ref("Relation"))}}, {"relations"});
  s["Record"] = {{"type", "object"},
                 {"description",
                  "a record of any table: id and its fields (see the "
                  "<Table>Record schemas for each table's)"},
                 {"properties", {{"id", u64()}}},
                 {"required", {"id"}},
                 {"additionalProperties", true}};
  s["RecordValues"] = {{"type", "object"},
                       {"description",
                        "fields of a record to write (see the <Table>Values "
                        "schemas for each table's)"},
                       {"additionalProperties", true}};
  s["BulkInsert"] = object({{"records", array_of(schema_ref("RecordValues"))}}, {"records"});
  s["BulkInsertResult"] = object({{"ids", array_of(u64())}}, {"ids"});
  s["Plan"] = object({{"index", nullable(str("the index used, null for a scan"))},
                      {"scanned", u64("records or index entries examined")},
                      {"ms", {{"type", "number"}}}},
                     {"index", "scanned", "ms"});
  s["RecordPage"] = object({{"records", array_of(schema_ref("Record"))},
                            {"count", {{"type", "integer"}, {"minimum", 0}}},
                            {"total", nullable(u64("null with count=none"))},
                            {"next_after", nullable(u64("null on the last page or another order"))},
                            {"next_cursor", nullable(str("null on the last page"))},
                            {"plan", schema_ref("Plan")}},
                           {"records", "count", "total", "next_after", "next_cursor"});
  s["Filter"] = {{"description",
                  "the text form (hp < 50 && team = \"red\") or the JSON array form "
                  "([\"&&\", [\"<\", \"hp\", 50], [\"in\", \"team\", [\"red\", \"blue\"]]])"},
                 {"oneOf", {{{"type", "string"}}, {{"type", "array"}, {"items", json::object()}}}}};
  json fields = {{"oneOf", {{{"type", "string"}}, array_of(str())}}};
  s["Query"] = object(
      {{"filter", schema_ref("Filter")},
       {"order", described(fields, "fields, '-' for descending: \"-score,name\" or an array")},
       {"select", described(fields, "the fields to return: \"hp,pos.x\" or an array")},
       {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10000}, {"default", 100}}},
       {"after", u64("id cursor (id order only)")},
       {"offset", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100000}}},
       {"cursor", str("the next_cursor of the previous page")},
       {"count", {{"type", "string"}, {"enum", {"exact", "none"}}}},
       {"explain", {{"type", "boolean"}}}});
  s["Health"] = object({{"status", {{"type", "string"}, {"enum", {"ok"}}}},
                        {"node", str()},
                        {"epoch", str("random at each start (hex)")},
                        {"tick", u64("ticks run since start")},
                        {"uptime_s", {{"type", "number"}}}},
                       {"status", "node", "epoch", "tick", "uptime_s"});
  s["ClusterNode"] = object({{"name", str()},
                             {"address", str()},
                             {"http", str()},
                             {"up", {{"type", "boolean"}}},
                             {"state", str()},
                             {"rtt_ms", {{"type", "number"}}},
                             {"tables", array_of(str())}},
                            {"name", "address", "up", "tables"});
  s["Cluster"] = object({{"node", str()},
                         {"directory_epoch", {{"type", "integer"}}},
                         {"nodes", array_of(schema_ref("ClusterNode"))}},
                        {"node", "nodes"});
  s["SnapshotRequest"] = {{"type", "object"},
                          {"additionalProperties", false},
                          {"description", "empty (or no body at all)"}};
  s["SnapshotResult"] = object({{"path", str()}, {"bytes", u64()}, {"ms", {{"type", "number"}}}},
                               {"path", "bytes", "ms"});
  s["Stats"] = {{"type", "object"},
                {"description", "the figures of /metrics as JSON (docs/api.md, HTTP)"},
                {"properties",
                 {{"node", str()},
                  {"uptime_s", {{"type", "number"}}},
                  {"version", u64()},
                  {"tick", {{"type", "object"}}},
                  {"tables", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                  {"requests", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                  {"storage", {{"type", "object"}}},
                  {"idempotency", {{"type", "object"}}}}},
                {"additionalProperties", true}};
  s["Procedure"] =
      object({{"name", str()}, {"description", str()}, {"params", {{"description", "free-form"}}}},
             {"name", "description"});
  s["ProcedureList"] = array_of(schema_ref("Procedure"));
  s["OpenApiDocument"] = {
      {"type", "object"},
      {"description", "this document"},
      {"required", {"openapi", "info", "paths"}},
      {"properties",
       {{"openapi", str()}, {"info", {{"type", "object"}}}, {"paths", {{"type", "object"}}}}}};
  // JSON-RPC 2.0.
  s["RpcId"] = {{"description", "a string or a number; null only in answers to unreadable calls"}};
  s["RpcRequest"] = {
      {"type", "object"},
      {"properties",
       {{"jsonrpc", {{"type", "string"}, {"enum", {"2.0"}}}},
        {"id", schema_ref("RpcId")},
        {"method", str("a db.* built-in or a procedure (GET /procedures)")},
        {"params",
         {{"type", "object"}, {"description", "the method's params (always an object)"}}}}},
      {"required", {"jsonrpc", "method"}},
      {"description", "a call; without id it is a notification (no answer)"}};
  s["RpcError"] = object({{"code",
                           {{"type", "integer"},
                            {"description",
                             "-32700 parse error, -32600 invalid request, -32601 method not "
                             "found, -32602 invalid params, -32603 internal, -32000 a "
                             "database error (data.code)"}}},
                          {"message", str()},
                          {"data", object({{"code", schema_ref("ErrorCode")}})}},
                         {"code", "message"});
  s["RpcResponse"] = object({{"jsonrpc", {{"type", "string"}, {"enum", {"2.0"}}}},
                             {"id", schema_ref("RpcId")},
                             {"result", {{"description", "the method's result (on success)"}}},
                             {"error", schema_ref("RpcError")}},
                            {"jsonrpc", "id"});
  s["RpcCall"] = {{"oneOf",
                   {schema_ref("RpcRequest"),
                    {{"type", "array"}, {"items", schema_ref("RpcRequest")}, {"minItems", 1}}}},
                  {"description", "one call or a batch"}};
  s["RpcAnswer"] = {
      {"oneOf",
       {schema_ref("RpcResponse"), {{"type", "array"}, {"items", schema_ref("RpcResponse")}}}},
      {"description",
       "one answer, or the answers of a batch (notifications get "
       "none)"}};
  return s;
}

// Live subscriptions (API.md): the frames of GET /ws and the events of the SSE stream. OpenAPI
// 3.0 has no place for them but extensions (x-tickdb-frames, x-tickdb-event-data), where they
// are written out whole (a component referenced only from there would be "unused").
json subscription_client_frame() {
  return {{"type", "object"},
          {"description", "a WebSocket text frame from the client"},
          {"properties",
           {{"op", {{"type", "string"}, {"enum", {"auth", "subscribe", "unsubscribe", "ping"}}}},
            {"token", str("auth: the bearer token")},
            {"sub", str("the subscription's name on this connection")},
            {"table", schema_ref("Name")},
            {"filter", schema_ref("Filter")},
            {"select", array_of(str())},
            {"since", str("a resume token: <epoch>:<version>")},
            {"rate_hz", {{"type", "number"}}}}},
          {"required", {"op"}}};
}

json subscription_frame() {
  const json changes = object({{"ins", array_of(schema_ref("Record"))},
                               {"upd", array_of(schema_ref("Record"))},
                               {"del", array_of(u64())},
                               {"out", array_of(u64())}});
  return {{"type", "object"},
          {"description",
           "a frame from the node (WebSocket text frame; in SSE, event: is the type "
           "and data: the other fields). Clients ignore types they do not know."},
          {"properties",
           {{"type",
             {{"type", "string"},
              {"enum",
               {"hello", "snapshot", "ready", "delta", "progress", "reset", "ended", "error",
                "pong"}}}},
            {"sub", str()},
            {"version", u64()},
            {"from", u64()},
            {"to", u64()},
            {"tick", u64()},
            {"rows", array_of(schema_ref("Record"))},
            {"count", nullable({{"type", "integer"}})},
            {"resumed", {{"type", "boolean"}}},
            {"schema", schema_ref("TableDescription")},
            {"changes", {{"type", "object"}, {"additionalProperties", changes}}},
            {"reason", str()},
            {"code", str()},
            {"message", str()}}},
          {"required", {"type"}}};
}

json json_content(json schema) {
  return {{"application/json", {{"schema", std::move(schema)}}}};
}

json error_answer(const char* description) {
  return {{"description", description}, {"content", json_content(schema_ref("Error"))}};
}

json fixed_responses(bool auth) {
  json r;
  r["BadRequest"] = error_answer("bad_json or invalid_argument");
  if (auth)
    r["Unauthorized"] =
        error_answer("unauthorized: Authorization: Bearer <token> is missing or wrong");
  r["NotFound"] = error_answer("not_found: the table, record, type, field, relation or index");
  r["Conflict"] =
      error_answer("already_exists, conflict, foreign_key_violation or unique_violation");
  r["PayloadTooLarge"] = error_answer("payload_too_large: the body is over http.max_body_bytes");
  r["Internal"] = error_answer("io_error, corruption or internal");
  r["Unavailable"] =
      error_answer("node_unavailable: the node is stopping, or the table's node is down");
  r["Timeout"] = error_answer("node_timeout: the table's node did not answer in time");
  r["Exhausted"] = error_answer("resource_exhausted: memory, disk or ids");
  return r;
}

json query_param(const char* name, json schema, const char* description) {
  return {{"name", name},
          {"in", "query"},
          {"required", false},
          {"description", description},
          {"schema", std::move(schema)}};
}
json path_param(const char* name, json schema, const char* description) {
  return {{"name", name},
          {"in", "path"},
          {"required", true},
          {"description", description},
          {"schema", std::move(schema)}};
}

json fixed_parameters() {
  json p;
  p["TableName"] = path_param("name", schema_ref("Name"), "the table");
  p["TypeName"] = path_param("name", schema_ref("Name"), "the composite type");
  p["FieldName"] = path_param("field", schema_ref("Name"), "the field");
  p["IndexName"] = path_param("index", schema_ref("Name"), "the index");
  p["RecordId"] = path_param(
      "id", integer("uint64", 1, std::numeric_limits<std::uint64_t>::max() - 1), "the record id");
  p["RelationId"] = path_param(
      "id", integer("uint64", 1, std::numeric_limits<std::uint64_t>::max()), "the relation id");
  p["filter"] = query_param(
      "filter", {{"type", "string"}, {"maxLength", 4096}},
      "a filter in the text form (hp < 50 && team = \"red\"), or the JSON array form when it "
      "starts with '['");
  p["order"] = query_param("order", {{"type", "string"}},
                           "fields, '-' for descending: -score,name (id breaks ties)");
  p["select"] = query_param("select", {{"type", "string"}},
                            "the fields to return: hp,pos.x (id is always included)");
  p["limit"] = query_param(
      "limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10000}, {"default", 100}},
      "records per page");
  p["after"] = query_param("after", u64(), "id cursor: records with id > after (id order only)");
  p["offset"] = query_param("offset", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100000}},
                            "records to skip");
  p["cursor"] = query_param("cursor", {{"type", "string"}}, "the next_cursor of the previous page");
  p["count"] = query_param("count", {{"type", "string"}, {"enum", {"exact", "none"}}},
                           "total: exact (default without a filter) or none (default with one)");
  p["explain"] = query_param("explain", {{"type", "boolean"}},
                             "add the plan: the index used, records scanned, ms");
  p["rate_hz"] =
      query_param("rate_hz", {{"type", "number"}, {"exclusiveMinimum", true}, {"minimum", 0}},
                  "at most that many deltas a second (at most the tick rate)");
  p["since"] = query_param("since", {{"type", "string"}},
                           "a resume token <epoch>:<version> (Last-Event-ID wins over it)");
  p["tick_window"] = query_param(
      "tick_window", {{"type", "integer"}, {"minimum", 1}, {"maximum", TickStats::kWindow}},
      "tick percentiles over the last that many ticks");
  return p;
}

// ---- the operations of the route table ----

enum class Body { none, required, optional };

struct OperationDoc {
  const char* route;  // "GET /health": HttpRoute::method + " " + pattern_text
  const char* operation_id;
  const char* tag;
  const char* request;  // a component schema, "" for none
  Body body;
  const char* response;  // a component schema, "" for no body
  std::vector<const char*> query;
};

const std::vector<const char*> kQueryParams = {"filter", "order",  "select", "limit",  "after",
                                               "offset", "cursor", "count",  "explain"};

const std::vector<OperationDoc>& operation_docs() {
  static const std::vector<OperationDoc> docs = {
      {"GET /health", "getHealth", "operations", "", Body::none, "Health", {}},
      {"GET /ws", "subscribeWebSocket", "subscriptions", "", Body::none, "", {}},
      {"GET /table/{name}/events",
       "subscribeEvents",
       "subscriptions",
       "",
       Body::none,
       "",
       {"filter", "select", "rate_hz", "since"}},
      {"GET /cluster", "getCluster", "operations", "", Body::none, "Cluster", {}},
      {"POST /snapshot",
       "writeSnapshot",
       "operations",
       "SnapshotRequest",
       Body::optional,
       "SnapshotResult",
       {}},
      {"GET /metrics", "getMetrics", "operations", "", Body::none, "", {}},
      {"GET /stats", "getStats", "operations", "", Body::none, "Stats", {"tick_window"}},
      {"GET /procedures", "listProcedures", "operations", "", Body::none, "ProcedureList", {}},
      {"GET /openapi.json", "getOpenApi", "operations", "", Body::none, "OpenApiDocument", {}},
      {"POST /rpc", "callRpc", "rpc", "RpcCall", Body::required, "RpcAnswer", {}},
      {"POST /type", "createType", "types", "TypeSpec", Body::required, "TypeDescription", {}},
      {"GET /types", "listTypes", "types", "", Body::none, "TypeList", {}},
      {"GET /type/{name}", "getType", "types", "", Body::none, "TypeDescription", {}},
      {"DELETE /type/{name}", "dropType", "types", "", Body::none, "", {}},
      {"POST /table", "createTable", "tables", "TableSpec", Body::required, "TableDescription", {}},
      {"GET /tables", "listTables", "tables", "", Body::none, "TableList", {}},
      {"GET /table/{name}", "getTable", "tables", "", Body::none, "TableDescription", {}},
      {"DELETE /table/{name}", "dropTable", "tables", "", Body::none, "", {}},
      {"POST /table/{name}/field",
       "addField",
       "tables",
       "FieldSpec",
       Body::required,
       "TableDescription",
       {}},
      {"DELETE /table/{name}/field/{field}",
       "removeField",
       "tables",
       "",
       Body::none,
       "TableDescription",
       {}},
      {"POST /relation",
       "createRelation",
       "relations",
       "RelationSpec",
       Body::required,
       "Relation",
       {}},
      {"GET /relations", "listRelations", "relations", "", Body::none, "RelationList", {}},
      {"DELETE /relation/{id}", "deleteRelation", "relations", "", Body::none, "", {}},
      {"POST /table/{name}/record",
       "insertRecord",
       "records",
       "RecordValues",
       Body::required,
       "Record",
       {}},
      {"GET /table/{name}/record/{id}", "getRecord", "records", "", Body::none, "Record", {}},
      {"PUT /table/{name}/record/{id}",
       "updateRecord",
       "records",
       "RecordValues",
       Body::required,
       "Record",
       {}},
      {"PATCH /table/{name}/record/{id}",
       "patchRecord",
       "records",
       "RecordValues",
       Body::required,
       "Record",
       {}},
      {"DELETE /table/{name}/record/{id}", "deleteRecord", "records", "", Body::none, "", {}},
      {"POST /table/{name}/index",
       "createIndex",
       "indexes",
       "IndexSpec",
       Body::required,
       "IndexDescription",
       {}},
      {"GET /table/{name}/indexes", "listIndexes", "indexes", "", Body::none, "IndexList", {}},
      {"DELETE /table/{name}/index/{index}", "dropIndex", "indexes", "", Body::none, "", {}},
      {"GET /table/{name}/records", "listRecords", "records", "", Body::none, "RecordPage",
       kQueryParams},
      {"POST /table/{name}/query",
       "queryRecords",
       "records",
       "Query",
       Body::required,
       "RecordPage",
       {}},
      {"POST /table/{name}/records",
       "insertRecords",
       "records",
       "BulkInsert",
       Body::required,
       "BulkInsertResult",
       {}},
  };
  return docs;
}

const std::vector<std::pair<const char*, const char*>> kTags = {
    {"operations", "Health, figures, snapshots, procedures, this document, the cluster"},
    {"types", "Composite types"},
    {"tables", "Tables and their fields"},
    {"relations", "Relations between tables (foreign keys)"},
    {"records", "Records of any table (see the table tags for typed ones)"},
    {"indexes", "Indexes and unique constraints"},
    {"rpc", "JSON-RPC 2.0"},
    {"subscriptions", "Live subscriptions: WebSocket and Server-Sent Events"},
};

bool is_write(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// Adds the error answers an operation can give.
void add_error_responses(json& responses, std::string_view method, std::string_view pattern,
                         bool auth, bool health) {
  auto add = [&](const char* status, const char* name) {
    if (!responses.contains(status)) responses[status] = ref("responses", name);
  };
  // Any target may be malformed or carry an unknown query parameter.
  add("400", "BadRequest");
  if (auth && !health) add("401", "Unauthorized");
  if (pattern.find('{') != std::string_view::npos) add("404", "NotFound");
  if (is_write(method) && pattern != "/rpc") add("409", "Conflict");
  if (is_write(method)) add("413", "PayloadTooLarge");
  add("500", "Internal");
  if (is_write(method) || pattern.rfind("/table/", 0) == 0) {
    add("503", "Unavailable");
    add("504", "Timeout");
  }
  if (is_write(method) && pattern != "/snapshot") add("507", "Exhausted");
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The component parameter of a path placeholder: {name} after /table, {id} after /record, ...
const char* path_parameter(const std::vector<std::string>& pattern, std::size_t i) {
  const std::string& seg = pattern[i];
  const std::string& before = i > 0 ? pattern[i - 1] : seg;
  if (seg == "{field}") return "FieldName";
  if (seg == "{index}") return "IndexName";
  if (seg == "{id}") return before == "relation" ? "RelationId" : "RecordId";
  if (before == "type") return "TypeName";
  return "TableName";
}

std::string rpc_description(const json& procedures) {
  std::string d =
      "JSON-RPC 2.0 (https://www.jsonrpc.org/specification): a call or a batch (an array); a "
      "call without id is a notification and gets no answer, a batch of only notifications "
      "answers 204. HTTP status is 200 for every well-formed request: errors are in the body "
      "(RpcError). The callables of this node (GET /procedures):";
  for (const auto& p : procedures)
    if (p.contains("name") && p["name"].is_string())
      d += "\n- `" + p["name"].get<std::string>() + "`" +
           (p.contains("description") && p["description"].is_string() &&
                    !p["description"].get<std::string>().empty()
                ? ": " + p["description"].get<std::string>()
                : "");
  return d;
}

// The operation of one route.
json route_operation(const HttpRoute& r, const OperationDoc* doc, const OpenApiInput& in) {
  json op;
  op["summary"] = r.summary;
  op["operationId"] = doc ? doc->operation_id : lower(r.method) + "_" + r.pattern_text;
  op["tags"] = json::array({doc ? doc->tag : "operations"});
  const std::string ok = std::to_string(r.ok_status);
  json responses = json::object();
  json params = json::array();
  for (std::size_t i = 0; i < r.pattern.size(); ++i)
    if (r.pattern[i].front() == '{')
      params.push_back(ref("parameters", path_parameter(r.pattern, i)));
  if (doc)
    for (const char* q : doc->query) params.push_back(ref("parameters", q));

  if (r.pattern_text == "/ws") {
    auto header = [&](const char* name, json schema, bool required, const char* description) {
      params.push_back({{"name", name},
                        {"in", "header"},
                        {"required", required},
                        {"description", description},
                        {"schema", std::move(schema)}});
    };
    header("Upgrade", {{"type", "string"}, {"enum", {"websocket"}}}, true, "RFC 6455");
    header("Sec-WebSocket-Key", {{"type", "string"}}, true, "RFC 6455");
    header("Sec-WebSocket-Version", {{"type", "string"}, {"enum", {"13"}}}, true, "RFC 6455");
    header("Sec-WebSocket-Protocol", {{"type", "string"}, {"enum", {"tickdb.v1"}}}, false,
           "the subprotocol: tickdb.v1");
    op["description"] =
        "A WebSocket (RFC 6455, subprotocol tickdb.v1, JSON text frames) with many "
        "subscriptions: the client sends the x-tickdb-frames client objects (subscribe, "
        "unsubscribe, ping; auth as the first frame when the upgrade carries no token), the "
        "node sends the server objects (hello, snapshot, ready, delta, progress, reset, "
        "ended, error). OpenAPI 3.0 cannot describe the frames of a WebSocket: the schemas are "
        "in x-tickdb-frames, the rules in API.md (Live subscriptions).";
    op["x-tickdb-frames"] = {{"client", subscription_client_frame()},
                             {"server", subscription_frame()}};
    responses[ok] = {{"description", "Switching Protocols: the WebSocket is open"}};
    responses["426"] = error_answer("Upgrade Required: a plain GET (send Upgrade: websocket)");
  } else if (r.pattern_text == "/table/{name}/events") {
    params.push_back({{"name", "Last-Event-ID"},
                      {"in", "header"},
                      {"required", false},
                      {"description", "the resume token of the last event seen"},
                      {"schema", {{"type", "string"}}}});
    op["description"] =
        "One subscription as Server-Sent Events: event: is the frame's type, data: its other "
        "fields as JSON (x-tickdb-event-data), id: the resume token on ready, delta and progress. "
        "A bad subscription is a plain 4xx error before any stream starts.";
    responses[ok] = {
        {"description", "the event stream (Connection: close)"},
        {"content",
         {{"text/event-stream",
           {{"schema",
             {{"type", "string"}, {"description", "events whose data is x-tickdb-event-data"}}},
            {"x-tickdb-event-data", subscription_frame()}}}}}};
  } else if (r.pattern_text == "/metrics") {
    responses[ok] = {{"description", "Prometheus text format 0.0.4"},
                     {"content", {{"text/plain", {{"schema", {{"type", "string"}}}}}}}};
  } else if (r.pattern_text == "/rpc") {
    op["description"] = rpc_description(in.procedures);
    responses[ok] = {{"description", "the answer, or the answers of a batch"},
                     {"content", json_content(schema_ref("RpcAnswer"))}};
    responses["204"] = {{"description", "every call was a notification"}};
  } else if (doc && *doc->response) {
    responses[ok] = {{"description", r.summary},
                     {"content", json_content(schema_ref(doc->response))}};
  } else {
    responses[ok] = {{"description", r.summary}};
  }
  if (doc && *doc->request)
    op["requestBody"] = {{"required", doc->body == Body::required},
                         {"content", json_content(schema_ref(doc->request))}};
  else if (!doc && is_write(r.method) && r.method != "DELETE")
    op["requestBody"] = {{"required", true}, {"content", json_content({{"type", "object"}})}};
  add_error_responses(responses, r.method, r.pattern_text, in.auth, r.pattern_text == "/health");
  if (!params.empty()) op["parameters"] = std::move(params);
  op["responses"] = std::move(responses);
  if (in.auth && r.pattern_text == "/health") op["security"] = json::array();
  return op;
}

// ---- per table ----

// Picks a name not taken yet: `want`, else want2, want3, ...
std::string unique_name(std::set<std::string>& taken, const std::string& want) {
  std::string n = want;
  for (int i = 2; taken.count(n); ++i) n = want + std::to_string(i);
  taken.insert(n);
  return n;
}

void add_table(json& doc, const TableSchema& schema, std::set<std::string>& schema_names,
               std::set<std::string>& operation_ids, bool auth) {
  const std::string& t = schema.name();
  const std::string stem = unique_name(schema_names, pascal_name(t));
  const std::string record = unique_name(schema_names, stem + "Record");
  const std::string values = unique_name(schema_names, stem + "Values");
  const std::string selection = unique_name(schema_names, stem + "Selection");
  const std::string page = unique_name(schema_names, stem + "Page");
  const std::string bulk = unique_name(schema_names, stem + "BulkInsert");
  json& schemas = doc["components"]["schemas"];
  schemas[record] = record_schema(schema, RecordShape::whole);
  schemas[values] = record_schema(schema, RecordShape::values);
  schemas[selection] = record_schema(schema, RecordShape::selection);
  json p = schemas["RecordPage"];
  p["properties"]["records"] = array_of(schema_ref(selection));
  p["description"] = "a page of records of table " + t;
  schemas[page] = std::move(p);
  schemas[bulk] = object({{"records", array_of(schema_ref(values))}}, {"records"});

  const std::string tag = "table " + t;
  doc["tags"].push_back({{"name", tag},
                         {"description", "Typed records of table " + t + " (record_size " +
                                             std::to_string(schema.record_size()) + " bytes)"}});
  const std::string base = "/table/" + t;
  auto operation = [&](const std::string& method, const std::string& path, const std::string& id,
                       std::string summary, int ok, const std::string& request,
                       const std::string& response, json params) {
    json op;
    op["summary"] = std::move(summary);
    op["operationId"] = unique_name(operation_ids, id);
    op["tags"] = json::array({tag});
    if (!params.empty()) op["parameters"] = params;
    if (!request.empty())
      op["requestBody"] = {{"required", true}, {"content", json_content(schema_ref(request))}};
    json responses = json::object();
    responses[std::to_string(ok)] =
        response.empty()
            ? json{{"description", "done"}}
            : json{{"description", "done"}, {"content", json_content(schema_ref(response))}};
    add_error_responses(responses, method, "/table/{name}" + path, auth, false);
    op["responses"] = std::move(responses);
    doc["paths"][base + path][lower(method)] = std::move(op);
  };
  const json id_param = json::array({ref("parameters", "RecordId")});
  operation("POST", "/record", "insert" + stem + "Record", "Insert a record into " + t, 201, values,
            record, json::array());
  operation("GET", "/record/{id}", "get" + stem + "Record", "Read a record of " + t, 200, "",
            record, id_param);
  operation("PUT", "/record/{id}", "update" + stem + "Record", "Change fields of a record of " + t,
            200, values, record, id_param);
  operation("PATCH", "/record/{id}", "patch" + stem + "Record",
            "Change fields of a record of " + t + " (as PUT)", 200, values, record, id_param);
  operation("DELETE", "/record/{id}", "delete" + stem + "Record", "Delete a record of " + t, 204,
            "", "", id_param);
  json query = json::array();
  for (const char* q : kQueryParams) query.push_back(ref("parameters", q));
  operation("GET", "/records", "list" + stem + "Records", "A page of records of " + t, 200, "",
            page, query);
  operation("POST", "/records", "insert" + stem + "Records",
            "Insert records into " + t + ", atomically", 201, bulk, "BulkInsertResult",
            json::array());
  operation("POST", "/query", "query" + stem + "Records",
            "A page of records of " + t + ", the query in the body", 200, "Query", page,
            json::array());
}

}  // namespace

std::vector<std::string> documented_routes() {
  std::vector<std::string> out;
  for (const auto& d : operation_docs()) out.emplace_back(d.route);
  return out;
}

json build_openapi(const OpenApiInput& in) {
  std::map<std::string, const OperationDoc*> docs;
  for (const auto& d : operation_docs()) docs[d.route] = &d;

  json doc;
  doc["openapi"] = "3.0.3";
  doc["info"] = {
      {"title", "tickdb"},
      {"version", "0.1.0"},
      {"description",
       "tickdb's HTTP API (API.md, docs/api.md): REST and JSON-RPC 2.0 over one in-memory "
       "relational database, live subscriptions. Built per request from the route table and "
       "the current catalog: each table has its typed record schemas and paths."}};
  doc["servers"] = json::array({{{"url", in.server_url}, {"description", "this node"}}});
  doc["tags"] = json::array();
  for (const auto& [name, description] : kTags)
    doc["tags"].push_back({{"name", name}, {"description", description}});
  doc["components"]["schemas"] = fixed_schemas();
  doc["components"]["responses"] = fixed_responses(in.auth);
  doc["components"]["parameters"] = fixed_parameters();
  if (in.auth) {
    doc["components"]["securitySchemes"]["bearer"] = {
        {"type", "http"},
        {"scheme", "bearer"},
        {"description", "http.auth_token: Authorization: Bearer <token> (all but /health)"}};
    doc["security"] = json::array({{{"bearer", json::array()}}});
  } else {
    doc["security"] = json::array();  // stated: no operation needs a credential
  }

  json& paths = doc["paths"] = json::object();
  std::set<std::string> operation_ids;
  for (const auto& r : *in.routes) {
    auto it = docs.find(r.method + " " + r.pattern_text);
    const OperationDoc* d = it == docs.end() ? nullptr : it->second;
    json op = route_operation(r, d, in);
    op["operationId"] = unique_name(operation_ids, op["operationId"].get<std::string>());
    paths[r.pattern_text][lower(r.method)] = std::move(op);
  }

  std::set<std::string> schema_names;
  for (const auto& [name, s] : doc["components"]["schemas"].items()) schema_names.insert(name);
  if (in.db)
    for (const auto& [name, t] : in.db->tables())
      add_table(doc, *t->schema(), schema_names, operation_ids, in.auth);
  return doc;
}

json Router::openapi(std::string_view host) const {
  OpenApiInput in;
  in.routes = &table_.routes();
  auto v = rt_->current();
  in.db = v.get();
  in.procedures = rt_->registry().list();
  in.auth = !cfg_.http_auth_token.empty();
  // The Host the client used, when it is a plain host[:port]; else the configured address.
  const bool plain_host =
      !host.empty() && host.size() <= 255 &&
      std::all_of(host.begin(), host.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
      });
  in.server_url =
      "http://" +
      (plain_host ? std::string(host) : cfg_.http_address + ":" + std::to_string(cfg_.http_port));
  return build_openapi(in);
}

}  // namespace tickdb
