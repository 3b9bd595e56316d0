// Reading JSON text straight into record bytes, without building a JSON document: the fast
// path of the hot write requests (a db.transaction of inserts), where nlohmann's DOM (a map
// node and a string per key, a heap value per string) costs more than the database work.
//
// JsonCursor is a strict forward reader of RFC 8259 text. It is deliberately narrower than a
// full parser: strings with escapes, numbers no 64-bit integer or finite double holds, and
// nesting deeper than its limit make it give up (return false). A caller that gets false
// falls back to the general path (parse_json + record_from_json), which then accepts the
// input or answers with the canonical error. So the fast path only ever answers inputs it
// understood completely, and with exactly the bytes record_from_json would have written.
//
// Thread-safety: a cursor belongs to one thread; the functions have no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/json_codec.h"

namespace tickdb {

class JsonCursor {
 public:
  explicit JsonCursor(std::string_view text, std::size_t max_depth = 64)
      : p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {}

  // The next character after whitespace ('\0' at the end).
  char peek() {
    skip_ws();
    return p_ < end_ ? *p_ : '\0';
  }
  // Where the next value starts (after whitespace): with a later position(), the text of
  // the values read in between.
  const char* position() {
    skip_ws();
    return p_;
  }
  // True when nothing but whitespace is left.
  bool at_end() {
    skip_ws();
    return p_ == end_;
  }

  // Reads an object: on_key(key) is called for every member with the cursor on its value and
  // must read that value (returning false to give up). Keys are escape-free UTF-8.
  template <class F>
  bool object(F&& on_key) {
    if (peek() != '{' || ++depth_ > max_depth_) return false;
    ++p_;
    if (peek() == '}') {
      ++p_;
      --depth_;
      return true;
    }
    for (;;) {
      std::string_view key;
      if (!string(key) || peek() != ':') return false;
      ++p_;
      if (!on_key(key)) return false;
      char c = peek();
      ++p_;
      if (c == '}') break;
      if (c != ',') return false;
    }
    --depth_;
    return true;
  }

  // Reads an array: on_element() is called with the cursor on each element and must read it.
  template <class F>
  bool array(F&& on_element) {
    if (peek() != '[' || ++depth_ > max_depth_) return false;
    ++p_;
    if (peek() == ']') {
      ++p_;
      --depth_;
      return true;
    }
    for (;;) {
      if (!on_element()) return false;
      char c = peek();
      ++p_;
      if (c == ']') break;
      if (c != ',') return false;
    }
    --depth_;
    return true;
  }

  // A string without escapes, valid UTF-8 and free of control characters; `s` views the text.
  bool string(std::string_view& s);
  // A number, typed as nlohmann types it: unsigned for non-negative integers, integer for
  // negative ones, float for any fraction or exponent. False for integers beyond 64 bits and
  // floats beyond a double.
  bool number(json& j);
  // true / false / null.
  bool literal(json& j);
  // Any scalar value (string, number, literal) as a JSON value.
  bool scalar(json& j);
  // Skips one whole value (checking its structure and strings), viewing its text in `span`.
  bool skip(std::string_view* span = nullptr);

 private:
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  const char* p_;
  const char* end_;
  std::size_t depth_ = 0;
  std::size_t max_depth_;
};

// Applies a JSON object read from `in` onto `record`, as record_from_json does (fields not
// named keep their bytes; "id" is returned through `id`). False when the text is anything the
// fast path does not take or record_from_json would refuse: the caller then uses the general
// path, which gives the canonical answer. `record` may be partly written on false.
bool record_from_text(const TableSchema& schema, JsonCursor& in, std::byte* record,
                      std::optional<std::uint64_t>* id);

}  // namespace tickdb
