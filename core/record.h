// Zero-copy access to packed records.
//
// RecordView points into a published version's memory: it copies nothing and is valid as
// long as the caller holds that version (a std::shared_ptr<const DbVersion> or
// TableVersion). Field access by name or index is bounds- and type-checked and returns a
// Result. FieldAccessor<T> resolves a field once (name -> offset, type checked against T)
// and is then applied to many records with no check and no allocation: the hot path.
//
// Thread-safety: views of a published version are read-only and safe from many threads.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/schema.h"

namespace tickdb {

// Reads a str field's bytes up to the first zero byte.
inline std::string_view load_str(const std::byte* p, std::uint32_t size) {
  std::string_view sv(reinterpret_cast<const char*>(p), size);
  auto end = sv.find('\0');
  return end == std::string_view::npos ? sv : sv.substr(0, end);
}

template <class T>
class FieldAccessor {
 public:
  // not_found for an unknown field, invalid_argument when T is not the field's type.
  static Result<FieldAccessor> resolve(const TableSchema& s, std::string_view path) {
    auto loc = s.locate(path);
    if (!loc) return loc.error();
    return from_loc(*loc, s.record_size(), path);
  }
  static Result<FieldAccessor> resolve(const TableSchema& s, std::size_t index) {
    auto loc = s.field_at(index);
    if (!loc) return loc.error();
    return from_loc(*loc, s.record_size(), s.fields()[index].name);
  }

  // Unchecked: the record must be a record of the schema this accessor was resolved on.
  T get(const std::byte* record) const {
    if constexpr (std::is_same_v<T, bool>) return load_bool(record + offset_);
    else if constexpr (std::is_same_v<T, std::string_view>) return load_str(record + offset_, size_);
    else return load<T>(record + offset_);
  }
  void set(std::byte* record, T v) const
    requires(!std::is_same_v<T, std::string_view>)
  {
    if constexpr (std::is_same_v<T, bool>) store_bool(record + offset_, v);
    else store<T>(record + offset_, v);
  }
  std::uint32_t offset() const { return offset_; }
  std::uint32_t size() const { return size_; }

 private:
  static Result<FieldAccessor> from_loc(const FieldLoc& loc, std::uint32_t record_size,
                                        std::string_view name) {
    if (loc.type.kind != kind_of<T>())
      return make_error(Errc::invalid_argument,
                        "field '" + std::string(name) + "' is " + loc.type.name() +
                            ", not " + std::string(kind_name(kind_of<T>())));
    if (std::size_t{loc.offset} + loc.type.size > record_size)
      return make_error(Errc::internal, "field '" + std::string(name) + "' lies outside the record");
    FieldAccessor a;
    a.offset_ = loc.offset;
    a.size_ = loc.type.size;
    return a;
  }
  std::uint32_t offset_ = 0;
  std::uint32_t size_ = 0;
};

class RecordView {
 public:
  RecordView() = default;
  RecordView(const std::byte* data, std::uint64_t id, const TableSchema* schema)
      : data_(data), id_(id), schema_(schema) {}

  std::uint64_t id() const { return id_; }
  const std::byte* data() const { return data_; }
  const TableSchema& schema() const { return *schema_; }
  std::span<const std::byte> bytes() const { return {data_, schema_->record_size()}; }

  // Checked typed reads.
  template <class T>
  Result<T> get(std::string_view field) const {
    auto a = FieldAccessor<T>::resolve(*schema_, field);
    if (!a) return a.error();
    return a->get(data_);
  }
  template <class T>
  Result<T> get(std::size_t field_index) const {
    auto a = FieldAccessor<T>::resolve(*schema_, field_index);
    if (!a) return a.error();
    return a->get(data_);
  }
  // Checked raw bytes: invalid_argument when [offset, offset+size) is not inside the record.
  Result<std::span<const std::byte>> raw(std::size_t offset, std::size_t size) const;

 private:
  const std::byte* data_ = nullptr;
  std::uint64_t id_ = 0;
  const TableSchema* schema_ = nullptr;
};

// A record being built or changed: a byte buffer of one schema's record size.
class RecordBuffer {
 public:
  // A record holding every field's default.
  explicit RecordBuffer(const TableSchema& s);
  // A copy of an existing record.
  explicit RecordBuffer(const RecordView& v);

  std::span<const std::byte> bytes() const { return bytes_; }
  std::byte* data() { return bytes_.data(); }
  const TableSchema& schema() const { return *schema_; }

  // Checked typed writes by field name or path ("pos.x").
  template <class T>
  Status set(std::string_view field, T v) {
    auto a = FieldAccessor<T>::resolve(*schema_, field);
    if (!a) return a.error();
    a->set(bytes_.data(), v);
    return {};
  }
  // str fields: at most the field's size in bytes, valid UTF-8, no zero byte.
  Status set_str(std::string_view field, std::string_view v);
  // Checked raw write.
  Status write_raw(std::size_t offset, std::span<const std::byte> src);

 private:
  const TableSchema* schema_;
  std::vector<std::byte> bytes_;
};

}  // namespace tickdb
