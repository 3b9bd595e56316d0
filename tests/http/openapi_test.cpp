// /openapi.json without sockets: the record schema of every field type, the route table and the
// document listing the same operations, every $ref resolving, per-table typed paths, and the
// bearer scheme only when a token is set. (redocly lints a live node's document:
// tests/e2e/openapi_test.py.)
#include <catch2/catch.hpp>
#include <functional>
#include <set>

#include "core/json_codec.h"
#include "http/openapi.h"
#include "http/router.h"

using namespace tickdb;
using nlohmann::json;

namespace {

std::shared_ptr<const TableSchema> schema_of(TypeRegistry& types, const json& spec) {
  auto s = table_spec_from_json(spec, types);
  REQUIRE(s.is_ok());
  auto t = TableSchema::build(s->name, s->fields, types);
  REQUIRE(t.is_ok());
  return *t;
}

std::unique_ptr<Runtime> runtime() {
  RuntimeConfig rc;
  rc.start_ticks = false;
  rc.workers = 1;
  return std::move(Runtime::start(rc).value());
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Every {"$ref": "#/components/..."} of `j`.
void collect_refs(const json& j, std::set<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "$ref" && v.is_string()) out.insert(v.get<std::string>());
      collect_refs(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_refs(v, out);
  }
}

}  // namespace

TEST_CASE("record schemas: each field type maps to its JSON schema with its range",
          "[http][openapi]") {
  TypeRegistry types;
  REQUIRE(
      types.create("vec3", {FieldSpec("x", "f32"), FieldSpec("y", "f32"), FieldSpec("z", "f32")})
          .is_ok());
  auto s = schema_of(types, {{"name", "players"},
                             {"fields",
                              {{{"name", "alive"}, {"type", "bool"}},
                               {{"name", "a"}, {"type", "i8"}},
                               {{"name", "b"}, {"type", "i16"}},
                               {{"name", "hp"}, {"type", "i32"}, {"default", 100}},
                               {{"name", "d"}, {"type", "i64"}},
                               {{"name", "e"}, {"type", "u8"}},
                               {{"name", "f"}, {"type", "u16"}},
                               {{"name", "g"}, {"type", "u32"}},
                               {{"name", "owner"}, {"type", "u64"}},
                               {{"name", "speed"}, {"type", "f32"}},
                               {{"name", "mass"}, {"type", "f64"}},
                               {{"name", "name"}, {"type", "str"}, {"size", 16}},
                               {{"name", "pos"}, {"type", "vec3"}}}}});
  json whole = record_schema(*s, RecordShape::whole);
  const json& p = whole["properties"];
  CHECK(whole["type"] == "object");
  CHECK(whole["additionalProperties"] == false);
  CHECK(whole["required"] == json({"id", "alive", "a", "b", "hp", "d", "e", "f", "g", "owner",
                                   "speed", "mass", "name", "pos"}));
  CHECK(p["id"]["type"] == "integer");
  CHECK(p["id"]["format"] == "uint64");
  CHECK(p["id"]["minimum"] == 1);
  CHECK(p["alive"]["type"] == "boolean");
  auto range = [&](const char* f, const char* format, json min, json max) {
    INFO(f);
    CHECK(p[f]["type"] == "integer");
    CHECK(p[f]["format"] == format);
    CHECK(p[f]["minimum"] == min);
    CHECK(p[f]["maximum"] == max);
  };
  range("a", "int32", -128, 127);
  range("b", "int32", -32768, 32767);
  range("hp", "int32", std::numeric_limits<std::int32_t>::min(), 2147483647);
  range("d", "int64", std::numeric_limits<std::int64_t>::min(),
        std::numeric_limits<std::int64_t>::max());
  range("e", "int32", 0, 255);
  range("f", "int32", 0, 65535);
  range("g", "int64", 0, 4294967295u);
  range("owner", "uint64", 0, std::numeric_limits<std::uint64_t>::max());
  // u64's maximum is written exactly (beyond 2^53).
  CHECK(p["owner"].dump().find("\"maximum\":18446744073709551615") != std::string::npos);
  CHECK(p["e"]["x-tickdb-type"] == "u8");
  CHECK(p["hp"]["default"] == 100);
  CHECK_FALSE(p["a"].contains("default"));
  CHECK(p["speed"]["type"] == "number");
  CHECK(p["speed"]["format"] == "float");
  CHECK(p["mass"]["type"] == "number");
  CHECK(p["mass"]["format"] == "double");
  CHECK(p["name"]["type"] == "string");
  CHECK(p["name"]["maxLength"] == 16);
  CHECK(p["name"]["x-tickdb-max-bytes"] == 16);
  CHECK(p["pos"]["type"] == "object");
  CHECK(p["pos"]["additionalProperties"] == false);
  CHECK(p["pos"]["required"] == json({"x", "y", "z"}));
  CHECK(p["pos"]["properties"]["y"]["format"] == "float");
  CHECK(p["pos"]["x-tickdb-type"] == "vec3");

  // A write's body: nothing required (defaults fill in), partial composites; a query's
  // records: id only.
  json values = record_schema(*s, RecordShape::values);
  CHECK_FALSE(values.contains("required"));
  CHECK_FALSE(values["properties"]["pos"].contains("required"));
  CHECK(values["additionalProperties"] == false);
  json selection = record_schema(*s, RecordShape::selection);
  CHECK(selection["required"] == json::array({"id"}));
  CHECK(selection["properties"].size() == whole["properties"].size());
}

TEST_CASE("table names become component stems", "[http][openapi]") {
  CHECK(pascal_name("players") == "Players");
  CHECK(pascal_name("game_state") == "GameState");
  CHECK(pascal_name("_x") == "X");
  CHECK(pascal_name("HTTPLog") == "HTTPLog");
  CHECK(pascal_name("a__1") == "A1");
}

TEST_CASE("the OpenAPI document has every route the router serves and no other",
          "[http][openapi]") {
  auto rt = runtime();
  Router r(*rt, Config{});
  json doc = r.openapi("127.0.0.1:9");
  std::set<std::string> served, described, documented;
  for (const auto& route : r.table().routes())
    served.insert(route.method + " " + route.pattern_text);
  for (const auto& d : documented_routes()) documented.insert(d);
  // Every route has its hand-written operation (else it would get a generic one).
  CHECK(documented == served);
  for (const auto& [path, methods] : doc["paths"].items())
    for (const auto& [m, op] : methods.items()) {
      std::string up = m;
      for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      described.insert(up + " " + path);
    }
  CHECK(described == served);  // no table yet: no typed paths
  for (const auto& route : r.table().routes()) {
    INFO(route.method << " " << route.pattern_text);
    const json& op = doc["paths"][route.pattern_text][lower(route.method)];
    CHECK(op["responses"].contains(std::to_string(route.ok_status)));
    CHECK(op["operationId"].is_string());
  }
  CHECK(doc["servers"][0]["url"] == "http://127.0.0.1:9");
  CHECK(doc["openapi"] == "3.0.3");
}

TEST_CASE("OpenAPI: every $ref resolves, operationIds are unique, records are typed per table",
          "[http][openapi]") {
  auto rt = runtime();
  REQUIRE(rt->call("db.create_type", {{"name", "vec3"},
                                      {"fields",
                                       {{{"name", "x"}, {"type", "f32"}},
                                        {{"name", "y"}, {"type", "f32"}},
                                        {{"name", "z"}, {"type", "f32"}}}}})
              .is_ok());
  for (const char* name : {"players", "Players", "game_state"})
    REQUIRE(rt->call("db.create_table", {{"name", name},
                                         {"fields",
                                          {{{"name", "hp"}, {"type", "i32"}},
                                           {{"name", "pos"}, {"type", "vec3"}},
                                           {{"name", "tag"}, {"type", "str"}, {"size", 8}}}}})
                .is_ok());
  Router r(*rt, Config{});
  json doc = r.openapi();
  const json& schemas = doc["components"]["schemas"];
  REQUIRE(schemas.contains("PlayersRecord"));
  REQUIRE(schemas.contains("GameStateRecord"));
  // "players" and "Players" share a stem: the second gets its own names.
  REQUIRE(schemas.contains("Players2Record"));
  CHECK(schemas["GameStateRecord"]["properties"]["tag"]["maxLength"] == 8);
  CHECK(schemas["GameStatePage"]["properties"]["records"]["items"]["$ref"] ==
        "#/components/schemas/GameStateSelection");

  const json& get = doc["paths"]["/table/game_state/record/{id}"]["get"];
  CHECK(get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] ==
        "#/components/schemas/GameStateRecord");
  CHECK(get["operationId"] == "getGameStateRecord");
  CHECK(doc["paths"]["/table/game_state/record"]["post"]["requestBody"]["content"]
           ["application/json"]["schema"]["$ref"] == "#/components/schemas/GameStateValues");
  for (const char* path : {"/table/game_state/records", "/table/game_state/query"})
    CHECK(doc["paths"].contains(path));

  std::set<std::string> refs;
  collect_refs(doc, refs);
  for (const auto& ref : refs) {
    INFO(ref);
    REQUIRE(ref.rfind("#/components/", 0) == 0);
    CHECK(doc.contains(json::json_pointer(ref.substr(1))));
  }
  std::set<std::string> ids;
  std::size_t ops = 0;
  for (const auto& [path, methods] : doc["paths"].items())
    for (const auto& [m, op] : methods.items()) {
      ++ops;
      ids.insert(op["operationId"].get<std::string>());
      // Every operation documents its errors.
      CHECK(op["responses"].contains("500"));
    }
  CHECK(ids.size() == ops);
  // No token: no operation needs a credential.
  CHECK(doc["security"] == json::array());
  CHECK_FALSE(doc["components"].contains("securitySchemes"));
}

TEST_CASE("OpenAPI: with http.auth_token the bearer scheme applies to all but /health",
          "[http][openapi]") {
  auto rt = runtime();
  Config cfg;
  cfg.http_auth_token = "secret";
  Router r(*rt, cfg);
  json doc = r.openapi();
  CHECK(doc["components"]["securitySchemes"]["bearer"] ==
        json({{"type", "http"},
              {"scheme", "bearer"},
              {"description", doc["components"]["securitySchemes"]["bearer"]["description"]}}));
  CHECK(doc["security"] == json::array({{{"bearer", json::array()}}}));
  CHECK(doc["paths"]["/health"]["get"]["security"] == json::array());
  CHECK(doc["paths"]["/tables"]["get"]["responses"].contains("401"));
  CHECK_FALSE(doc["paths"]["/health"]["get"]["responses"].contains("401"));
  // The document never carries the token.
  CHECK(doc.dump().find("secret") == std::string::npos);
}

TEST_CASE("OpenAPI: POST /rpc has the JSON-RPC envelopes and lists the callables",
          "[http][openapi]") {
  auto rt = runtime();
  Router r(*rt, Config{});
  json doc = r.openapi();
  const json& rpc = doc["paths"]["/rpc"]["post"];
  CHECK(rpc["requestBody"]["content"]["application/json"]["schema"]["$ref"] ==
        "#/components/schemas/RpcCall");
  CHECK(rpc["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] ==
        "#/components/schemas/RpcAnswer");
  CHECK(rpc["responses"].contains("204"));
  CHECK(rpc["description"].get<std::string>().find("`db.transaction`") != std::string::npos);
  CHECK(doc["components"]["schemas"]["RpcRequest"]["required"] == json({"jsonrpc", "method"}));
}

TEST_CASE("OpenAPI: GET .../records and the typed lists take the query parameters of API.md",
          "[http][openapi]") {
  auto rt = runtime();
  REQUIRE(rt->call("db.create_table", {{"name", "t"}, {"fields", json::array()}}).is_ok());
  Router r(*rt, Config{});
  json doc = r.openapi();
  for (const char* path : {"/table/{name}/records", "/table/t/records"}) {
    INFO(path);
    std::set<std::string> names;
    for (const auto& p : doc["paths"][path]["get"]["parameters"]) {
      const json& param = doc[json::json_pointer(p["$ref"].get<std::string>().substr(1))];
      if (param["in"] == "query") names.insert(param["name"].get<std::string>());
    }
    CHECK(names == std::set<std::string>{"filter", "order", "select", "limit", "after", "offset",
                                         "cursor", "count", "explain"});
  }
  CHECK(doc["paths"].contains("/table/{name}/query"));
}
