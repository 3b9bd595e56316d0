#include "core/index_key.h"

#include <bit>
#include <cstring>
#include <set>

namespace tickdb {

namespace {
template <class U>
void put_be(U v, std::byte* out) {
  for (std::size_t i = 0; i < sizeof(U); ++i)
    out[i] = std::byte{static_cast<std::uint8_t>(v >> (8 * (sizeof(U) - 1 - i)))};
}
template <class S, class U>
void put_signed(const std::byte* p, std::byte* out) {
  U v;
  std::memcpy(&v, p, sizeof(U));
  v ^= U{1} << (sizeof(U) * 8 - 1);
  put_be<U>(v, out);
}
template <class F, class U>
void put_float(const std::byte* p, std::byte* out) {
  F f;
  std::memcpy(&f, p, sizeof(F));
  if (f == F{0}) f = F{0};  // -0.0 -> 0.0
  U v = std::bit_cast<U>(f);
  constexpr U sign = U{1} << (sizeof(U) * 8 - 1);
  v = (v & sign) ? ~v : (v | sign);
  put_be<U>(v, out);
}
template <class U>
void put_unsigned(const std::byte* p, std::byte* out) {
  U v;
  std::memcpy(&v, p, sizeof(U));
  put_be<U>(v, out);
}
}  // namespace

void encode_part_to(const FieldType& t, const std::byte* p, std::byte* out) {
  switch (t.kind) {
    case Kind::Bool:
      out[0] = std::byte{static_cast<std::uint8_t>(load_bool(p) ? 1 : 0)};
      return;
    case Kind::I8:
      put_signed<std::int8_t, std::uint8_t>(p, out);
      return;
    case Kind::I16:
      put_signed<std::int16_t, std::uint16_t>(p, out);
      return;
    case Kind::I32:
      put_signed<std::int32_t, std::uint32_t>(p, out);
      return;
    case Kind::I64:
      put_signed<std::int64_t, std::uint64_t>(p, out);
      return;
    case Kind::U8:
      out[0] = p[0];
      return;
    case Kind::U16:
      put_unsigned<std::uint16_t>(p, out);
      return;
    case Kind::U32:
      put_unsigned<std::uint32_t>(p, out);
      return;
    case Kind::U64:
      put_unsigned<std::uint64_t>(p, out);
      return;
    case Kind::F32:
      put_float<float, std::uint32_t>(p, out);
      return;
    case Kind::F64:
      put_float<double, std::uint64_t>(p, out);
      return;
    case Kind::Str:
      std::memcpy(out, p, t.size);
      return;
    case Kind::Composite:
      std::memcpy(out, p, t.size);
      return;  // refused by KeyLayout::make
  }
}

void encode_part(const FieldType& t, const std::byte* p, std::string& out) {
  const std::size_t at = out.size();
  out.resize(at + t.size);
  encode_part_to(t, p, reinterpret_cast<std::byte*>(out.data()) + at);
}

void encode_id(std::uint64_t id, std::byte* out) {
  put_be<std::uint64_t>(id, out);
}

std::uint64_t decode_id(const std::byte* p) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

Result<KeyLayout> KeyLayout::make(const TableSchema& schema,
                                  const std::vector<std::string>& paths) {
  if (paths.empty() || paths.size() > kMaxIndexFields)
    return make_error(Errc::invalid_argument, "an index has 1 to " +
                                                  std::to_string(kMaxIndexFields) +
                                                  " fields, not " + std::to_string(paths.size()));
  KeyLayout k;
  std::set<std::string> seen;
  for (const auto& path : paths) {
    if (path == "id")
      return make_error(Errc::invalid_argument,
                        "index field 'id': the id is implicitly the last key part");
    auto loc = schema.locate(path);
    if (!loc)
      return make_error(Errc::invalid_argument,
                        "index field '" + path.substr(0, 200) + "': " + loc.message());
    if (loc->type.kind == Kind::Composite)
      return make_error(Errc::invalid_argument, "index field '" + path + "' is a composite (" +
                                                    loc->type.name() +
                                                    "): only scalar fields and composite "
                                                    "leaves are indexable");
    if (!seen.insert(path).second)
      return make_error(Errc::invalid_argument, "index field '" + path + "' is repeated");
    k.parts_.push_back({path, *loc});
    k.value_size_ += loc->type.size;
  }
  return k;
}

void KeyLayout::encode_values(const std::byte* record, std::byte* out) const {
  for (const auto& p : parts_) {
    encode_part_to(p.loc.type, record + p.loc.offset, out);
    out += p.loc.type.size;
  }
}

void KeyLayout::encode(const std::byte* record, std::uint64_t id, std::byte* out) const {
  encode_values(record, out);
  encode_id(id, out + value_size_);
}

bool KeyLayout::differs(const std::byte* a, const std::byte* b) const {
  for (const auto& p : parts_)
    if (std::memcmp(a + p.loc.offset, b + p.loc.offset, p.loc.type.size) != 0) return true;
  return false;
}

}  // namespace tickdb
