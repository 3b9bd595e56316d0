#include "core/record.h"

namespace tickdb {

namespace {
Status check_range(std::size_t offset, std::size_t size, std::size_t record_size) {
  if (offset > record_size || size > record_size - offset)
    return make_error(Errc::invalid_argument,
                      "bytes [" + std::to_string(offset) + ", " + std::to_string(offset) + "+" +
                          std::to_string(size) + ") are outside the record of " +
                          std::to_string(record_size) + " bytes");
  return {};
}
}  // namespace

Result<std::span<const std::byte>> RecordView::raw(std::size_t offset, std::size_t size) const {
  TICKDB_TRY(check_range(offset, size, schema_->record_size()));
  return std::span<const std::byte>(data_ + offset, size);
}

RecordBuffer::RecordBuffer(const TableSchema& s)
    : schema_(&s), bytes_(s.default_record().begin(), s.default_record().end()) {}

RecordBuffer::RecordBuffer(const RecordView& v)
    : schema_(&v.schema()), bytes_(v.bytes().begin(), v.bytes().end()) {}

Status RecordBuffer::set_str(std::string_view field, std::string_view v) {
  auto loc = schema_->locate(field);
  if (!loc) return loc.error();
  if (loc->type.kind != Kind::Str)
    return make_error(Errc::invalid_argument,
                      "field '" + std::string(field) + "' is " + loc->type.name() + ", not str");
  if (v.size() > loc->type.size)
    return make_error(Errc::invalid_argument, "field '" + std::string(field) + "' holds at most " +
                                                  std::to_string(loc->type.size) + " bytes, got " +
                                                  std::to_string(v.size()));
  if (v.find('\0') != std::string_view::npos)
    return make_error(Errc::invalid_argument,
                      "field '" + std::string(field) + "': a string may not contain a zero byte");
  if (!is_valid_utf8(v))
    return make_error(Errc::invalid_argument, "field '" + std::string(field) + "': not valid UTF-8");
  std::byte* p = bytes_.data() + loc->offset;
  std::memset(p, 0, loc->type.size);
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  return {};
}

Status RecordBuffer::write_raw(std::size_t offset, std::span<const std::byte> src) {
  TICKDB_TRY(check_range(offset, src.size(), bytes_.size()));
  if (!src.empty()) std::memcpy(bytes_.data() + offset, src.data(), src.size());
  return {};
}

}  // namespace tickdb
