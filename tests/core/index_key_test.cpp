// Index keys: the byte order of encoded values is the order of the values, for every scalar
// kind (random values plus the edges: negatives, -0.0 = 0.0, the extremes, strings that
// are prefixes of others), and KeyLayout refuses what cannot be indexed.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/index_key.h"
#include "core/transaction.h"
#include "test_db.h"

using namespace tickdb;
using tickdb::test::ok;

namespace {

template <class T>
std::string enc(const FieldType& t, T v) {
  std::byte raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  std::string out;
  encode_part(t, raw, out);
  return out;
}

int sign(int c) {
  return (c > 0) - (c < 0);
}

// For random pairs and the edges: sign(memcmp(enc a, enc b)) == sign(a <=> b).
template <class T>
void check_order(Kind k, std::vector<T> values) {
  FieldType t;
  t.kind = k;
  t.size = sizeof(T);
  std::mt19937_64 rng(static_cast<unsigned>(k));
  for (int i = 0; i < 2000; ++i) {
    std::uint64_t bits = rng();
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(v)) continue;
    }
    values.push_back(v);
  }
  for (std::size_t i = 0; i < values.size(); ++i)
    for (std::size_t j = i; j < values.size() && j < i + 60; ++j) {
      const T a = values[i], b = values[j];
      const int want = a < b ? -1 : (b < a ? 1 : 0);
      const std::string ea = enc(t, a), eb = enc(t, b);
      REQUIRE(ea.size() == sizeof(T));
      INFO("kind " << kind_name(k) << ": " << +a << " vs " << +b);
      REQUIRE(sign(std::memcmp(ea.data(), eb.data(), sizeof(T))) == want);
    }
}

}  // namespace

TEST_CASE("index-key: encoded integers sort as their values", "[index-key]") {
  check_order<std::int8_t>(Kind::I8, {-128, -1, 0, 1, 127});
  check_order<std::int16_t>(Kind::I16, {-32768, -1, 0, 1, 32767});
  check_order<std::int32_t>(Kind::I32, {std::numeric_limits<std::int32_t>::min(), -1, 0, 1,
                                        std::numeric_limits<std::int32_t>::max()});
  check_order<std::int64_t>(Kind::I64, {std::numeric_limits<std::int64_t>::min(), -1, 0, 1,
                                        std::numeric_limits<std::int64_t>::max()});
  check_order<std::uint8_t>(Kind::U8, {0, 1, 255});
  check_order<std::uint16_t>(Kind::U16, {0, 1, 256, 65535});
  check_order<std::uint32_t>(Kind::U32, {0, 1, 256, std::numeric_limits<std::uint32_t>::max()});
  check_order<std::uint64_t>(Kind::U64, {0, 1, 256, std::numeric_limits<std::uint64_t>::max(),
                                         std::numeric_limits<std::uint64_t>::max() - 1});
}

TEST_CASE("index-key: encoded floats sort as their values and -0.0 encodes as 0.0", "[index-key]") {
  check_order<float>(
      Kind::F32,
      {-std::numeric_limits<float>::max(), -1.5f, -std::numeric_limits<float>::denorm_min(), -0.0f,
       0.0f, std::numeric_limits<float>::denorm_min(), 1.5f, std::numeric_limits<float>::max()});
  check_order<double>(Kind::F64, {-std::numeric_limits<double>::max(), -1e-300, -0.0, 0.0, 1e-300,
                                  2.0, std::numeric_limits<double>::max()});
  FieldType f32{Kind::F32, 4, nullptr}, f64{Kind::F64, 8, nullptr};
  CHECK(enc(f32, -0.0f) == enc(f32, 0.0f));
  CHECK(enc(f64, -0.0) == enc(f64, 0.0));
}

TEST_CASE("index-key: bools and strings sort as values, a prefix sorts first", "[index-key]") {
  FieldType b{Kind::Bool, 1, nullptr};
  std::byte f{0}, t{1};
  std::string ef, et;
  encode_part(b, &f, ef);
  encode_part(b, &t, et);
  CHECK(ef < et);
  FieldType s{Kind::Str, 8, nullptr};
  auto es = [&](std::string v) {
    v.resize(8, '\0');
    std::string out;
    encode_part(s, reinterpret_cast<const std::byte*>(v.data()), out);
    return out;
  };
  std::vector<std::string> words = {
      "", "a", "ab", "abc", "abd", "b", "zzzzzzzz", "\xc3\xa9t\xc3\xa9", "\xe2\x82\xac"};
  for (const auto& x : words)
    for (const auto& y : words) {
      INFO(x << " vs " << y);
      CHECK(sign(std::memcmp(es(x).data(), es(y).data(), 8)) == sign(x.compare(y)));
    }
}

TEST_CASE(
    "index-key: a key is the parts then the id big-endian; layouts refuse what is not indexable",
    "[index-key]") {
  auto db = tickdb::test::things_db();
  const TableSchema& s = *db->table("things")->schema();
  auto k = ok(KeyLayout::make(s, {"tag", "pos.x"}));
  CHECK(k.value_size() == 8);
  CHECK(k.key_size() == 16);
  RecordBuffer r(s);
  ok(r.set<std::uint32_t>("tag", 0x01020304));
  ok(r.set<float>("pos.x", -0.0f));
  std::byte key[16];
  k.encode(r.data(), 0x1122334455667788ull, key);
  CHECK(std::to_integer<int>(key[0]) == 1);
  CHECK(std::to_integer<int>(key[3]) == 4);
  CHECK(std::to_integer<int>(key[4]) == 0x80);  // 0.0: the sign bit set, the rest zero
  CHECK(std::to_integer<int>(key[5]) == 0);
  CHECK(std::to_integer<int>(key[8]) == 0x11);
  CHECK(std::to_integer<int>(key[15]) == 0x88);
  CHECK(decode_id(key + 8) == 0x1122334455667788ull);

  auto refused = [&](std::vector<std::string> paths, const std::string& word) {
    auto r2 = KeyLayout::make(s, paths);
    REQUIRE_FALSE(r2.is_ok());
    CHECK(r2.code() == Errc::invalid_argument);
    INFO(r2.message());
    CHECK(r2.message().find(word) != std::string::npos);
  };
  refused({}, "an index has 1 to 4 fields, not 0");
  refused({"hp", "tag", "speed", "owner", "pos.x"}, "an index has 1 to 4 fields, not 5");
  refused({"nope"}, "index field 'nope': ");
  refused({"pos"}, "index field 'pos' is a composite (vec3)");
  refused({"hp", "hp"}, "index field 'hp' is repeated");
  refused({"id"}, "the id is implicitly the last key part");
  refused({"pos.w"}, "index field 'pos.w'");
}
