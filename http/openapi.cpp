// /openapi.json: an OpenAPI 3 document built from the route table.
#include <algorithm>

#include "http/router.h"

namespace tickdb {

using nlohmann::json;

json Router::openapi() const {
  json paths = json::object();
  for (const auto& r : table_.routes()) {
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    json params = json::array();
    for (const auto& seg : r.pattern)
      if (seg.front() == '{')
        params.push_back({{"name", seg.substr(1, seg.size() - 2)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
    if (r.pattern_text == "/table/{name}/records" && r.method == "GET") {
      // API.md, Queries.
      auto query = [&](const char* name, json schema, const char* description) {
        params.push_back({{"name", name},
                          {"in", "query"},
                          {"required", false},
                          {"description", description},
                          {"schema", std::move(schema)}});
      };
      query("filter", {{"type", "string"}, {"maxLength", 4096}},
            "a filter in the text form (hp < 50 && team = \"red\") or the JSON array form");
      query("order", {{"type", "string"}},
            "fields, '-' for descending: -score,name (id breaks ties)");
      query("select", {{"type", "string"}},
            "the fields to return: hp,pos.x (id is always included)");
      query("limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10000}, {"default", 100}},
            "records per page");
      query("after", {{"type", "integer"}, {"minimum", 0}}, "id cursor (id order only)");
      query("offset", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100000}},
            "records to skip");
      query("cursor", {{"type", "string"}}, "the next_cursor of the previous page");
      query("count", {{"type", "string"}, {"enum", {"exact", "none"}}},
            "total: exact (default without a filter) or none (default with one)");
      query("explain", {{"type", "boolean"}}, "add the plan: index, records scanned, ms");
    }
    json op;
    op["summary"] = r.summary;
    op["responses"][std::to_string(r.ok_status)]["description"] = "success";
    op["responses"]["default"]["description"] = "error (see API.md)";
    op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"] =
        "#/components/schemas/Error";
    if (!params.empty()) op["parameters"] = params;
    if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH")
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
    paths[r.pattern_text][method] = op;
  }
  json error_schema = {
      {"type", "object"},
      {"properties",
       {{"error",
         {{"type", "object"},
          {"properties", {{"code", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}}};
  json doc;
  doc["openapi"] = "3.0.3";
  doc["info"] = {
      {"title", "tickdb"}, {"version", "0.1.0"}, {"description", "tickdb HTTP API (API.md)"}};
  doc["paths"] = paths;
  doc["components"]["schemas"]["Error"] = error_schema;
  doc["components"]["securitySchemes"]["bearer"] = {{"type", "http"}, {"scheme", "bearer"}};
  return doc;
}

}  // namespace tickdb
