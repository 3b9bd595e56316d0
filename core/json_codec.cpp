#include "core/json_codec.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace tickdb {

namespace {

constexpr std::size_t kEscapeBound = 6;  // the longest escape of one byte: \u00XX
constexpr std::size_t kFloatBound = 40;  // a shortest double with its ".0"

Error bad(const std::string& path, const std::string& what) {
  return make_error(Errc::invalid_argument, "field '" + path + "': " + what);
}

template <class T>
Status put_int(const json& j, std::byte* out, const std::string& path) {
  if (j.is_number_unsigned()) {
    auto v = j.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
      return bad(
          path, std::to_string(v) + " is out of range for " + std::string(kind_name(kind_of<T>())));
    store<T>(out, static_cast<T>(v));
    return {};
  }
  if (j.is_number_integer()) {
    auto v = j.get<std::int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (v < 0)
        return bad(path, std::to_string(v) + " is out of range for " +
                             std::string(kind_name(kind_of<T>())));
      if (static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        return bad(path, std::to_string(v) + " is out of range for " +
                             std::string(kind_name(kind_of<T>())));
    } else {
      if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
        return bad(path, std::to_string(v) + " is out of range for " +
                             std::string(kind_name(kind_of<T>())));
    }
    store<T>(out, static_cast<T>(v));
    return {};
  }
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1.8e19)
      return bad(path, "expected an integer, got a floating-point number (" + j.dump() + ")");
    if (std::isfinite(d) && d == std::trunc(d))
      return bad(path, j.dump() + " is out of range for " + std::string(kind_name(kind_of<T>())));
    return bad(path, "expected an integer, got a fraction");
  }
  return bad(path, std::string("expected an integer, got ") + j.type_name());
}

// The writers below put text through a raw pointer into space the caller reserved for the
// worst case (the *_bound functions): one resize per value or record instead of a capacity
// check per character, which is most of what writing a short record cost.

// Shortest text that reads back as the same float / double; ".0" marks an integral one.
template <class F>
char* put_float(char* p, F v) {
  auto r = std::to_chars(p, p + kFloatBound - 2, v);
  if (std::string_view(p, static_cast<std::size_t>(r.ptr - p)).find_first_of(".eE") ==
      std::string_view::npos) {
    *r.ptr++ = '.';
    *r.ptr++ = '0';
  }
  return r.ptr;
}

double float_as_double(float f) {
  // The double nearest to f's shortest decimal form: prints short, reads back as f.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

char* put_escaped(char* p, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  *p++ = '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != '"' && c != '\\') {
      *p++ = ch;
      continue;
    }
    *p++ = '\\';
    switch (c) {
      case '"':
        *p++ = '"';
        break;
      case '\\':
        *p++ = '\\';
        break;
      case '\n':
        *p++ = 'n';
        break;
      case '\r':
        *p++ = 'r';
        break;
      case '\t':
        *p++ = 't';
        break;
      case '\b':
        *p++ = 'b';
        break;
      case '\f':
        *p++ = 'f';
        break;
      default:
        *p++ = 'u';
        *p++ = '0';
        *p++ = '0';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 15];
    }
  }
  *p++ = '"';
  return p;
}

template <class T>
char* put_int(char* p, T v) {
  return std::to_chars(p, p + 20, v).ptr;
}

// `,"name":` at most.
std::size_t key_bound(std::string_view name) {
  return 4 + kEscapeBound * name.size();
}

std::size_t value_bound(const FieldType& t) {
  switch (t.kind) {
    case Kind::Bool:
      return 5;
    case Kind::F32:
    case Kind::F64:
      return kFloatBound;
    case Kind::Str:
      return 2 + kEscapeBound * std::size_t{t.size};
    case Kind::Composite: {
      std::size_t n = 2;
      for (const auto& f : t.composite->fields) n += key_bound(f.name) + value_bound(f.type);
      return n;
    }
    default:
      return 20;  // the longest 64-bit integer
  }
}

char* put_value(char* p, const FieldType& t, const std::byte* v);

char* put_fields(char* p, const std::vector<Field>& fields, const std::byte* rec, bool first) {
  for (const auto& f : fields) {
    if (!first) *p++ = ',';
    first = false;
    p = put_escaped(p, f.name);
    *p++ = ':';
    p = put_value(p, f.type, rec + f.offset);
  }
  return p;
}

char* put_value(char* p, const FieldType& t, const std::byte* v) {
  switch (t.kind) {
    case Kind::Bool:
      if (load_bool(v)) {
        std::memcpy(p, "true", 4);
        return p + 4;
      }
      std::memcpy(p, "false", 5);
      return p + 5;
    case Kind::I8:
      return put_int(p, load<std::int8_t>(v));
    case Kind::I16:
      return put_int(p, load<std::int16_t>(v));
    case Kind::I32:
      return put_int(p, load<std::int32_t>(v));
    case Kind::I64:
      return put_int(p, load<std::int64_t>(v));
    case Kind::U8:
      return put_int(p, load<std::uint8_t>(v));
    case Kind::U16:
      return put_int(p, load<std::uint16_t>(v));
    case Kind::U32:
      return put_int(p, load<std::uint32_t>(v));
    case Kind::U64:
      return put_int(p, load<std::uint64_t>(v));
    case Kind::F32:
      return put_float(p, load<float>(v));
    case Kind::F64:
      return put_float(p, load<double>(v));
    case Kind::Str:
      return put_escaped(p, load_str(v, t.size));
    case Kind::Composite:
      *p++ = '{';
      p = put_fields(p, t.composite->fields, v, true);
      *p++ = '}';
      return p;
  }
  return p;
}

// Reserves `bound` bytes at the end of out, lets put write into them, keeps what it wrote.
template <class Put>
void append_bounded(std::string& out, std::size_t bound, Put&& put) {
  const std::size_t at = out.size();
  out.resize(at + bound);
  char* end = put(out.data() + at);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

void append_escaped(std::string& out, std::string_view s) {
  append_bounded(out, 2 + kEscapeBound * s.size(), [&](char* p) { return put_escaped(p, s); });
}

}  // namespace

Status value_from_json(const FieldType& t, const json& j, std::byte* out, const std::string& path) {
  switch (t.kind) {
    case Kind::Bool:
      if (!j.is_boolean())
        return bad(path, std::string("expected true or false, got ") + j.type_name());
      store_bool(out, j.get<bool>());
      return {};
    case Kind::I8:
      return put_int<std::int8_t>(j, out, path);
    case Kind::I16:
      return put_int<std::int16_t>(j, out, path);
    case Kind::I32:
      return put_int<std::int32_t>(j, out, path);
    case Kind::I64:
      return put_int<std::int64_t>(j, out, path);
    case Kind::U8:
      return put_int<std::uint8_t>(j, out, path);
    case Kind::U16:
      return put_int<std::uint16_t>(j, out, path);
    case Kind::U32:
      return put_int<std::uint32_t>(j, out, path);
    case Kind::U64:
      return put_int<std::uint64_t>(j, out, path);
    case Kind::F32:
    case Kind::F64: {
      if (!j.is_number()) return bad(path, std::string("expected a number, got ") + j.type_name());
      double d = j.get<double>();
      if (!std::isfinite(d)) return bad(path, "not a finite number");
      if (t.kind == Kind::F32) {
        // Numbers that round to FLT_MAX are in range (FLT_MAX prints as 3.4028235e+38, a
        // little above it); from FLT_MAX + half an ulp on they would round to infinity.
        constexpr double kF32Limit = 3.4028235677973366e38;  // FLT_MAX + 2^103
        if (std::fabs(d) >= kF32Limit) return bad(path, j.dump() + " is out of range for f32");
        store<float>(out, static_cast<float>(d));
      } else {
        store<double>(out, d);
      }
      return {};
    }
    case Kind::Str: {
      if (!j.is_string()) return bad(path, std::string("expected a string, got ") + j.type_name());
      const auto& s = j.get_ref<const std::string&>();
      if (s.size() > t.size)
        return bad(path, "string of " + std::to_string(s.size()) + " bytes is longer than " +
                             std::to_string(t.size));
      if (s.find('\0') != std::string::npos)
        return bad(path, "a string may not contain a zero byte");
      if (!is_valid_utf8(s)) return bad(path, "not valid UTF-8");
      std::memset(out, 0, t.size);
      std::memcpy(out, s.data(), s.size());
      return {};
    }
    case Kind::Composite: {
      if (!j.is_object()) return bad(path, std::string("expected an object, got ") + j.type_name());
      const auto& fields = t.composite->fields;
      for (auto it = j.begin(); it != j.end(); ++it) {
        const Field* f = nullptr;
        for (const auto& c : fields)
          if (c.name == it.key()) f = &c;
        if (!f)
          return bad(path + "." + it.key().substr(0, 80),
                     "no such field in type " + t.composite->name);
        TICKDB_TRY(value_from_json(f->type, it.value(), out + f->offset, path + "." + f->name));
      }
      return {};
    }
  }
  return make_error(Errc::internal, "unknown kind");
}

json value_to_json(const FieldType& t, const std::byte* p) {
  switch (t.kind) {
    case Kind::Bool:
      return load_bool(p);
    case Kind::I8:
      return load<std::int8_t>(p);
    case Kind::I16:
      return load<std::int16_t>(p);
    case Kind::I32:
      return load<std::int32_t>(p);
    case Kind::I64:
      return load<std::int64_t>(p);
    case Kind::U8:
      return load<std::uint8_t>(p);
    case Kind::U16:
      return load<std::uint16_t>(p);
    case Kind::U32:
      return load<std::uint32_t>(p);
    case Kind::U64:
      return load<std::uint64_t>(p);
    case Kind::F32:
      return float_as_double(load<float>(p));
    case Kind::F64:
      return load<double>(p);
    case Kind::Str:
      return std::string(load_str(p, t.size));
    case Kind::Composite: {
      json o = json::object();
      for (const auto& f : t.composite->fields) o[f.name] = value_to_json(f.type, p + f.offset);
      return o;
    }
  }
  return nullptr;
}

void append_json_string(std::string& out, std::string_view s) {
  append_escaped(out, s);
}

void append_value_json(std::string& out, const FieldType& t, const std::byte* p) {
  append_bounded(out, value_bound(t), [&](char* w) { return put_value(w, t, p); });
}

Status record_from_json(const TableSchema& schema, const json& obj, std::byte* record,
                        std::optional<std::uint64_t>* id) {
  if (!obj.is_object())
    return make_error(Errc::invalid_argument,
                      std::string("a record must be a JSON object, got ") + obj.type_name());
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& key = it.key();
    if (key == "id") {
      if (!id) return make_error(Errc::invalid_argument, "'id' cannot be given here");
      const json& v = it.value();
      if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
        return make_error(Errc::invalid_argument, "'id' must be an unsigned 64-bit integer");
      *id = v.get<std::uint64_t>();
      continue;
    }
    const Field* f = nullptr;
    for (const auto& c : schema.fields())
      if (c.name == key) f = &c;
    if (!f)
      return make_error(Errc::invalid_argument, "unknown field '" + key.substr(0, 80) +
                                                    "' for table '" + schema.name() + "'");
    TICKDB_TRY(value_from_json(f->type, it.value(), record + f->offset, f->name));
  }
  return {};
}

json record_to_json(const RecordView& r) {
  json o = json::object();
  o["id"] = r.id();
  for (const auto& f : r.schema().fields()) o[f.name] = value_to_json(f.type, r.data() + f.offset);
  return o;
}

void append_record_json(std::string& out, const RecordView& r) {
  const auto& fields = r.schema().fields();
  std::size_t bound = 7 + 20 + 1;  // {"id":N}
  for (const auto& f : fields) bound += key_bound(f.name) + value_bound(f.type);
  append_bounded(out, bound, [&](char* p) {
    std::memcpy(p, "{\"id\":", 6);
    p = put_int(p + 6, r.id());
    p = put_fields(p, fields, r.data(), false);
    *p++ = '}';
    return p;
  });
}

std::string record_to_string(const RecordView& r) {
  std::string s;
  append_record_json(s, r);
  return s;
}

Result<std::uint64_t> insert_json(Transaction& txn, std::string_view table, const json& values) {
  auto t = txn.find_table(table);
  if (!t) return t.error();
  RecordBuffer rec(*(*t)->schema());
  std::optional<std::uint64_t> id;
  TICKDB_TRY(record_from_json(rec.schema(), values, rec.data(), &id));
  return txn.insert(table, rec.bytes(), id);
}

Status update_json(Transaction& txn, std::string_view table, std::uint64_t id, const json& values) {
  auto t = txn.find_table(table);
  if (!t) return t.error();
  auto cur = (*t)->get(id);
  if (!cur)
    return make_error(Errc::not_found, "record " + std::to_string(id) + " of table '" +
                                           std::string(table) + "' does not exist");
  RecordBuffer rec(*cur);
  std::optional<std::uint64_t> given;
  TICKDB_TRY(record_from_json(rec.schema(), values, rec.data(), &given));
  if (given && *given != id)
    return make_error(Errc::invalid_argument, "'id' in the body (" + std::to_string(*given) +
                                                  ") differs from the record's id " +
                                                  std::to_string(id) + ": ids never change");
  return txn.update(table, id, rec.bytes());
}

// ---------------- schema ----------------

Result<FieldSpec> field_spec_from_json(const json& j, const TypeRegistry& types,
                                       std::optional<std::uint32_t>* offset) {
  if (!j.is_object()) return make_error(Errc::invalid_argument, "a field spec must be an object");
  FieldSpec s;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& k = it.key();
    if (k != "name" && k != "type" && k != "size" && k != "default" && k != "offset")
      return make_error(Errc::invalid_argument,
                        "unknown key '" + k.substr(0, 80) + "' in a field spec");
  }
  if (!j.contains("name") || !j["name"].is_string())
    return make_error(Errc::invalid_argument, "a field spec needs a string 'name'");
  if (!j.contains("type") || !j["type"].is_string())
    return make_error(Errc::invalid_argument,
                      "field spec '" + j["name"].dump().substr(0, 80) + "' needs a string 'type'");
  s.name = j["name"].get<std::string>();
  s.type = j["type"].get<std::string>();
  TICKDB_TRY(check_name(s.name, "field name"));
  std::optional<std::uint64_t> size;
  if (j.contains("size")) {
    const json& v = j["size"];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
      return make_error(Errc::invalid_argument,
                        "field '" + s.name + "': size must be a non-negative integer");
    size = v.get<std::uint64_t>();
  }
  bool is_str = s.type == "str";
  if (is_str) {
    if (!size)
      return make_error(Errc::invalid_argument,
                        "field '" + s.name + "': str needs a size (1 to 4096)");
    if (*size < 1 || *size > kMaxStrSize)
      return make_error(
          Errc::invalid_argument,
          "field '" + s.name + "': str size must be 1 to 4096, got " + std::to_string(*size));
    s.size = static_cast<std::uint32_t>(*size);
  }
  auto t = types.resolve(s.type, s.size);
  if (!t) return t.error();
  if (!is_str && size && *size != t->size)
    return make_error(Errc::invalid_argument, "field '" + s.name + "': type " + s.type +
                                                  " has size " + std::to_string(t->size) +
                                                  ", not " + std::to_string(*size));
  if (j.contains("default") && !j["default"].is_null()) {
    // A partial composite default keeps the type's own defaults for the sub-fields it omits.
    s.default_value = type_default_bytes(*t);
    TICKDB_TRY(value_from_json(*t, j["default"], s.default_value.data(), s.name));
  }
  if (j.contains("offset")) {
    const json& v = j["offset"];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
      return make_error(Errc::invalid_argument,
                        "field '" + s.name + "': offset must be a non-negative integer");
    if (v.get<std::uint64_t>() > kMaxRecordSize)
      return make_error(Errc::invalid_argument, "field '" + s.name + "': offset out of range");
    if (offset) *offset = static_cast<std::uint32_t>(v.get<std::uint64_t>());
  }
  return s;
}

Result<TableSpec> table_spec_from_json(const json& j, const TypeRegistry& types) {
  if (!j.is_object())
    return make_error(Errc::invalid_argument, "expected an object with 'name' and 'fields'");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& k = it.key();
    if (k != "name" && k != "fields" && k != "record_size" && k != "count" && k != "size" &&
        k != "next_id")
      return make_error(Errc::invalid_argument, "unknown key '" + k.substr(0, 80) + "'");
  }
  if (!j.contains("name") || !j["name"].is_string())
    return make_error(Errc::invalid_argument, "'name' must be a string");
  TableSpec spec;
  spec.name = j["name"].get<std::string>();
  TICKDB_TRY(check_name(spec.name, "name"));
  if (j.contains("fields")) {
    if (!j["fields"].is_array())
      return make_error(Errc::invalid_argument, "'fields' must be an array");
    if (j["fields"].size() > kMaxFields)
      return make_error(Errc::invalid_argument, "at most 1024 fields");
    std::uint64_t expect = 0;
    for (const auto& fj : j["fields"]) {
      std::optional<std::uint32_t> off;
      auto f = field_spec_from_json(fj, types, &off);
      if (!f) return f.error();
      auto t = types.resolve(f->type, f->size);
      if (off && *off != expect)
        return make_error(Errc::invalid_argument,
                          "field '" + f->name + "': offset " + std::to_string(*off) +
                              " does not match the packed layout (" + std::to_string(expect) + ")");
      expect += t->size;
      spec.fields.push_back(std::move(*f));
    }
  }
  return spec;
}

Result<RelationSpec> relation_spec_from_json(const json& j) {
  if (!j.is_object()) return make_error(Errc::invalid_argument, "a relation must be an object");
  RelationSpec r;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& k = it.key();
    if (k == "id") continue;
    if (k != "from_table" && k != "from_field" && k != "to_table" && k != "on_delete")
      return make_error(Errc::invalid_argument,
                        "unknown key '" + k.substr(0, 80) + "' in a relation");
    if (!it.value().is_string())
      return make_error(Errc::invalid_argument, "'" + k + "' must be a string");
  }
  for (const char* k : {"from_table", "from_field", "to_table"})
    if (!j.contains(k))
      return make_error(Errc::invalid_argument, std::string("a relation needs '") + k + "'");
  r.from_table = j["from_table"].get<std::string>();
  r.from_field = j["from_field"].get<std::string>();
  r.to_table = j["to_table"].get<std::string>();
  TICKDB_TRY(check_name(r.from_table, "from_table"));
  TICKDB_TRY(check_name(r.from_field, "from_field"));
  TICKDB_TRY(check_name(r.to_table, "to_table"));
  if (j.contains("on_delete")) {
    auto o = on_delete_from_name(j["on_delete"].get<std::string>());
    if (!o)
      return make_error(Errc::invalid_argument, "on_delete must be restrict, cascade or set_zero");
    r.on_delete = *o;
  }
  return r;
}

json field_to_json(const Field& f) {
  json o = {{"name", f.name}, {"type", f.type.name()}, {"offset", f.offset}, {"size", f.type.size}};
  if (!f.default_value.empty()) o["default"] = value_to_json(f.type, f.default_value.data());
  return o;
}

json type_to_json(const CompositeType& c) {
  json fields = json::array();
  for (const auto& f : c.fields) fields.push_back(field_to_json(f));
  return {{"name", c.name}, {"size", c.size}, {"fields", fields}};
}

json table_to_json(const TableVersion& t) {
  json fields = json::array();
  for (const auto& f : t.schema()->fields()) fields.push_back(field_to_json(f));
  json indexes = json::array();
  for (const auto& ix : t.indexes())
    indexes.push_back(index_description_to_json(ix.describe(t.name())));
  return {{"name", t.name()},
          {"record_size", t.record_size()},
          {"count", t.count()},
          {"fields", fields},
          {"indexes", std::move(indexes)}};
}

json relation_to_json(const Relation& r) {
  return {{"id", r.id},
          {"from_table", r.from_table},
          {"from_field", r.from_field},
          {"to_table", r.to_table},
          {"on_delete", std::string(on_delete_name(r.on_delete))}};
}

json index_def_to_json(const IndexDef& d) {
  return {{"name", d.name},
          {"fields", d.fields},
          {"type", std::string(index_type_name(d.type))},
          {"unique", d.unique}};
}

json index_description_to_json(const IndexDescription& d) {
  return {{"name", d.name},     {"table", d.table},
          {"fields", d.fields}, {"type", std::string(index_type_name(d.type))},
          {"unique", d.unique}, {"entries", d.entries},
          {"bytes", d.bytes},   {"auto", d.auto_}};
}

Result<IndexDef> index_def_from_json(const json& j) {
  auto bad = [](const std::string& m) { return make_error(Errc::invalid_argument, m); };
  if (!j.is_object()) return bad("an index is a JSON object");
  for (const auto& [k, v] : j.items())
    if (k != "name" && k != "fields" && k != "type" && k != "unique" && k != "table")
      return bad("unknown index key '" + k.substr(0, 80) + "'");
  IndexDef d;
  if (!j.contains("name") || !j["name"].is_string()) return bad("index 'name' must be a string");
  d.name = j["name"].get<std::string>();
  if (!j.contains("fields") || !j["fields"].is_array())
    return bad("index 'fields' must be an array of field names");
  for (const auto& f : j["fields"]) {
    if (!f.is_string()) return bad("index 'fields' must be an array of field names");
    d.fields.push_back(f.get<std::string>());
  }
  if (j.contains("type")) {
    if (!j["type"].is_string()) return bad("index 'type' must be \"ordered\" or \"hash\"");
    auto t = index_type_from_name(j["type"].get<std::string>());
    if (!t)
      return bad("index 'type' must be \"ordered\" or \"hash\", not '" +
                 j["type"].get<std::string>().substr(0, 80) + "'");
    d.type = *t;
  }
  if (j.contains("unique")) {
    if (!j["unique"].is_boolean()) return bad("index 'unique' must be true or false");
    d.unique = j["unique"].get<bool>();
  }
  return d;
}

// ---------------- the whole catalog ----------------

json catalog_to_json(const DbVersion& db) {
  json types = json::array();
  for (const auto& c : db.types().all()) types.push_back(type_to_json(*c));
  json tables = json::array();
  for (const auto& [name, t] : db.tables()) {
    json d = table_to_json(*t);
    d.erase("count");
    d.erase("indexes");  // descriptions; the definitions follow
    d["next_id"] = t->next_id();
    // User indexes only: the automatic ones follow from the relations. A catalog without
    // user indexes has no "indexes" key, as before indexes existed.
    json ixs = json::array();
    for (const auto& ix : t->indexes())
      if (!ix.def().auto_) ixs.push_back(index_def_to_json(ix.def()));
    if (!ixs.empty()) d["indexes"] = std::move(ixs);
    tables.push_back(std::move(d));
  }
  json rels = json::array();
  for (const auto& [id, r] : db.relations()) rels.push_back(relation_to_json(r));
  return {{"format", "tickdb-catalog"},
          {"format_version", 1},
          {"version", db.version()},
          {"types", types},
          {"tables", tables},
          {"relations", rels},
          {"next_relation_id", db.next_relation_id()}};
}

// Builds a DbVersion with exact counters: the one place allowed to set them.
class CatalogLoader {
 public:
  static Result<std::shared_ptr<const DbVersion>> load(const json& j);
};

namespace {
Error inconsistent(const std::string& what) {
  return make_error(Errc::invalid_argument, "catalog: " + what);
}
Result<std::uint64_t> get_u64(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) return inconsistent(where + " lacks '" + key + "'");
  const json& v = j[key];
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
    return inconsistent(where + ": '" + key + "' must be an unsigned integer");
  return v.get<std::uint64_t>();
}
}  // namespace

Result<std::shared_ptr<const DbVersion>> CatalogLoader::load(const json& j) {
  if (!j.is_object()) return inconsistent("expected a JSON object");
  if (!j.contains("format") || !j["format"].is_string() || j["format"] != "tickdb-catalog")
    return inconsistent("'format' is not tickdb-catalog");
  auto fv = get_u64(j, "format_version", "catalog");
  if (!fv) return fv.error();
  if (*fv != 1)
    return inconsistent("unknown format_version " + std::to_string(*fv) + " (this build reads 1)");
  for (const char* k : {"types", "tables", "relations"})
    if (!j.contains(k) || !j[k].is_array())
      return inconsistent(std::string("'") + k + "' must be an array");
  auto version = get_u64(j, "version", "catalog");
  if (!version) return version.error();
  auto next_rel = get_u64(j, "next_relation_id", "catalog");
  if (!next_rel) return next_rel.error();
  if (*next_rel == 0) return inconsistent("next_relation_id must be at least 1");

  Transaction txn(DbVersion::empty());
  for (const auto& tj : j["types"]) {
    auto spec = table_spec_from_json(tj, txn.types());
    if (!spec) return inconsistent("type: " + spec.message());
    auto c = txn.create_type(spec->name, spec->fields);
    if (!c) return inconsistent("type '" + spec->name + "': " + c.message());
    if (tj.contains("size") && tj["size"] != (*c)->size)
      return inconsistent("type '" + spec->name + "': size does not match its fields");
  }
  std::map<std::string, std::uint64_t> next_ids;
  for (const auto& tj_in : j["tables"]) {
    json tj = tj_in;
    if (tj.is_object()) tj.erase("indexes");  // created below
    auto spec = table_spec_from_json(tj, txn.types());
    if (!spec) return inconsistent("table: " + spec.message());
    auto s = txn.create_table(spec->name, spec->fields);
    if (!s) return inconsistent("table '" + spec->name + "': " + s.message());
    if (tj.contains("record_size") && tj["record_size"] != txn.table(spec->name)->record_size())
      return inconsistent("table '" + spec->name + "': record_size does not match its fields");
    auto nid = get_u64(tj, "next_id", "table '" + spec->name + "'");
    if (!nid) return nid.error();
    if (*nid == 0) return inconsistent("table '" + spec->name + "': next_id must be at least 1");
    next_ids[spec->name] = *nid;
  }
  // User indexes before the relations, so the automatic ones are named as they were.
  for (const auto& tj : j["tables"]) {
    if (!tj.contains("indexes")) continue;
    const std::string tname = tj.value("name", std::string());
    if (!tj["indexes"].is_array())
      return inconsistent("table '" + tname + "': 'indexes' must be an array");
    for (const auto& ij : tj["indexes"]) {
      auto def = index_def_from_json(ij);
      if (!def) return inconsistent("table '" + tname + "': index: " + def.message());
      auto made = txn.create_index(tname, *def);
      if (!made)
        return inconsistent("table '" + tname + "': index '" + def->name + "': " + made.message());
    }
  }
  std::set<std::uint64_t> rel_ids;
  std::vector<Relation> rels;
  for (const auto& rj : j["relations"]) {
    auto spec = relation_spec_from_json(rj);
    if (!spec) return inconsistent("relation: " + spec.message());
    auto id = get_u64(rj, "id", "relation");
    if (!id) return id.error();
    if (*id == 0 || *id >= *next_rel || !rel_ids.insert(*id).second)
      return inconsistent("relation id " + std::to_string(*id) +
                          " is 0, repeated or not below next_relation_id");
    auto r =
        txn.create_relation(spec->from_table, spec->from_field, spec->to_table, spec->on_delete);
    if (!r) return inconsistent("relation " + std::to_string(*id) + ": " + r.message());
    r->id = *id;
    rels.push_back(*r);
  }
  for (const auto& [name, nid] : next_ids) {
    auto w = txn.writable_table(name);
    if (!w) return w.error();
    (*w)->set_next_id(nid);
  }
  auto committed = txn.commit();
  if (!committed) return committed.error();
  auto db = std::make_shared<DbVersion>(**committed);
  db->version_ = *version;
  db->next_relation_id_ = *next_rel;
  auto rmap = std::make_shared<RelationMap>();
  for (auto& r : rels) rmap->emplace(r.id, r);
  db->relations_ = std::move(rmap);
  return std::shared_ptr<const DbVersion>(std::move(db));
}

Result<std::shared_ptr<const DbVersion>> catalog_from_json(const json& j) {
  return CatalogLoader::load(j);
}

Status save_catalog_file(const DbVersion& db, const std::string& path) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return make_error(Errc::internal, "cannot open '" + path + "' for writing");
  f << catalog_to_json(db).dump(2) << '\n';
  f.flush();
  if (!f) return make_error(Errc::internal, "cannot write '" + path + "'");
  return {};
}

Result<std::shared_ptr<const DbVersion>> load_catalog_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(Errc::not_found, "cannot open '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = parse_json(ss.str());
  if (!j) return j.error();
  return catalog_from_json(*j);
}

Result<json> parse_json(std::string_view text, std::size_t max_depth) {
  // JSON text is UTF-8 (RFC 8259): anything else is refused before it can reach a value or an
  // error message.
  if (!is_valid_utf8(text)) return make_error(Errc::bad_json, "the JSON text is not valid UTF-8");
  // nlohmann's lexer takes a zero byte for the end of the input, so "{}\0anything" would
  // parse as {}. No JSON text holds a raw zero byte (RFC 8259: not in strings, nor between
  // tokens), so refuse it (found by tests/fuzz/rpc_fuzz.cpp).
  if (text.find('\0') != std::string_view::npos)
    return make_error(Errc::bad_json, "the JSON text holds a zero byte");
  // Nesting is checked before parsing, so a hostile body costs one linear pass.
  std::size_t depth = 0;
  bool in_str = false, esc = false;
  for (char c : text) {
    if (in_json_string(c, in_str, esc)) continue;
    if (c == '"')
      in_str = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return make_error(Errc::invalid_argument,
                          "JSON nesting is deeper than " + std::to_string(max_depth));
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  try {
    return json::parse(text);
  } catch (const json::out_of_range& e) {
    // Valid syntax, but a number no double can hold (1e400).
    return make_error(Errc::invalid_argument, e.what());
  } catch (const json::exception& e) {
    return make_error(Errc::bad_json, e.what());
  }
}

}  // namespace tickdb
