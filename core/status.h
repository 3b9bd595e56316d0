// Error values of the storage engine.
//
// Every public function of core/ that can fail returns a Status or a Result<T>; the kinds map
// 1:1 to the error codes of API.md so the HTTP layer translates without guessing. Exceptions
// never cross a core/ API (std::bad_alloc from an allocation is turned into
// resource_exhausted where it can happen).
//
// Thread-safety: plain values; const methods are safe from many threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tickdb {

enum class Errc {
  ok,
  bad_json,
  invalid_argument,
  unauthorized,
  not_found,
  method_not_allowed,
  already_exists,
  foreign_key_violation,
  conflict,
  unique_violation,
  payload_too_large,
  header_too_large,  // the request headers are over the session's limit (HTTP 431)
  node_unavailable,
  node_timeout,
  io_error,    // a file could not be read or written: the message names the file and the OS error
  corruption,  // a snapshot or log file is damaged: the message names the file and what is wrong
  internal,
  procedure_failed,
  resource_exhausted,
  // Inside a cluster: a procedure used tables that all live on another node; the message ends
  // "node '<name>'". The RPC endpoint forwards the call there; clients never see it (HTTP 421).
  // Clients do see it for a live subscription to a table of another node (streams are served
  // by the table's node: http/subscription_hub.h, misdirected_subscription).
  misdirected,
};

// The API.md error code ("not_found", ...).
std::string_view errc_name(Errc c);
// The HTTP status API.md gives for the code: one function of the kind, so no status travels
// beside an Error.
int errc_http_status(Errc c);

struct Error {
  Errc code = Errc::internal;
  std::string message;
};

// A Status is ok or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : err_(std::move(e)) {}  // NOLINT: implicit by design
  static Status ok() { return {}; }

  bool is_ok() const { return !err_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  Errc code() const { return err_ ? err_->code : Errc::ok; }
  const std::string& message() const {
    static const std::string empty;
    return err_ ? err_->message : empty;
  }
  const Error& error() const { return *err_; }

 private:
  std::optional<Error> err_;
};

// A Result<T> holds a T or an Error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}                         // NOLINT
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}                     // NOLINT
  Result(Status s) : v_(std::in_place_index<1>, s.error()) { assert(!s.is_ok()); }  // NOLINT

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }
  Errc code() const { return is_ok() ? Errc::ok : error().code; }
  const std::string& message() const { return error().message; }
  Status status() const { return is_ok() ? Status{} : Status{error()}; }

 private:
  std::variant<T, Error> v_;
};

inline Error make_error(Errc c, std::string msg) {
  return Error{c, std::move(msg)};
}

}  // namespace tickdb

// Early return on failure: TICKDB_TRY(status_expr);
#define TICKDB_TRY(expr)                                      \
  do {                                                        \
    auto tickdb_try_s_ = (expr);                              \
    if (!tickdb_try_s_.is_ok()) return tickdb_try_s_.error(); \
  } while (0)
