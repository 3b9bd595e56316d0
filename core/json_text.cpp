#include "core/json_text.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace tickdb {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool JsonCursor::string(std::string_view& s) {
  if (peek() != '"') return false;
  const char* start = ++p_;
  bool ascii = true;
  while (p_ < end_) {
    auto c = static_cast<unsigned char>(*p_);
    if (c == '"') break;
    if (c == '\\' || c < 0x20) return false;  // escapes: the general path decodes them
    if (c >= 0x80) ascii = false;
    ++p_;
  }
  if (p_ == end_) return false;
  s = std::string_view(start, static_cast<std::size_t>(p_ - start));
  ++p_;
  return ascii || is_valid_utf8(s);
}

bool JsonCursor::number(json& j) {
  skip_ws();
  const char* start = p_;
  const char* q = p_;
  if (q < end_ && *q == '-') ++q;
  if (q == end_ || !is_digit(*q)) return false;
  if (*q == '0') {
    ++q;
  } else {
    while (q < end_ && is_digit(*q)) ++q;
  }
  bool integer = true;
  if (q < end_ && *q == '.') {
    integer = false;
    ++q;
    if (q == end_ || !is_digit(*q)) return false;
    while (q < end_ && is_digit(*q)) ++q;
  }
  if (q < end_ && (*q == 'e' || *q == 'E')) {
    integer = false;
    ++q;
    if (q < end_ && (*q == '+' || *q == '-')) ++q;
    if (q == end_ || !is_digit(*q)) return false;
    while (q < end_ && is_digit(*q)) ++q;
  }
  if (integer) {
    if (*start == '-') {
      std::int64_t v = 0;
      auto r = std::from_chars(start, q, v);
      if (r.ec != std::errc() || r.ptr != q) return false;  // beyond int64: nlohmann makes it a float
      j = v;
    } else {
      std::uint64_t v = 0;
      auto r = std::from_chars(start, q, v);
      if (r.ec != std::errc() || r.ptr != q) return false;
      j = v;
    }
  } else {
    double d = 0;
    auto r = std::from_chars(start, q, d);
    if (r.ec != std::errc() || r.ptr != q || !std::isfinite(d)) return false;
    j = d;
  }
  p_ = q;
  return true;
}

bool JsonCursor::literal(json& j) {
  skip_ws();
  auto rest = static_cast<std::size_t>(end_ - p_);
  auto is = [&](std::string_view w) { return rest >= w.size() && std::memcmp(p_, w.data(), w.size()) == 0; };
  if (is("true")) {
    j = true;
    p_ += 4;
  } else if (is("false")) {
    j = false;
    p_ += 5;
  } else if (is("null")) {
    j = nullptr;
    p_ += 4;
  } else {
    return false;
  }
  return true;
}

bool JsonCursor::scalar(json& j) {
  char c = peek();
  if (c == '"') {
    std::string_view s;
    if (!string(s)) return false;
    j = std::string(s);
    return true;
  }
  if (c == '-' || is_digit(c)) return number(j);
  return literal(j);
}

bool JsonCursor::skip(std::string_view* span) {
  char c = peek();
  const char* start = p_;
  bool ok = false;
  if (c == '{') {
    ok = object([&](std::string_view) { return skip(); });
  } else if (c == '[') {
    ok = array([&] { return skip(); });
  } else if (c == '"') {
    std::string_view s;
    ok = string(s);
  } else {
    json j;
    ok = c == '-' || is_digit(c) ? number(j) : literal(j);
  }
  if (ok && span) *span = std::string_view(start, static_cast<std::size_t>(p_ - start));
  return ok;
}

namespace {

bool fields_from_text(const std::vector<Field>& fields, JsonCursor& in, std::byte* base,
                      std::optional<std::uint64_t>* id, bool top);

bool value_from_text(const FieldType& t, JsonCursor& in, std::byte* out, const std::string& path) {
  switch (t.kind) {
    case Kind::Composite:
      return fields_from_text(t.composite->fields, in, out, nullptr, false);
    case Kind::Str: {
      std::string_view s;
      if (!in.string(s) || s.size() > t.size) return false;  // no zero byte: a control character
      std::memset(out, 0, t.size);
      if (!s.empty()) std::memcpy(out, s.data(), s.size());
      return true;
    }
    default: {
      json j;
      if (!in.scalar(j)) return false;
      return value_from_json(t, j, out, path).is_ok();
    }
  }
}

bool fields_from_text(const std::vector<Field>& fields, JsonCursor& in, std::byte* base,
                      std::optional<std::uint64_t>* id, bool top) {
  return in.object([&](std::string_view key) {
    if (top && key == "id") {
      json v;
      if (!id || !in.number(v)) return false;
      if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) return false;
      *id = v.get<std::uint64_t>();
      return true;
    }
    const Field* f = nullptr;
    for (const auto& c : fields)
      if (c.name == key) f = &c;
    if (!f) return false;
    return value_from_text(f->type, in, base + f->offset, f->name);
  });
}

}  // namespace

bool record_from_text(const TableSchema& schema, JsonCursor& in, std::byte* record,
                      std::optional<std::uint64_t>* id) {
  return fields_from_text(schema.fields(), in, record, id, true);
}

}  // namespace tickdb
