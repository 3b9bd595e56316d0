// Index keys: order-preserving byte encodings of a record's indexed fields, so that an
// index compares keys with memcmp and the byte order equals the value order.
//
//   integers  big-endian, sign bit flipped (i8..i64), plain big-endian (u8..u64)
//   floats    IEEE bits big-endian; positive: sign bit set, negative: every bit flipped;
//             -0.0 is encoded as 0.0 (filters and indexes treat them as equal)
//   bool      one byte, 0 or 1
//   str(N)    the N stored bytes (zero padded; strings hold no NUL, so byte order is
//             code-point order and a shorter string sorts before its extensions)
//
// A key is its parts back to back (a fixed size per index: the sum of the field sizes),
// followed by the record id as 8 bytes big-endian, so keys of one index are unique and
// equal values sort by id. A KeyLayout resolves field paths once (1 to 4 scalar fields,
// composite leaves allowed) and is then a plain list of (offset, type) pairs.
//
// Thread-safety: KeyLayout is an immutable value; the functions have no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/schema.h"

namespace tickdb {

inline constexpr std::size_t kMaxIndexFields = 4;
inline constexpr std::size_t kIdKeyBytes = 8;

// Appends the encoding of one value of scalar type `t` (t.size bytes at `p`, packed) to out.
// A planner encodes a literal already converted to the field's type the same way.
void encode_part(const FieldType& t, const std::byte* p, std::string& out);
// The same into `out` (t.size bytes). No bounds check: the caller sized the buffer.
void encode_part_to(const FieldType& t, const std::byte* p, std::byte* out);
// The id as the last 8 key bytes, and back.
void encode_id(std::uint64_t id, std::byte* out);
std::uint64_t decode_id(const std::byte* p);

struct KeyPart {
  std::string path;
  FieldLoc loc;
};

class KeyLayout {
 public:
  // Resolves 1..kMaxIndexFields field paths: invalid_argument for a wrong count, a
  // repeated field, an unknown field or a composite (only scalar leaves are indexable).
  static Result<KeyLayout> make(const TableSchema& schema, const std::vector<std::string>& paths);

  const std::vector<KeyPart>& parts() const { return parts_; }
  // Bytes of the value parts (without the id); key_size() with it.
  std::uint32_t value_size() const { return value_size_; }
  std::uint32_t key_size() const { return value_size_ + kIdKeyBytes; }
  // Writes the key of `record` with `id` into out (key_size() bytes).
  void encode(const std::byte* record, std::uint64_t id, std::byte* out) const;
  // Writes only the value parts (value_size() bytes).
  void encode_values(const std::byte* record, std::byte* out) const;
  // True when the indexed bytes of two records differ (raw bytes: -0.0 vs 0.0 counts as a
  // change, which is harmless).
  bool differs(const std::byte* a, const std::byte* b) const;

 private:
  std::vector<KeyPart> parts_;
  std::uint32_t value_size_ = 0;
};

}  // namespace tickdb
