// The OpenAPI 3.0 document of GET /openapi.json, built per request from the route table and the
// current catalog, for client generators (redocly lint finds no error in it:
// tests/e2e/openapi_test.py).
//
// What it holds:
//   - every route of the RouteTable as an operation with an operationId, its tag, path and
//     query parameters, request and response schemas and the error answers it can give
//     (components/responses, all with the Error schema of API.md); GET /ws and the SSE stream
//     as far as OpenAPI 3.0 can say (101 / text/event-stream, the frames as components);
//   - POST /rpc with the JSON-RPC 2.0 envelopes (a call or a batch, an answer or a batch) and
//     the callables of the registry listed in its description;
//   - per table of the catalog (as PostgREST does): components/schemas/<Table>Record (a whole
//     stored record), <Table>Values (what a write takes), <Table>Selection (what a query
//     returns: id and the selected fields), <Table>Page, and table-specific paths
//     (/table/players/record/{id}, ...) that reference them, so a generated client has typed
//     records;
//   - the bearer scheme, applied to every operation but /health, when http.auth_token is set;
//   - servers: the Host the request came to (else http.address:http.port).
//
// The record schema mapping (value_schema/record_schema) is exposed for its unit test.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/schema.h"
#include "http/route_table.h"

namespace tickdb {

class DbVersion;

// The three shapes a record takes in the API.
enum class RecordShape {
  whole,      // an answer with a stored record: id and every field, all present
  values,     // a write's body: any subset of the fields (and "id" to ask for one on insert)
  selection,  // a query's record: id always, then the selected fields (all without select)
};

// The JSON schema of one value of type `t`: integers with their range (formats int32/int64,
// uint64 for u64 whose values go beyond 2^53), f32/f64 numbers, bool, str(N) as a string of at
// most N bytes (maxLength counts characters, so bytes are the real limit: x-tickdb-max-bytes),
// composites as nested objects (every sub-field required in `whole`, none otherwise).
nlohmann::json value_schema(const FieldType& t, RecordShape shape);
// The object schema of a record of `schema`: "id" and every field, no other key.
nlohmann::json record_schema(const TableSchema& schema, RecordShape shape);
// "players" -> "Players", "game_state" -> "GameState": the stem of a table's component names.
std::string pascal_name(std::string_view name);

struct OpenApiInput {
  const std::vector<HttpRoute>* routes = nullptr;
  const DbVersion* db = nullptr;  // the catalog the table schemas come from
  nlohmann::json procedures;      // Registry::list(): the callables of POST /rpc
  bool auth = false;              // http.auth_token is set
  std::string server_url;         // "http://127.0.0.1:8080"
};
nlohmann::json build_openapi(const OpenApiInput& in);

// "METHOD /pattern" of every route whose operation the document describes by hand (the rest
// get a generic operation): the unit test requires every route to be among them.
std::vector<std::string> documented_routes();

}  // namespace tickdb
