// Field types: the built-in scalars of API.md, str(N), and user composite types.
//
// A FieldType is a small value. Composite types are immutable once built and shared by
// pointer (std::shared_ptr<const CompositeType>) between the type registry, the schemas that
// use them and any version that still holds those schemas. The TypeRegistry is a value that
// a DbVersion owns: it is copied to change, never changed in place once published.
//
// Packed fields are unaligned: load<T>/store<T> go through memcpy, never through a T*.
//
// Thread-safety: all const methods are safe from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/status.h"

namespace tickdb {

enum class Kind : std::uint8_t { Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64, Str, Composite };

inline constexpr std::uint32_t kMaxStrSize = 4096;
inline constexpr std::uint32_t kMaxRecordSize = 1u << 20;  // 1 MiB
inline constexpr std::size_t kMaxFields = 1024;

// "i32", "str", "composite".
std::string_view kind_name(Kind k);
// Scalar kinds by their API name ("bool", "i8", ..., "f64"); "str" gives Kind::Str.
std::optional<Kind> builtin_kind(std::string_view name);
// Size in bytes of a fixed-size scalar kind (0 for Str and Composite).
std::uint32_t scalar_size(Kind k);
bool is_integer(Kind k);
bool is_float(Kind k);

// A name of a table, field or type: ^[A-Za-z_][A-Za-z0-9_]{0,62}$.
bool is_valid_name(std::string_view name);
// invalid_argument naming `what` ("table name", ...) unless the name is valid.
Status check_name(std::string_view name, std::string_view what);

struct CompositeType;

struct FieldType {
  Kind kind = Kind::I32;
  std::uint32_t size = 4;
  std::shared_ptr<const CompositeType> composite;  // set for Kind::Composite only

  // The API name: "i32", "str", or the composite's name.
  std::string name() const;
  bool operator==(const FieldType& o) const;
};

struct Field {
  std::string name;
  FieldType type;
  std::uint32_t offset = 0;
  // Empty (all zero) or exactly type.size bytes: the value new records get.
  std::vector<std::byte> default_value;
};

struct CompositeType {
  std::string name;
  std::vector<Field> fields;
  std::uint32_t size = 0;
};

// What a caller asks for: a name, a type name, a size for str, an optional default as bytes.
struct FieldSpec {
  FieldSpec() = default;
  FieldSpec(std::string n, std::string t, std::uint32_t sz = 0, std::vector<std::byte> dflt = {})
      : name(std::move(n)), type(std::move(t)), size(sz), default_value(std::move(dflt)) {}
  std::string name;
  std::string type;
  std::uint32_t size = 0;                  // str only: 1..4096
  std::vector<std::byte> default_value;    // empty: zero / false / empty string
};

// Immutable-after-publish registry of composite types (built-ins are implicit).
class TypeRegistry {
 public:
  // The type of a field spec: a built-in, str(size) or a registered composite.
  Result<FieldType> resolve(std::string_view type_name, std::uint32_t str_size) const;
  // Lays out field specs back to back (validated names, no duplicates, `id` reserved when
  // `reserve_id`), checking default sizes. Total size in *total_size.
  Result<std::vector<Field>> layout(const std::vector<FieldSpec>& specs, bool reserve_id,
                                    std::uint32_t* total_size) const;

  const CompositeType* find(std::string_view name) const;
  std::shared_ptr<const CompositeType> find_shared(std::string_view name) const;
  // Builds a composite from field specs (nesting only of already registered types, so no
  // cycle can be formed) and registers it. already_exists / invalid_argument.
  Result<std::shared_ptr<const CompositeType>> create(std::string_view name,
                                                      const std::vector<FieldSpec>& specs);
  // Removes a type; conflict while another type uses it (tables are checked by the catalog).
  Status drop(std::string_view name);
  // Names of composites whose fields (directly) use `name`.
  std::vector<std::string> users_of(std::string_view name) const;
  // Registration order is kept so a type always comes after the ones it uses.
  const std::vector<std::shared_ptr<const CompositeType>>& all() const { return order_; }
  std::size_t size() const { return order_.size(); }

 private:
  std::map<std::string, std::shared_ptr<const CompositeType>, std::less<>> by_name_;
  std::vector<std::shared_ptr<const CompositeType>> order_;
};

// Checks one value of type `t` at `p`: bools are 0 or 1, floats finite, strings valid UTF-8
// followed only by zero padding (recursively for composites).
Status validate_value_bytes(const FieldType& t, const std::byte* p, std::string_view field_name);

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

// True when `t` is `name` or contains it at any depth.
bool type_uses(const FieldType& t, std::string_view name);

// ---- unaligned access to packed bytes ----

template <class T>
inline T load(const std::byte* p) {
  static_assert(std::is_trivially_copyable_v<T> && !std::is_same_v<T, bool>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <class T>
inline void store(std::byte* p, T v) {
  static_assert(std::is_trivially_copyable_v<T> && !std::is_same_v<T, bool>);
  std::memcpy(p, &v, sizeof(T));
}
inline bool load_bool(const std::byte* p) { return std::to_integer<std::uint8_t>(*p) != 0; }
inline void store_bool(std::byte* p, bool v) { *p = std::byte{static_cast<std::uint8_t>(v)}; }

// The Kind a C++ type stands for (for typed accessors).
template <class T>
constexpr Kind kind_of() {
  if constexpr (std::is_same_v<T, bool>) return Kind::Bool;
  else if constexpr (std::is_same_v<T, std::int8_t>) return Kind::I8;
  else if constexpr (std::is_same_v<T, std::int16_t>) return Kind::I16;
  else if constexpr (std::is_same_v<T, std::int32_t>) return Kind::I32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return Kind::I64;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return Kind::U8;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return Kind::U16;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return Kind::U32;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return Kind::U64;
  else if constexpr (std::is_same_v<T, float>) return Kind::F32;
  else if constexpr (std::is_same_v<T, double>) return Kind::F64;
  else if constexpr (std::is_same_v<T, std::string_view>) return Kind::Str;
  else static_assert(sizeof(T) == 0, "no tickdb field kind for this C++ type");
}

}  // namespace tickdb
