#include "core/schema.h"

#include <cmath>

namespace tickdb {

namespace {
void write_defaults(const std::vector<Field>& fields, std::byte* base) {
  for (const auto& f : fields) {
    if (!f.default_value.empty()) {
      std::memcpy(base + f.offset, f.default_value.data(), f.default_value.size());
    } else if (f.type.kind == Kind::Composite) {
      // A composite's own field defaults apply inside it.
      write_defaults(f.type.composite->fields, base + f.offset);
    }
  }
}
}  // namespace

std::vector<std::byte> type_default_bytes(const FieldType& t) {
  std::vector<std::byte> out(t.size, std::byte{0});
  if (t.kind == Kind::Composite) write_defaults(t.composite->fields, out.data());
  return out;
}

Result<std::shared_ptr<const TableSchema>> TableSchema::build(std::string name,
                                                              const std::vector<FieldSpec>& specs,
                                                              const TypeRegistry& types) {
  TICKDB_TRY(check_name(name, "table name"));
  std::uint32_t size = 0;
  auto fields = types.layout(specs, true, &size);
  if (!fields) return fields.error();
  return from_fields(std::move(name), std::move(*fields));
}

Result<std::shared_ptr<const TableSchema>> TableSchema::from_fields(std::string name,
                                                                    std::vector<Field> fields) {
  TICKDB_TRY(check_name(name, "table name"));
  auto s = std::make_shared<TableSchema>();
  s->name_ = std::move(name);
  std::uint64_t offset = 0;
  for (auto& f : fields) {
    f.offset = static_cast<std::uint32_t>(offset);
    offset += f.type.size;
    if (offset > kMaxRecordSize)
      return make_error(Errc::invalid_argument, "a record may hold at most 1048576 bytes");
  }
  s->record_size_ = static_cast<std::uint32_t>(offset);
  s->fields_ = std::move(fields);
  s->default_record_.assign(s->record_size_, std::byte{0});
  write_defaults(s->fields_, s->default_record_.data());
  return std::shared_ptr<const TableSchema>(std::move(s));
}

Result<std::size_t> TableSchema::index_of(std::string_view field) const {
  for (std::size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i].name == field) return i;
  return make_error(Errc::not_found, "field '" + std::string(field.substr(0, 80)) +
                                         "' does not exist in table '" + name_ + "'");
}

Result<FieldLoc> TableSchema::field_at(std::size_t index) const {
  if (index >= fields_.size())
    return make_error(Errc::not_found, "field index " + std::to_string(index) +
                                           " is out of range: table '" + name_ + "' has " +
                                           std::to_string(fields_.size()) + " fields");
  return FieldLoc{fields_[index].offset, fields_[index].type};
}

Result<FieldLoc> TableSchema::locate(std::string_view path) const {
  const std::vector<Field>* level = &fields_;
  std::uint32_t base = 0;
  std::string_view rest = path;
  while (true) {
    auto dot = rest.find('.');
    auto part = rest.substr(0, dot);
    const Field* hit = nullptr;
    for (const auto& f : *level)
      if (f.name == part) hit = &f;
    if (!hit)
      return make_error(Errc::not_found, "field '" + std::string(path.substr(0, 200)) +
                                             "' does not exist in table '" + name_ + "'");
    if (dot == std::string_view::npos) return FieldLoc{base + hit->offset, hit->type};
    if (hit->type.kind != Kind::Composite)
      return make_error(Errc::invalid_argument, "field '" + std::string(part) +
                                                    "' is not a composite: '" +
                                                    std::string(path.substr(0, 200)) +
                                                    "' has no meaning");
    base += hit->offset;
    level = &hit->type.composite->fields;
    rest = rest.substr(dot + 1);
  }
}

Result<std::shared_ptr<const TableSchema>> TableSchema::with_field(const FieldSpec& spec,
                                                                   const TypeRegistry& types) const {
  std::uint32_t size = 0;
  auto one = types.layout({spec}, true, &size);
  if (!one) return one.error();
  for (const auto& f : fields_)
    if (f.name == spec.name)
      return make_error(Errc::already_exists,
                        "field '" + spec.name + "' already exists in table '" + name_ + "'");
  if (fields_.size() + 1 > kMaxFields) return make_error(Errc::invalid_argument, "at most 1024 fields");
  auto fields = fields_;
  fields.push_back(std::move((*one)[0]));
  return from_fields(name_, std::move(fields));
}

Result<std::shared_ptr<const TableSchema>> TableSchema::without_field(std::string_view field) const {
  auto idx = index_of(field);
  if (!idx) return idx.error();
  auto fields = fields_;
  fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(*idx));
  return from_fields(name_, std::move(fields));
}

std::shared_ptr<const TableSchema> TableSchema::renamed(std::string name) const {
  auto s = std::make_shared<TableSchema>(*this);
  s->name_ = std::move(name);
  return s;
}

bool TableSchema::uses_type(std::string_view type_name) const {
  for (const auto& f : fields_)
    if (type_uses(f.type, type_name)) return true;
  return false;
}

Status validate_record_bytes(const std::vector<Field>& fields, std::span<const std::byte> record) {
  for (const auto& f : fields) {
    if (std::size_t{f.offset} + f.type.size > record.size())
      return make_error(Errc::invalid_argument, "record is too short for field '" + f.name + "'");
    TICKDB_TRY(validate_value_bytes(f.type, record.data() + f.offset, f.name));
  }
  return {};
}

}  // namespace tickdb
