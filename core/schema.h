// TableSchema: a table's name, its fields with their offsets, the record size and the
// default record. Records are the fields back to back with no padding: record_size is the
// sum of the field sizes and each offset the sum of the sizes before it.
//
// A schema is immutable once built and shared by pointer between versions; a schema change
// (add/remove field) builds a new schema. Thread-safety: all methods are const and safe from
// many threads.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"

namespace tickdb {

// Where a (possibly nested) field lives inside a record.
struct FieldLoc {
  std::uint32_t offset = 0;
  FieldType type;
};

class TableSchema {
 public:
  // Validates the table name and lays the specs out (names, duplicates, reserved `id`).
  static Result<std::shared_ptr<const TableSchema>> build(std::string name,
                                                          const std::vector<FieldSpec>& specs,
                                                          const TypeRegistry& types);
  // From already laid-out fields (offsets are recomputed and checked).
  static Result<std::shared_ptr<const TableSchema>> from_fields(std::string name,
                                                                std::vector<Field> fields);

  const std::string& name() const { return name_; }
  const std::vector<Field>& fields() const { return fields_; }
  std::uint32_t record_size() const { return record_size_; }
  // record_size() bytes: every field's default.
  std::span<const std::byte> default_record() const { return default_record_; }

  // Index of a top-level field, or not_found.
  Result<std::size_t> index_of(std::string_view field) const;
  // Bounds-checked field by index.
  Result<FieldLoc> field_at(std::size_t index) const;
  // A top-level field ("hp") or a nested one through composites ("pos.x").
  Result<FieldLoc> locate(std::string_view path) const;

  // A copy with one more field at the end / one field less (re-laid out).
  Result<std::shared_ptr<const TableSchema>> with_field(const FieldSpec& spec,
                                                        const TypeRegistry& types) const;
  Result<std::shared_ptr<const TableSchema>> without_field(std::string_view field) const;
  // A copy under another name.
  std::shared_ptr<const TableSchema> renamed(std::string name) const;

  // True when any field (at any depth) uses composite `type_name`.
  bool uses_type(std::string_view type_name) const;

 private:
  std::string name_;
  std::vector<Field> fields_;
  std::uint32_t record_size_ = 0;
  std::vector<std::byte> default_record_;
};

// The bytes a value of type `t` starts with: zero, or a composite's own field defaults.
std::vector<std::byte> type_default_bytes(const FieldType& t);

// Checks that `record` (record_size bytes of `fields`) holds only valid values: bools are
// 0 or 1, floats are finite, strings are valid UTF-8 followed only by zero padding.
Status validate_record_bytes(const std::vector<Field>& fields, std::span<const std::byte> record);

}  // namespace tickdb
