// RouteTable: API.md's routes by method and path pattern, and the parsing of a request target
// (path segments percent-decoded one by one, the query string) that matching needs.
//
// Every route has a small integer id, so the request figures count by index instead of by a
// string built per request; the first ids name the answers that matched no route.
//
// Thread-safety: filled by the Router's constructor, read-only afterwards (safe from many
// threads).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace tickdb {

using RouteId = std::uint16_t;
// Ids of answers that no route gave.
enum : RouteId {
  kRouteUnknown = 0,   // not yet routed
  kRouteBaseline = 1,  // --baseline answers
  kRouteRejected = 2,  // refused by the session before routing (413, 431, 400)
  kRouteInvalid = 3,   // a malformed target
  kRouteNotFound = 4,  // no route has the path
  kRouteMethodNotAllowed = 5,
  kFirstRoute = 6,
};

using Params = std::vector<std::string>;  // the {placeholders} of the matched pattern, in order
using Query = std::map<std::string, std::string>;
// A handler answers through `done` (moving it away when it answers later).
using Handler = std::function<void(const HttpRequest&, const Params&, const Query&, Done&)>;

struct HttpRoute {
  RouteId id = 0;
  std::string method;                // "GET", ...
  std::vector<std::string> pattern;  // segments; "{x}" matches one segment
  std::string pattern_text;          // "/table/{name}"
  std::string summary;
  int ok_status = 200;
  Handler handler;
};

// A request target split for matching: decoded path segments and the query parameters.
struct Target {
  std::vector<std::string> segments;
  Query query;
};
// invalid_argument for a target that is not origin-form, a malformed percent-escape, or a
// query parameter given twice.
Result<Target> parse_target(std::string_view target);

class RouteTable {
 public:
  RouteTable();
  void add(std::string method, std::string pattern, std::string summary, int ok_status, Handler h);

  struct Match {
    const HttpRoute* route = nullptr;  // null: none
    Params params;
    std::string allow;  // when the path matched but not the method: the methods it has
  };
  // HEAD matches the GET routes.
  Match match(std::string_view method, const std::vector<std::string>& segments) const;

  const std::vector<HttpRoute>& routes() const { return routes_; }
  // Names of every id, for the figures: "GET /health", ..., and the unrouted answers.
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<HttpRoute> routes_;
  std::vector<std::string> names_;
};

}  // namespace tickdb
