// The error vocabulary: every kind has the API.md code and HTTP status (docs/api.md lists
// them), and the status is a function of the kind alone.
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <utility>

#include "core/status.h"

using namespace tickdb;

TEST_CASE("every error kind has its API.md code and HTTP status", "[status]") {
  const std::pair<Errc, std::pair<const char*, int>> want[] = {
      {Errc::ok, {"ok", 200}},
      {Errc::bad_json, {"bad_json", 400}},
      {Errc::invalid_argument, {"invalid_argument", 400}},
      {Errc::unauthorized, {"unauthorized", 401}},
      {Errc::not_found, {"not_found", 404}},
      {Errc::method_not_allowed, {"method_not_allowed", 405}},
      {Errc::already_exists, {"already_exists", 409}},
      {Errc::foreign_key_violation, {"foreign_key_violation", 409}},
      {Errc::conflict, {"conflict", 409}},
      {Errc::unique_violation, {"unique_violation", 409}},
      {Errc::payload_too_large, {"payload_too_large", 413}},
      {Errc::header_too_large, {"header_too_large", 431}},
      {Errc::node_unavailable, {"node_unavailable", 503}},
      {Errc::node_timeout, {"node_timeout", 504}},
      {Errc::io_error, {"io_error", 500}},
      {Errc::corruption, {"corruption", 500}},
      {Errc::internal, {"internal", 500}},
      {Errc::procedure_failed, {"procedure_failed", 500}},
      {Errc::resource_exhausted, {"resource_exhausted", 507}},
  };
  std::set<std::string> names;
  for (const auto& [c, nv] : want) {
    INFO(nv.first);
    CHECK(errc_name(c) == nv.first);
    CHECK(errc_http_status(c) == nv.second);
    names.insert(std::string(errc_name(c)));
  }
  CHECK(names.size() == std::size(want));  // no two kinds share a code
  // The last enumerator is listed, so a kind added at the end without a row here fails.
  CHECK(static_cast<int>(Errc::resource_exhausted) + 1 == static_cast<int>(std::size(want)));
}

TEST_CASE("a Result carries the kind and message of its error", "[status]") {
  Result<int> r = make_error(Errc::io_error, "cannot write '/x': No space left");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.code() == Errc::io_error);
  CHECK(r.status().code() == Errc::io_error);
  CHECK(r.message() == "cannot write '/x': No space left");
  Result<int> v = 3;
  CHECK(v.code() == Errc::ok);
  CHECK(*v == 3);
}
