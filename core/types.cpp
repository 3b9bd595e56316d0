#include "core/types.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace tickdb {

namespace {
struct KindInfo {
  Kind kind;
  std::string_view name;
  std::uint32_t size;
};
constexpr KindInfo kKinds[] = {
    {Kind::Bool, "bool", 1}, {Kind::I8, "i8", 1},   {Kind::I16, "i16", 2}, {Kind::I32, "i32", 4},
    {Kind::I64, "i64", 8},   {Kind::U8, "u8", 1},   {Kind::U16, "u16", 2}, {Kind::U32, "u32", 4},
    {Kind::U64, "u64", 8},   {Kind::F32, "f32", 4}, {Kind::F64, "f64", 8}, {Kind::Str, "str", 0},
};
}  // namespace

std::string_view kind_name(Kind k) {
  for (const auto& i : kKinds)
    if (i.kind == k) return i.name;
  return "composite";
}

std::optional<Kind> builtin_kind(std::string_view name) {
  for (const auto& i : kKinds)
    if (i.name == name) return i.kind;
  return std::nullopt;
}

std::uint32_t scalar_size(Kind k) {
  for (const auto& i : kKinds)
    if (i.kind == k) return i.size;
  return 0;
}

bool is_integer(Kind k) {
  switch (k) {
    case Kind::I8: case Kind::I16: case Kind::I32: case Kind::I64:
    case Kind::U8: case Kind::U16: case Kind::U32: case Kind::U64:
      return true;
    default:
      return false;
  }
}
bool is_float(Kind k) { return k == Kind::F32 || k == Kind::F64; }

bool is_valid_name(std::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(n[0])) return false;
  return std::all_of(n.begin() + 1, n.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

Status check_name(std::string_view name, std::string_view what) {
  if (is_valid_name(name)) return {};
  return make_error(Errc::invalid_argument,
                    std::string(what) + " '" + std::string(name.substr(0, 80)) +
                        "' is not a valid name (letters, digits and _, not starting with a "
                        "digit, 1 to 63 characters)");
}

std::string FieldType::name() const {
  if (kind == Kind::Composite) return composite ? composite->name : "composite";
  return std::string(kind_name(kind));
}

bool FieldType::operator==(const FieldType& o) const {
  if (kind != o.kind || size != o.size) return false;
  if (kind != Kind::Composite) return true;
  return composite == o.composite || (composite && o.composite && composite->name == o.composite->name);
}

Result<FieldType> TypeRegistry::resolve(std::string_view type_name, std::uint32_t str_size) const {
  if (auto k = builtin_kind(type_name)) {
    if (*k == Kind::Str) {
      if (str_size < 1 || str_size > kMaxStrSize)
        return make_error(Errc::invalid_argument,
                          "str needs a size from 1 to 4096 bytes, got " + std::to_string(str_size));
      return FieldType{Kind::Str, str_size, nullptr};
    }
    if (str_size != 0)
      return make_error(Errc::invalid_argument,
                        "size is only for str fields, not for " + std::string(type_name));
    return FieldType{*k, scalar_size(*k), nullptr};
  }
  auto c = find_shared(type_name);
  if (!c) return make_error(Errc::not_found, "type '" + std::string(type_name.substr(0, 80)) + "' does not exist");
  if (str_size != 0)
    return make_error(Errc::invalid_argument, "size is only for str fields, not for " + c->name);
  return FieldType{Kind::Composite, c->size, c};
}

Result<std::vector<Field>> TypeRegistry::layout(const std::vector<FieldSpec>& specs,
                                                bool reserve_id, std::uint32_t* total) const {
  if (specs.size() > kMaxFields)
    return make_error(Errc::invalid_argument, "at most 1024 fields");
  std::vector<Field> out;
  out.reserve(specs.size());
  std::set<std::string_view> seen;
  std::uint64_t offset = 0;
  for (const auto& s : specs) {
    TICKDB_TRY(check_name(s.name, "field name"));
    if (reserve_id && s.name == "id")
      return make_error(Errc::invalid_argument, "'id' is reserved for the record id");
    if (!seen.insert(s.name).second)
      return make_error(Errc::invalid_argument, "duplicate field name '" + s.name + "'");
    auto t = resolve(s.type, s.size);
    if (!t) return t.error();
    if (!s.default_value.empty() && s.default_value.size() != t->size)
      return make_error(Errc::invalid_argument, "default of field '" + s.name + "' has " +
                                                    std::to_string(s.default_value.size()) +
                                                    " bytes, the type has " +
                                                    std::to_string(t->size));
    if (!s.default_value.empty())  // defaults given as bytes obey the same rules as records
      TICKDB_TRY(validate_value_bytes(*t, s.default_value.data(), s.name));
    Field f{s.name, *t, static_cast<std::uint32_t>(offset), s.default_value};
    offset += t->size;
    if (offset > kMaxRecordSize)
      return make_error(Errc::invalid_argument, "a record may hold at most 1048576 bytes");
    out.push_back(std::move(f));
  }
  *total = static_cast<std::uint32_t>(offset);
  return out;
}

const CompositeType* TypeRegistry::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.get();
}

std::shared_ptr<const CompositeType> TypeRegistry::find_shared(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Result<std::shared_ptr<const CompositeType>> TypeRegistry::create(
    std::string_view name, const std::vector<FieldSpec>& specs) {
  TICKDB_TRY(check_name(name, "type name"));
  if (builtin_kind(name))
    return make_error(Errc::already_exists, std::string(name) + " is a built-in type");
  if (find(name)) return make_error(Errc::already_exists, "type '" + std::string(name) + "' already exists");
  if (specs.empty())
    return make_error(Errc::invalid_argument, "a composite type needs at least one field");
  for (const auto& s : specs)
    if (s.type == name)
      return make_error(Errc::invalid_argument,
                        "type '" + std::string(name) + "' cannot contain itself");
  std::uint32_t size = 0;
  auto fields = layout(specs, false, &size);
  if (!fields) return fields.error();
  auto c = std::make_shared<CompositeType>(CompositeType{std::string(name), std::move(*fields), size});
  by_name_.emplace(c->name, c);
  order_.push_back(c);
  return std::shared_ptr<const CompositeType>(c);
}

Status TypeRegistry::drop(std::string_view name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end())
    return make_error(Errc::not_found, "type '" + std::string(name) + "' does not exist");
  auto users = users_of(name);
  if (!users.empty())
    return make_error(Errc::conflict,
                      "type '" + std::string(name) + "' is used by type '" + users.front() + "'");
  auto ptr = it->second;
  by_name_.erase(it);
  order_.erase(std::find(order_.begin(), order_.end(), ptr));
  return {};
}

bool type_uses(const FieldType& t, std::string_view name) {
  if (t.kind != Kind::Composite || !t.composite) return false;
  if (t.composite->name == name) return true;
  for (const auto& f : t.composite->fields)
    if (type_uses(f.type, name)) return true;
  return false;
}

std::vector<std::string> TypeRegistry::users_of(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& c : order_) {
    if (c->name == name) continue;
    for (const auto& f : c->fields)
      if (f.type.kind == Kind::Composite && f.type.composite->name == name) {
        out.push_back(c->name);
        break;
      }
  }
  return out;
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Status validate_value_bytes(const FieldType& t, const std::byte* p, std::string_view name) {
  auto bad = [&](const std::string& what) {
    return make_error(Errc::invalid_argument, "field '" + std::string(name) + "': " + what);
  };
  switch (t.kind) {
    case Kind::Bool: {
      auto b = std::to_integer<unsigned>(*p);
      if (b > 1) return bad("a bool must be 0 or 1, got " + std::to_string(b));
      return {};
    }
    case Kind::F32:
      if (!std::isfinite(load<float>(p))) return bad("not a finite number");
      return {};
    case Kind::F64:
      if (!std::isfinite(load<double>(p))) return bad("not a finite number");
      return {};
    case Kind::Str: {
      std::string_view sv(reinterpret_cast<const char*>(p), t.size);
      auto end = sv.find('\0');
      if (end != std::string_view::npos) {
        for (std::size_t i = end; i < sv.size(); ++i)
          if (sv[i] != '\0') return bad("a string must be followed only by zero padding");
        sv = sv.substr(0, end);
      }
      if (!is_valid_utf8(sv)) return bad("not valid UTF-8");
      return {};
    }
    case Kind::Composite:
      for (const auto& f : t.composite->fields)
        TICKDB_TRY(validate_value_bytes(f.type, p + f.offset, f.name));
      return {};
    default:
      return {};
  }
}

}  // namespace tickdb
