// RequestParser: one HTTP/1.1 request read into an HttpRequest with Beast's basic_parser
// (request line, headers, Content-Length and chunked bodies, limits), keeping only the
// headers tickdb uses: no header container is built per request.
//
// It adds what RFC 9112 asks of a server on top of Beast: exactly one Host in an HTTP/1.1
// request (3.2), an absolute-form target reduced to its path and query (3.2.2), and whether
// the client waits for `100 Continue` (RFC 9110 10.1.1). Check header_error() once
// is_header_done(): it is the 400 to answer, if any.
//
// A parser reads one request; the session makes a new one for the next (cheap: no
// allocation). Only server.cpp and the fuzz targets include this (it pulls in Beast).
//
// Thread-safety: belongs to one session.
#pragma once

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include "http/message.h"

namespace tickdb {

class RequestParser : public boost::beast::http::basic_parser<true> {
 public:
  using field = boost::beast::http::field;
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;

  HttpRequest req;
  bool head = false;             // a HEAD request: answer without the body
  bool expect_continue = false;  // "Expect: 100-continue"
  unsigned version = 11;         // 10 or 11
  // After the header: why the request must be answered 400, or empty.
  const std::string& header_error() const { return header_error_; }

 private:
  void on_request_impl(boost::beast::http::verb, string_view method, string_view target,
                       int version, error_code&) override {
    req.method.assign(method.data(), method.size());
    head = method == "HEAD";
    this->version = version == 10 ? 10 : 11;
    std::string_view t(target.data(), target.size());
    if (!t.empty() && t[0] != '/' && t != "*") {
      // absolute-form: "http://host:port/path?q" -> "/path?q"
      const auto scheme = t.find("://");
      if (scheme != std::string_view::npos) {
        const auto path = t.find_first_of("/?", scheme + 3);
        if (path == std::string_view::npos) {
          req.target = "/";
        } else {
          req.target = t[path] == '?' ? "/" : "";
          req.target.append(t.substr(path));
        }
        return;
      }
    }
    req.target.assign(t);
  }
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(field name, string_view name_string, string_view value, error_code&) override {
    switch (name) {
      case field::host:
        if (++hosts_ > 1) header_error_ = "the request has more than one Host header";
        break;  // kept: /openapi.json names it in its servers
      case field::authorization:
        req.authorization.assign(value.data(), value.size());
        return;
      case field::expect:
        if (boost::beast::iequals(value, "100-continue")) expect_continue = true;
        return;
      case field::content_length:
      case field::transfer_encoding:
      case field::connection:
      case field::user_agent:
      case field::accept:
      case field::content_type:
      case field::accept_encoding:
        return;  // Beast reads the framing ones; the others tickdb does not use
      default:
        break;
    }
    if (req.headers.size() >= 32) return;
    std::string k(name_string.data(), name_string.size());
    for (auto& c : k)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    req.headers.emplace_back(std::move(k), std::string(value.data(), value.size()));
  }
  void on_header_impl(error_code&) override {
    if (version == 11 && hosts_ == 0 && header_error_.empty())
      header_error_ = "an HTTP/1.1 request needs a Host header";
  }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (length) req.body.reserve(static_cast<std::size_t>(*length));
  }
  std::size_t on_body_impl(string_view body, error_code&) override {
    req.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override {
    req.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  int hosts_ = 0;
  std::string header_error_;
};

}  // namespace tickdb
