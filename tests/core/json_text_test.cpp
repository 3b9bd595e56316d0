// The DOM-free reader (core/json_text.h) against the general path it stands in for: whatever
// record_from_text accepts, parse_json + record_from_json accept too, with the same bytes and
// id; whatever the general path refuses, the reader refuses. Checked on hand-picked inputs
// of every type and on many random mutations of them.
#include "test_db.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/json_text.h"

using namespace tickdb;
using tickdb::test::ok;

namespace {

std::shared_ptr<const DbVersion> kinds_db() {
  Transaction t(DbVersion::empty());
  std::vector<std::byte> seven(4);
  store<std::int32_t>(seven.data(), 7);
  ok(t.create_type("vec", {{"x", "i32", 0, seven}, {"y", "f32"}}));
  ok(t.create_type("outer", {{"v", "vec"}, {"w", "i32"}}));
  ok(t.create_table("k", {{"b", "bool"},
                          {"i8", "i8"},
                          {"i64", "i64"},
                          {"u8", "u8"},
                          {"u64", "u64"},
                          {"f32", "f32"},
                          {"f64", "f64"},
                          {"s3", "str", 3},
                          {"s", "str", 32},
                          {"p", "vec"},
                          {"o", "outer"}}));
  return ok(t.commit());
}

struct Outcome {
  bool ok = false;
  std::vector<std::byte> bytes;
  std::optional<std::uint64_t> id;
};

Outcome fast(const TableSchema& s, std::string_view text) {
  Outcome o;
  o.bytes.assign(s.default_record().begin(), s.default_record().end());
  JsonCursor in(text);
  o.ok = record_from_text(s, in, o.bytes.data(), &o.id) && in.at_end();
  return o;
}

Outcome general(const TableSchema& s, std::string_view text) {
  Outcome o;
  o.bytes.assign(s.default_record().begin(), s.default_record().end());
  auto j = parse_json(text);
  o.ok = j && record_from_json(s, *j, o.bytes.data(), &o.id).is_ok();
  return o;
}

// The property: the fast reader never accepts what the general path refuses, and never
// writes other bytes than it.
void agree(const TableSchema& s, std::string_view text) {
  INFO(text);
  Outcome f = fast(s, text);
  if (!f.ok) return;
  Outcome g = general(s, text);
  REQUIRE(g.ok);
  CHECK(f.bytes == g.bytes);
  CHECK(f.id == g.id);
}

const std::vector<std::string> kAccepted = {
    R"({})",
    R"({"b":true,"i8":-128,"i64":-9223372036854775808,"u8":255,"u64":18446744073709551615})",
    R"( { "f32" : 3.4028234e38 , "f64" : -1.5e-300 , "s3" : "abc" , "s" : "h\u00e9" } )",
    R"({"f32":1,"f64":0,"i64":-0,"u8":0})",
    R"({"s":"héllo wörld ☃ 𝄞","s3":""})",
    R"({"p":{"x":-5,"y":0.25},"o":{"v":{"y":1e2},"w":3}})",
    R"({"id":42,"b":false})",
    R"({"i8":1,"i8":2})",
    R"({"p":{}})",
    "{\n\t\"u8\"\r: 7}",
};

const std::vector<std::string> kRefused = {
    R"({"i8":128})",                     // out of range
    R"({"u8":-1})",                      // out of range
    R"({"i64":1.0})",                    // a float for an integer
    R"({"u64":18446744073709551616})",   // beyond 64 bits
    R"({"f32":3.5e38})",                 // beyond f32
    R"({"f64":1e400})",                  // beyond a double
    R"({"s3":"abcd"})",                  // too long
    R"({"s":"a\nb"})",                   // an escape: the general path decodes it
    R"({"s":"a\"b"})",                   // an escape
    R"({"nope":1})",                     // unknown field
    R"({"p":{"z":1}})",                  // unknown composite field
    R"({"p":1})",                        // not an object
    R"({"b":1})",                        // not a bool
    R"({"id":-1})",                      // a negative id
    R"({"id":"1"})",                     // a string id
    R"({"u8":01})",                      // a leading zero
    R"({"u8":1,})",                      // a trailing comma
    R"({"u8":.5})",                      // no digit before the point
    R"({"u8":+1})",                      // a plus sign
    R"({"s":"x)",                        // unterminated
    R"({"b":tru})",                      // a broken literal
    R"({"b":null})",                     // null is no bool
    R"([1])",                            // not an object
    R"({"u8":1} x)",                     // trailing garbage
};

}  // namespace

TEST_CASE("the DOM-free reader takes what the general path takes, byte for byte", "[json][json-text]") {
  auto db = kinds_db();
  const TableSchema& s = *db->table("k")->schema();
  for (const auto& text : kAccepted) {
    INFO(text);
    // "s":"h\u00e9" has an escape: refused here, taken by the general path.
    bool escaped = text.find('\\') != std::string::npos;
    CHECK(fast(s, text).ok == !escaped);
    CHECK(general(s, text).ok);
    agree(s, text);
  }
  Outcome f = fast(s, R"({"id":42,"i8":1,"i8":-2,"p":{"y":0.5}})");
  REQUIRE(f.ok);
  CHECK(f.id == std::optional<std::uint64_t>(42));
  CHECK(load<std::int8_t>(f.bytes.data() + s.fields()[s.index_of("i8").value()].offset) == -2);  // the last one wins
  CHECK(load<std::int32_t>(f.bytes.data() + s.fields()[s.index_of("p").value()].offset) == 7);  // composite default kept
}

TEST_CASE("the DOM-free reader refuses what it does not fully understand", "[json][json-text]") {
  auto db = kinds_db();
  const TableSchema& s = *db->table("k")->schema();
  for (const auto& text : kRefused) {
    INFO(text);
    CHECK_FALSE(fast(s, text).ok);
  }
  // Nesting beyond the cursor's limit.
  const std::string deep_text = std::string(100, '[') + std::string(100, ']');
  const std::string shallow_text = std::string(10, '[') + std::string(10, ']');
  JsonCursor deep(deep_text, 64);
  CHECK_FALSE(deep.skip());
  JsonCursor shallow(shallow_text, 64);
  CHECK(shallow.skip());
  CHECK(shallow.at_end());
  // Invalid UTF-8 in a string.
  CHECK_FALSE(fast(s, "{\"s\":\"\xc3\x28\"}").ok);
  CHECK_FALSE(fast(s, "{\"s\":\"\xed\xa0\x80\"}").ok);  // a surrogate
}

TEST_CASE("the DOM-free reader agrees with the general path on mutated input", "[json][json-text]") {
  auto db = kinds_db();
  const TableSchema& s = *db->table("k")->schema();
  std::mt19937_64 rng(20261124);
  const std::string alphabet = std::string("{}[],:\"0123456789-+.eE \\atrufslnx\x80\xc3\xa9\n\x01") + std::string(1, '\0');
  std::size_t accepted = 0;
  for (int round = 0; round < 40000; ++round) {
    std::string t = kAccepted[rng() % kAccepted.size()];
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !t.empty(); ++e) {
      std::size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0: t.erase(at, 1); break;
        case 1: t.insert(t.begin() + static_cast<std::ptrdiff_t>(at), alphabet[rng() % alphabet.size()]); break;
        default: t[at] = alphabet[rng() % alphabet.size()]; break;
      }
    }
    if (fast(s, t).ok) ++accepted;
    agree(s, t);
  }
  CHECK(accepted > 1000);  // the mutations do reach the accepting paths
}
