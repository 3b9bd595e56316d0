#include "core/status.h"

namespace tickdb {

std::string_view errc_name(Errc c) {
  switch (c) {
    case Errc::ok:
      return "ok";
    case Errc::bad_json:
      return "bad_json";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::unauthorized:
      return "unauthorized";
    case Errc::not_found:
      return "not_found";
    case Errc::method_not_allowed:
      return "method_not_allowed";
    case Errc::already_exists:
      return "already_exists";
    case Errc::foreign_key_violation:
      return "foreign_key_violation";
    case Errc::conflict:
      return "conflict";
    case Errc::unique_violation:
      return "unique_violation";
    case Errc::payload_too_large:
      return "payload_too_large";
    case Errc::header_too_large:
      return "header_too_large";
    case Errc::node_unavailable:
      return "node_unavailable";
    case Errc::node_timeout:
      return "node_timeout";
    case Errc::io_error:
      return "io_error";
    case Errc::corruption:
      return "corruption";
    case Errc::internal:
      return "internal";
    case Errc::procedure_failed:
      return "procedure_failed";
    case Errc::resource_exhausted:
      return "resource_exhausted";
    case Errc::misdirected:
      return "misdirected";
  }
  return "internal";
}

int errc_http_status(Errc c) {
  switch (c) {
    case Errc::ok:
      return 200;
    case Errc::bad_json:
      return 400;
    case Errc::invalid_argument:
      return 400;
    case Errc::unauthorized:
      return 401;
    case Errc::not_found:
      return 404;
    case Errc::method_not_allowed:
      return 405;
    case Errc::already_exists:
      return 409;
    case Errc::foreign_key_violation:
      return 409;
    case Errc::conflict:
      return 409;
    case Errc::unique_violation:
      return 409;
    case Errc::payload_too_large:
      return 413;
    case Errc::header_too_large:
      return 431;
    case Errc::node_unavailable:
      return 503;
    case Errc::node_timeout:
      return 504;
    case Errc::io_error:
      return 500;
    case Errc::corruption:
      return 500;
    case Errc::internal:
      return 500;
    case Errc::procedure_failed:
      return 500;
    case Errc::resource_exhausted:
      return 507;
    case Errc::misdirected:
      return 421;
  }
  return 500;
}

}  // namespace tickdb
