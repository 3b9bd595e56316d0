#include "tools/cli/node_client.h"

#include "tools/cli/exit_codes.h"

namespace tickdb::cli {

void throw_server_error(int status, const std::string& body) {
  const json b = json::parse(body, nullptr, false);
  if (b.is_object() && b.contains("error") && b["error"].is_object()) {
    const json& e = b["error"];
    throw CliError(kExitServerError, e.value("code", std::string("error")) + ": " +
                                         e.value("message", std::string()) + " (HTTP " +
                                         std::to_string(status) + ")");
  }
  throw CliError(kExitServerError, "HTTP " + std::to_string(status) +
                                       (body.empty() ? std::string() : ": " + body.substr(0, 500)));
}

json NodeClient::call(const std::string& method, const std::string& target, const json* body) {
  HttpResponse r = http_.request(method, target, body ? body->dump() : std::string());
  if (r.status < 200 || r.status >= 300) throw_server_error(r.status, r.body);
  if (r.status == 204 || r.body.empty()) return nullptr;
  json out = json::parse(r.body, nullptr, false);
  if (out.is_discarded())
    throw CliError(kExitServerError, "the node answered something that is not JSON");
  return out;
}

json NodeClient::rpc(const std::string& method, const json* params) {
  json req = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}};
  if (params) req["params"] = *params;
  json res = post("/rpc", req);
  if (res.is_object() && res.contains("error")) {
    const json& e = res["error"];
    std::string code = e.contains("data") && e["data"].is_object() && e["data"].contains("code")
                           ? e["data"]["code"].get<std::string>()
                           : std::to_string(e.value("code", 0));
    throw CliError(kExitServerError, code + ": " + e.value("message", std::string()));
  }
  if (!res.is_object() || !res.contains("result"))
    throw CliError(kExitServerError, "the node answered no JSON-RPC result");
  return res["result"];
}

}  // namespace tickdb::cli
