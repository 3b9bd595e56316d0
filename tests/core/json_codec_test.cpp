// Records <-> JSON exactly as API.md says: ranges of every type, floats, strings (bytes,
// UTF-8, escaping), composites, "id", atomicity of failed writes, and parse_json's limits.
//
#include "test_db.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "core/json_codec.h"

using namespace tickdb;
using Catch::Matchers::Contains;
using tickdb::test::ok;

namespace {

// vec {x i32 = 7, y i32 = 8}; outer {v vec, w i32 = 9};
// all {b, i8..i64, u8..u64, f32, f64, s3 str(3), s str(64), p vec, o outer}.
std::shared_ptr<const DbVersion> all_db() {
  Transaction t(DbVersion::empty());
  auto i32 = [](std::int32_t v) {
    std::vector<std::byte> b(4);
    std::memcpy(b.data(), &v, 4);
    return b;
  };
  ok(t.create_type("vec", {{"x", "i32", 0, i32(7)}, {"y", "i32", 0, i32(8)}}));
  ok(t.create_type("outer", {{"v", "vec"}, {"w", "i32", 0, i32(9)}}));
  ok(t.create_table("all", {{"b", "bool"},
                            {"i8", "i8"},
                            {"i16", "i16"},
                            {"i32", "i32"},
                            {"i64", "i64"},
                            {"u8", "u8"},
                            {"u16", "u16"},
                            {"u32", "u32"},
                            {"u64", "u64"},
                            {"f32", "f32"},
                            {"f64", "f64"},
                            {"s3", "str", 3},
                            {"s", "str", 64},
                            {"p", "vec"},
                            {"o", "outer"}}));
  return ok(t.commit());
}

template <class T>
T read(const Transaction& txn, std::uint64_t id, const char* field) {
  auto r = txn.get("all", id);
  REQUIRE(r.has_value());
  auto a = ok(FieldAccessor<T>::resolve(r->schema(), field));
  return a.get(r->data());
}

std::string text_of(const RecordView& r) {
  std::string s;
  append_record_json(s, r);
  return s;
}

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
std::uint64_t bits(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}

// Inserting {field: v} must fail with invalid_argument naming the field, changing nothing.
void expect_rejected(Transaction& txn, const std::string& field, const json& v) {
  INFO("field " << field << " value " << v.dump(-1, ' ', false, json::error_handler_t::replace));
  auto before = txn.table("all")->count();
  auto next = txn.table("all")->next_id();
  auto r = insert_json(txn, "all", {{field, v}});
  REQUIRE_FALSE(r.is_ok());
  INFO("message: " << r.message());
  CHECK(r.code() == Errc::invalid_argument);
  CHECK_THAT(r.message(), Contains(field));
  CHECK(txn.table("all")->count() == before);
  CHECK(txn.table("all")->next_id() == next);
}

template <class T>
void check_int_type(const std::string& field) {
  using L = std::numeric_limits<T>;
  INFO("type " << field);
  auto db = all_db();
  Transaction txn(db);
  for (T v : {L::min(), L::max(), T(0), T(1)}) {
    const json jv = v;
    const std::string dec = std::to_string(+v);
    INFO("value " << dec);
    // From a json value built in code.
    auto id = ok(insert_json(txn, "all", {{field, jv}}));
    CHECK(read<T>(txn, id, field.c_str()) == v);
    RecordView r = *txn.get("all", id);
    CHECK(record_to_json(r)[field] == jv);
    const std::string text = text_of(r);
    CHECK_THAT(text, Contains("\"" + field + "\":" + dec + ","));
    // From text, and the printed text read back again.
    auto parsed = ok(parse_json("{\"" + field + "\": " + dec + "}"));
    auto id2 = ok(insert_json(txn, "all", parsed));
    CHECK(read<T>(txn, id2, field.c_str()) == v);
    auto again = ok(parse_json(text));
    again.erase("id");
    auto id3 = ok(insert_json(txn, "all", again));
    CHECK(read<T>(txn, id3, field.c_str()) == v);
  }

  // One past each end, as json values and as text.
  json below, above;
  std::string below_text, above_text;
  if constexpr (std::is_signed_v<T>) {
    if constexpr (sizeof(T) == 8) {
      below_text = "-9223372036854775809";
      above_text = "9223372036854775808";
    } else {
      below_text = std::to_string(std::int64_t{L::min()} - 1);
      above_text = std::to_string(std::int64_t{L::max()} + 1);
    }
  } else {
    below_text = "-1";
    above_text = sizeof(T) == 8 ? std::string("18446744073709551616")
                                : std::to_string(std::uint64_t{L::max()} + 1);
  }
  below = json::parse(below_text);
  above = json::parse(above_text);
  expect_rejected(txn, field, below);
  expect_rejected(txn, field, above);
  if constexpr (sizeof(T) < 8) {
    if constexpr (std::is_signed_v<T>)
      expect_rejected(txn, field, json(std::int64_t{L::min()} - 1));
    expect_rejected(txn, field, json(std::uint64_t{L::max()} + 1));
  } else if constexpr (std::is_signed_v<T>) {
    expect_rejected(txn, field, json(std::uint64_t{L::max()} + 1));
  }
  if constexpr (std::is_unsigned_v<T>) {
    expect_rejected(txn, field, json(-1));
    expect_rejected(txn, field, json(std::numeric_limits<std::int64_t>::min()));
  }
  // Not integers.
  expect_rejected(txn, field, json(1.5));
  expect_rejected(txn, field, json(-0.5));
  expect_rejected(txn, field, json("5"));
  expect_rejected(txn, field, json(true));
  expect_rejected(txn, field, json(nullptr));
  expect_rejected(txn, field, json::array({1}));
  expect_rejected(txn, field, json::object());
}

}  // namespace

TEST_CASE("json: every integer type takes exactly its range", "[json]") {
  check_int_type<std::int8_t>("i8");
  check_int_type<std::int16_t>("i16");
  check_int_type<std::int32_t>("i32");
  check_int_type<std::int64_t>("i64");
  check_int_type<std::uint8_t>("u8");
  check_int_type<std::uint16_t>("u16");
  check_int_type<std::uint32_t>("u32");
  check_int_type<std::uint64_t>("u64");
}

TEST_CASE("json: u64 18446744073709551615 is exact", "[json]") {
  auto db = all_db();
  Transaction txn(db);
  auto body = ok(parse_json(R"({"u64": 18446744073709551615})"));
  REQUIRE(body["u64"].is_number_unsigned());
  auto id = ok(insert_json(txn, "all", body));
  auto acc = ok(FieldAccessor<std::uint64_t>::resolve(*txn.table("all")->schema(), "u64"));
  RecordView r = *txn.get("all", id);
  CHECK(acc.get(r.data()) == 18446744073709551615ull);
  CHECK(acc.get(r.data()) == std::numeric_limits<std::uint64_t>::max());
  CHECK_THAT(text_of(r), Contains("\"u64\":18446744073709551615,"));
  CHECK(record_to_json(r)["u64"].get<std::uint64_t>() == 18446744073709551615ull);
  // One below is exact too (a double could not tell them apart).
  auto id2 = ok(insert_json(txn, "all", ok(parse_json(R"({"u64": 18446744073709551614})"))));
  CHECK(read<std::uint64_t>(txn, id2, "u64") == 18446744073709551614ull);
  auto id3 = ok(insert_json(txn, "all", ok(parse_json(R"({"u64": 9007199254740993})"))));
  CHECK(read<std::uint64_t>(txn, id3, "u64") == 9007199254740993ull);
  // Above it: rejected, not rounded.
  expect_rejected(txn, "u64", ok(parse_json("18446744073709551616")));
  expect_rejected(txn, "u64", ok(parse_json("1e20")));
  expect_rejected(txn, "u64", ok(parse_json("-1")));
}

TEST_CASE("json: bool takes only true and false", "[json]") {
  auto db = all_db();
  Transaction txn(db);
  auto t = ok(insert_json(txn, "all", {{"b", true}}));
  auto f = ok(insert_json(txn, "all", {{"b", false}}));
  CHECK(read<bool>(txn, t, "b") == true);
  CHECK(read<bool>(txn, f, "b") == false);
  CHECK(record_to_json(*txn.get("all", t))["b"] == true);
  CHECK_THAT(text_of(*txn.get("all", t)), Contains("\"b\":true,"));
  CHECK_THAT(text_of(*txn.get("all", f)), Contains("\"b\":false,"));
  expect_rejected(txn, "b", json(0));
  expect_rejected(txn, "b", json(1));
  expect_rejected(txn, "b", json(1.0));
  expect_rejected(txn, "b", json("true"));
  expect_rejected(txn, "b", json(nullptr));
}

TEST_CASE("json: floats are finite and within their type's range", "[json]") {
  auto db = all_db();
  Transaction txn(db);

  SECTION("f32 range") {
    auto id = ok(insert_json(txn, "all", {{"f32", 3.4e38}}));
    CHECK(read<float>(txn, id, "f32") == 3.4e38f);
    id = ok(insert_json(txn, "all", {{"f32", -3.4e38}}));
    CHECK(read<float>(txn, id, "f32") == -3.4e38f);
    id = ok(insert_json(txn, "all", {{"f32", static_cast<double>(FLT_MAX)}}));
    CHECK(read<float>(txn, id, "f32") == FLT_MAX);
    id = ok(insert_json(txn, "all", {{"f32", 7}}));  // an integer is a number
    CHECK(read<float>(txn, id, "f32") == 7.0f);
    expect_rejected(txn, "f32", json(1e39));
    CHECK_THAT(insert_json(txn, "all", {{"f32", 1e39}}).message(), Contains("range"));
    expect_rejected(txn, "f32", json(-1e39));
    expect_rejected(txn, "f32", json(3.5e38));
    expect_rejected(txn, "f32", json(1e308));
    // FLT_MAX's shortest text (3.4028235e+38) lies a little above FLT_MAX: it must round
    // back to FLT_MAX, while FLT_MAX + half an ulp already rounds to infinity.
    id = ok(insert_json(txn, "all", ok(parse_json(R"({"f32": 3.4028235e+38})"))));
    CHECK(read<float>(txn, id, "f32") == FLT_MAX);
    expect_rejected(txn, "f32", json(3.4028235677973366e38));
    expect_rejected(txn, "f32", json(-3.4028235677973366e38));
  }
  SECTION("f64 range") {
    auto id = ok(insert_json(txn, "all", {{"f64", 1e308}}));
    CHECK(read<double>(txn, id, "f64") == 1e308);
    CHECK(bits(read<double>(txn, id, "f64")) == bits(1e308));
    CHECK_THAT(text_of(*txn.get("all", id)), Contains("\"f64\":1e+308,"));
    id = ok(insert_json(txn, "all", ok(parse_json(R"({"f64": 1e308})"))));
    CHECK(bits(read<double>(txn, id, "f64")) == bits(1e308));
    id = ok(insert_json(txn, "all", {{"f64", 0.1}}));
    CHECK_THAT(text_of(*txn.get("all", id)), Contains("\"f64\":0.1,"));
    CHECK(bits(read<double>(txn, id, "f64")) == bits(0.1));
    id = ok(insert_json(txn, "all", ok(parse_json(R"({"f64": -1.7976931348623157e308})"))));
    CHECK(read<double>(txn, id, "f64") == -DBL_MAX);
    CHECK_THAT(text_of(*txn.get("all", id)), Contains("\"f64\":-1.7976931348623157e+308,"));
  }
  SECTION("NaN and infinities are rejected for both") {
    for (const char* f : {"f32", "f64"}) {
      expect_rejected(txn, f, json(std::nan("")));
      CHECK_THAT(insert_json(txn, "all", {{f, std::nan("")}}).message(), Contains("finite"));
      expect_rejected(txn, f, json(std::numeric_limits<double>::infinity()));
      expect_rejected(txn, f, json(-std::numeric_limits<double>::infinity()));
      expect_rejected(txn, f, json("1.5"));
      expect_rejected(txn, f, json(nullptr));
      expect_rejected(txn, f, json(true));
    }
  }
}

TEST_CASE("json: f32 prints in its shortest form and reads back to the same bits", "[json]") {
  auto db = all_db();
  Transaction txn(db);
  auto id = ok(insert_json(txn, "all", {{"f32", 0.1}}));
  RecordView r = *txn.get("all", id);
  const std::string text = text_of(r);
  CHECK_THAT(text, Contains("\"f32\":0.1,"));
  CHECK(record_to_json(r)["f32"].get<double>() == 0.1);
  CHECK(bits(read<float>(txn, id, "f32")) == bits(0.1f));

  auto back = ok(parse_json(text));
  back.erase("id");
  auto id2 = ok(insert_json(txn, "all", back));
  CHECK(bits(read<float>(txn, id2, "f32")) == bits(0.1f));

  // A spread of values: printed text and record_to_json both give the same bits back.
  const float fs[] = {0.1f,       1.0f / 3.0f, FLT_MAX, -FLT_MAX,    FLT_MIN, FLT_TRUE_MIN,
                      123456.79f, -0.0f,       1e-10f,  16777216.0f, 2.5f,    1e30f};
  const auto acc = ok(FieldAccessor<float>::resolve(*txn.table("all")->schema(), "f32"));
  for (float f : fs) {
    INFO("f32 value " << f);
    RecordBuffer b(*txn.table("all")->schema());
    acc.set(b.data(), f);
    auto rid = ok(txn.insert("all", b.bytes()));
    RecordView rv = *txn.get("all", rid);
    auto from_text = ok(parse_json(text_of(rv)));
    auto from_json = record_to_json(rv);
    CHECK(from_text == from_json);
    for (const json* j : {&from_text, &from_json}) {
      auto k = ok(insert_json(txn, "all", {{"f32", (*j)["f32"]}}));
      CHECK(bits(read<float>(txn, k, "f32")) == bits(f));
    }
  }
  // The shortest form, not the float's exact decimal expansion.
  {
    RecordBuffer b(*txn.table("all")->schema());
    acc.set(b.data(), 1.0f / 3.0f);
    auto rid = ok(txn.insert("all", b.bytes()));
    CHECK_THAT(text_of(*txn.get("all", rid)), Contains("\"f32\":0.33333334,"));
  }
  {
    RecordBuffer b(*txn.table("all")->schema());
    acc.set(b.data(), 2.0f);
    auto rid = ok(txn.insert("all", b.bytes()));
    CHECK_THAT(text_of(*txn.get("all", rid)), Contains("\"f32\":2.0,"));
  }
}

TEST_CASE("json: str(N) counts bytes of valid UTF-8", "[json]") {
  auto db = all_db();
  Transaction txn(db);
  auto put = [&](const std::string& s) { return insert_json(txn, "all", {{"s3", s}}); };
  auto got = [&](std::uint64_t id) { return std::string(read<std::string_view>(txn, id, "s3")); };

  CHECK(got(ok(put("abc"))) == "abc");
  CHECK(got(ok(put(""))) == "");
  CHECK(got(ok(put("a"))) == "a");
  CHECK(got(ok(put("\xc3\xa9"
                   "a"))) ==
        "\xc3\xa9"
        "a");                                             // é + a = 3 bytes
  CHECK(got(ok(put("\xe2\x82\xac"))) == "\xe2\x82\xac");  // € = 3 bytes
  expect_rejected(txn, "s3", json("abcd"));
  expect_rejected(txn, "s3", json("\xc3\xa9\xc3\xa9"));  // éé = 4 bytes
  expect_rejected(txn, "s3",
                  json("\xe2\x82\xac"
                       "a"));                                     // 4 bytes
  expect_rejected(txn, "s3", json("\xf0\x9f\x98\x80"));           // one 4-byte code point
  expect_rejected(txn, "s3", json(std::string("\xff")));          // invalid UTF-8
  expect_rejected(txn, "s3", json(std::string("a\xc3")));         // truncated sequence
  expect_rejected(txn, "s3", json(std::string("\xc0\xaf")));      // overlong
  expect_rejected(txn, "s3", json(std::string("\xed\xa0\x80")));  // surrogate
  expect_rejected(txn, "s3", json(std::string("a\0b", 3)));       // embedded zero byte
  expect_rejected(txn, "s3", json(std::string("\0", 1)));
  expect_rejected(txn, "s3", json(5));
  // The str(64) field: exactly 64 accepted, 65 not.
  CHECK(ok(insert_json(txn, "all", {{"s", std::string(64, 'x')}})) > 0);
  expect_rejected(txn, "s", json(std::string(65, 'x')));
  // 32 two-byte characters are 64 bytes; one more ASCII byte is too many.
  std::string e32;
  for (int i = 0; i < 32; ++i) e32 += "\xc3\xa9";
  auto id = ok(insert_json(txn, "all", {{"s", e32}}));
  CHECK(read<std::string_view>(txn, id, "s") == e32);
  expect_rejected(txn, "s", json(e32 + "a"));
}

TEST_CASE("json: strings are escaped in append_record_json and parse back equal", "[json]") {
  auto db = all_db();
  Transaction txn(db);
  const std::string nasty = std::string(
                                "q\"b\\s/n\nt\tr\rb\bf\fc\x01\x1f\x7f"
                                "\xc3\xa9"
                                "\xe2\x82\xac") +
                            "'<>&";
  REQUIRE(nasty.size() <= 64);
  auto id = ok(insert_json(txn, "all", {{"s", nasty}}));
  RecordView r = *txn.get("all", id);
  CHECK(read<std::string_view>(txn, id, "s") == nasty);
  const std::string text = text_of(r);
  for (char c : text) CHECK(static_cast<unsigned char>(c) >= 0x20);  // no raw control character
  CHECK_THAT(text, Contains(R"(q\"b\\s/n\nt\tr\rb\bf\fc\u0001\u001f)"));
  auto back = ok(parse_json(text));
  CHECK(back["s"].get<std::string>() == nasty);
  CHECK(json::parse(text)["s"].get<std::string>() == nasty);
  CHECK(record_to_json(r)["s"].get<std::string>() == nasty);
  // And it goes back in unchanged.
  back.erase("id");
  auto id2 = ok(insert_json(txn, "all", back));
  CHECK(read<std::string_view>(txn, id2, "s") == nasty);
  // Every control character 1..31 survives the trip.
  std::string ctl;
  for (int c = 1; c < 32; ++c) ctl += static_cast<char>(c);
  auto id3 = ok(insert_json(txn, "all", {{"s", ctl}}));
  auto t3 = text_of(*txn.get("all", id3));
  for (char c : t3) CHECK(static_cast<unsigned char>(c) >= 0x20);
  CHECK(ok(parse_json(t3))["s"].get<std::string>() == ctl);
}

TEST_CASE("json: composites are nested objects, partial objects keep defaults", "[json]") {
  auto db = all_db();
  Transaction txn(db);
  using I = std::int32_t;

  auto id0 = ok(insert_json(txn, "all", json::object()));
  CHECK(read<I>(txn, id0, "p.x") == 7);
  CHECK(read<I>(txn, id0, "p.y") == 8);
  CHECK(read<I>(txn, id0, "o.v.x") == 7);
  CHECK(read<I>(txn, id0, "o.v.y") == 8);
  CHECK(read<I>(txn, id0, "o.w") == 9);
  auto j0 = record_to_json(*txn.get("all", id0));
  CHECK(j0["p"] == json({{"x", 7}, {"y", 8}}));
  CHECK(j0["o"] == json({{"v", {{"x", 7}, {"y", 8}}}, {"w", 9}}));
  CHECK_THAT(text_of(*txn.get("all", id0)),
             Contains(R"("p":{"x":7,"y":8},"o":{"v":{"x":7,"y":8},"w":9}})"));

  auto id1 = ok(insert_json(txn, "all", {{"p", {{"x", 1}}}}));
  CHECK(read<I>(txn, id1, "p.x") == 1);
  CHECK(read<I>(txn, id1, "p.y") == 8);

  auto id2 = ok(insert_json(txn, "all", {{"o", {{"v", {{"y", 5}}}}}}));
  CHECK(read<I>(txn, id2, "o.v.x") == 7);
  CHECK(read<I>(txn, id2, "o.v.y") == 5);
  CHECK(read<I>(txn, id2, "o.w") == 9);
  CHECK(read<I>(txn, id2, "p.x") == 7);

  auto id3 = ok(insert_json(txn, "all", {{"o", {{"w", -1}, {"v", json::object()}}}}));
  CHECK(read<I>(txn, id3, "o.v.x") == 7);
  CHECK(read<I>(txn, id3, "o.w") == -1);

  // Update: a partial nested object changes only the sub-fields it names.
  ok(update_json(txn, "all", id1, {{"p", {{"y", 9}}}}));
  CHECK(read<I>(txn, id1, "p.x") == 1);
  CHECK(read<I>(txn, id1, "p.y") == 9);
  ok(update_json(txn, "all", id2, {{"o", {{"v", {{"x", 3}}}}}}));
  CHECK(read<I>(txn, id2, "o.v.x") == 3);
  CHECK(read<I>(txn, id2, "o.v.y") == 5);
  CHECK(read<I>(txn, id2, "o.w") == 9);

  // Unknown fields: top level and nested, on insert and update.
  expect_rejected(txn, "nope", json(1));
  expect_rejected(txn, "p", json({{"z", 1}}));
  expect_rejected(txn, "o", json({{"v", {{"q", 1}}}}));
  expect_rejected(txn, "o", json({{"x", 1}}));
  expect_rejected(txn, "p", json(5));
  expect_rejected(txn, "p", json::array({1, 2}));
  expect_rejected(txn, "p", json({{"x", "1"}}));
  expect_rejected(txn, "p", json({{"x", 2147483648ll}}));
  {
    auto r = insert_json(txn, "all", {{"o", {{"v", {{"q", 1}}}}}});
    CHECK_THAT(r.message(), Contains("o.v.q"));
  }
  CHECK(update_json(txn, "all", id1, {{"nope", 1}}).code() == Errc::invalid_argument);
  CHECK(update_json(txn, "all", id1, {{"p", {{"z", 1}}}}).code() == Errc::invalid_argument);
  CHECK(read<I>(txn, id1, "p.x") == 1);
  CHECK(read<I>(txn, id1, "p.y") == 9);
}

TEST_CASE("json: \"id\" in insert_json and update_json", "[json]") {
  auto db = all_db();
  Transaction txn(db);

  auto id = ok(insert_json(txn, "all", {{"id", 10}, {"i32", 5}}));
  CHECK(id == 10);
  CHECK(read<std::int32_t>(txn, 10, "i32") == 5);
  CHECK(record_to_json(*txn.get("all", 10))["id"] == 10);
  CHECK(text_of(*txn.get("all", 10)).rfind("{\"id\":10,", 0) == 0);
  CHECK(ok(insert_json(txn, "all", {{"i32", 6}})) == 11);

  auto count = txn.table("all")->count();
  CHECK(insert_json(txn, "all", {{"id", 10}}).code() == Errc::already_exists);
  CHECK(insert_json(txn, "all", {{"id", 11}, {"i32", 1}}).code() == Errc::already_exists);
  CHECK(insert_json(txn, "all", {{"id", 3}}).code() == Errc::already_exists);  // below the next id
  CHECK(insert_json(txn, "all", {{"id", -1}}).code() == Errc::invalid_argument);
  CHECK(insert_json(txn, "all", {{"id", "12"}}).code() == Errc::invalid_argument);
  CHECK(insert_json(txn, "all", {{"id", 12.5}}).code() == Errc::invalid_argument);
  CHECK(insert_json(txn, "all", {{"id", 0}}).code() == Errc::invalid_argument);
  CHECK(insert_json(txn, "all", {{"id", nullptr}}).code() == Errc::invalid_argument);
  CHECK(txn.table("all")->count() == count);
  CHECK(read<std::int32_t>(txn, 10, "i32") == 5);
  CHECK(read<std::int32_t>(txn, 11, "i32") == 6);
  CHECK(ok(insert_json(txn, "all", {{"id", 20}})) == 20);

  // update_json: the same id is fine, another id is invalid_argument.
  ok(update_json(txn, "all", 10, {{"id", 10}, {"i32", 7}}));
  CHECK(read<std::int32_t>(txn, 10, "i32") == 7);
  auto s = update_json(txn, "all", 10, {{"id", 11}, {"i32", 8}});
  REQUIRE(s.code() == Errc::invalid_argument);
  CHECK_THAT(s.message(), Contains("id"));
  CHECK(read<std::int32_t>(txn, 10, "i32") == 7);
  CHECK(read<std::int32_t>(txn, 11, "i32") == 6);
  CHECK(update_json(txn, "all", 10, {{"id", -10}}).code() == Errc::invalid_argument);
  CHECK(update_json(txn, "all", 99, {{"i32", 1}}).code() == Errc::not_found);
  CHECK(update_json(txn, "nope", 10, {{"i32", 1}}).code() == Errc::not_found);
  CHECK(insert_json(txn, "nope", {{"i32", 1}}).code() == Errc::not_found);

  // record_from_json without an id slot refuses "id".
  RecordBuffer b(*txn.table("all")->schema());
  CHECK(record_from_json(b.schema(), {{"id", 1}}, b.data()).code() == Errc::invalid_argument);
  std::optional<std::uint64_t> got;
  ok(record_from_json(b.schema(), {{"id", 18446744073709551615ull}}, b.data(), &got));
  CHECK(got == std::optional<std::uint64_t>(18446744073709551615ull));
}

TEST_CASE("json: record_to_json and append_record_json agree", "[json]") {
  auto db = all_db();
  Transaction txn(db);
  const json body = {{"b", true},
                     {"i8", -128},
                     {"i16", 32767},
                     {"i32", -2147483647 - 1},
                     {"i64", std::numeric_limits<std::int64_t>::min()},
                     {"u8", 255},
                     {"u16", 65535},
                     {"u32", 4294967295u},
                     {"u64", 18446744073709551615ull},
                     {"f32", 0.1},
                     {"f64", -2.5e-300},
                     {"s3", "\xc3\xa9!"},
                     {"s", "tab\there \"quoted\" back\\slash \x01"},
                     {"p", {{"x", -1}}},
                     {"o", {{"v", {{"x", 2}, {"y", 3}}}, {"w", 4}}}};
  auto id = ok(insert_json(txn, "all", body));
  auto id0 = ok(insert_json(txn, "all", json::object()));
  for (std::uint64_t k : {id, id0}) {
    INFO("record " << k);
    RecordView r = *txn.get("all", k);
    const std::string text = text_of(r);
    CHECK(text.rfind("{\"id\":", 0) == 0);
    CHECK(text == record_to_string(r));
    const json parsed = ok(parse_json(text));
    const json direct = record_to_json(r);
    CHECK(parsed == direct);
    CHECK(direct.size() == 16);  // id + 15 fields
  }
  const json out = record_to_json(*txn.get("all", id));
  for (const auto& [k, v] : body.items()) {
    if (k == "p") continue;
    INFO("field " << k);
    CHECK(out[k] == v);
  }
  CHECK(out["p"] == json({{"x", -1}, {"y", 8}}));
  CHECK(out["id"] == id);
  // Reinserting the output gives the same bytes.
  json again = out;
  again.erase("id");
  auto id2 = ok(insert_json(txn, "all", again));
  auto a = txn.get("all", id)->bytes();
  auto b = txn.get("all", id2)->bytes();
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
}

TEST_CASE("json: a failed insert_json or update_json leaves the transaction unchanged", "[json]") {
  auto base = [] {
    Transaction t(all_db());
    ok(insert_json(t, "all", {{"i32", 1}, {"s", "one"}}));
    ok(insert_json(t, "all", {{"i32", 2}, {"s", "two"}}));
    return ok(t.commit());
  }();
  Transaction txn(base);
  auto bytes_of = [&](std::uint64_t id) {
    auto r = txn.get("all", id);
    REQUIRE(r.has_value());
    return std::vector<std::byte>(r->bytes().begin(), r->bytes().end());
  };
  const auto b1 = bytes_of(1), b2 = bytes_of(2);

  // Inserts where a later field is bad, after good ones.
  CHECK(insert_json(txn, "all", {{"i32", 5}, {"s", "five"}, {"i8", 999}}).code() ==
        Errc::invalid_argument);
  CHECK(insert_json(txn, "all", {{"i32", 5}, {"zzz", 1}}).code() == Errc::invalid_argument);
  CHECK(insert_json(txn, "all", {{"i32", 5}, {"p", {{"x", 1}, {"q", 2}}}}).code() ==
        Errc::invalid_argument);
  CHECK(insert_json(txn, "all", {{"f32", 1e39}}).code() == Errc::invalid_argument);
  CHECK(insert_json(txn, "all", json::array({1})).code() == Errc::invalid_argument);
  CHECK(insert_json(txn, "all", json("x")).code() == Errc::invalid_argument);
  CHECK(insert_json(txn, "all", {{"id", 1}, {"i32", 5}}).code() == Errc::already_exists);
  CHECK(txn.table("all")->count() == 2);
  CHECK(txn.table("all")->next_id() == 3);
  CHECK_FALSE(txn.changed());

  // Updates where a later field is bad, after good ones.
  CHECK(update_json(txn, "all", 1, {{"i32", 5}, {"s", "five"}, {"i8", 999}}).code() ==
        Errc::invalid_argument);
  CHECK(update_json(txn, "all", 1, {{"i32", 5}, {"zzz", 1}}).code() == Errc::invalid_argument);
  CHECK(update_json(txn, "all", 1, {{"i32", 5}, {"p", {{"x", 1}, {"q", 2}}}}).code() ==
        Errc::invalid_argument);
  CHECK(update_json(txn, "all", 1, {{"i32", 5}, {"id", 2}}).code() == Errc::invalid_argument);
  CHECK(update_json(txn, "all", 1, {{"s3", "toolong"}}).code() == Errc::invalid_argument);
  CHECK(update_json(txn, "all", 1, json::array()).code() == Errc::invalid_argument);
  CHECK(bytes_of(1) == b1);
  CHECK(bytes_of(2) == b2);
  CHECK(read<std::int32_t>(txn, 1, "i32") == 1);
  CHECK(read<std::string_view>(txn, 1, "s") == "one");
  CHECK_FALSE(txn.changed());
  CHECK(ok(txn.commit()).get() == base.get());

  // A good update after failed ones still works and changes only what it names.
  Transaction t2(base);
  CHECK(update_json(t2, "all", 2, {{"i8", 1000}}).code() == Errc::invalid_argument);
  ok(update_json(t2, "all", 2, {{"i8", 100}}));
  auto v = ok(t2.commit());
  auto r2 = *v->table("all")->get(2);
  CHECK(ok(r2.get<std::int8_t>("i8")) == 100);
  CHECK(ok(r2.get<std::int32_t>("i32")) == 2);
  CHECK(ok(r2.get<std::string_view>("s")) == "two");
  CHECK(ok(base->table("all")->get(2)->get<std::int8_t>("i8")) == 0);
}

TEST_CASE("json: parse_json limits nesting to 64 and reports malformed text", "[json]") {
  auto nest = [](std::size_t n, char open, char close) {
    return std::string(n, open) + std::string(n, close);
  };
  SECTION("arrays") {
    CHECK(parse_json(nest(64, '[', ']')).is_ok());
    auto r = parse_json(nest(65, '[', ']'));
    REQUIRE(r.code() == Errc::invalid_argument);
    CHECK(parse_json(nest(1000, '[', ']')).code() == Errc::invalid_argument);
  }
  SECTION("objects and mixed") {
    auto objs = [](std::size_t n) {
      std::string s;
      for (std::size_t i = 0; i < n; ++i) s += "{\"a\":";
      s += "1";
      s += std::string(n, '}');
      return s;
    };
    CHECK(parse_json(objs(64)).is_ok());
    CHECK(parse_json(objs(65)).code() == Errc::invalid_argument);
    std::string mixed;
    for (int i = 0; i < 32; ++i) mixed += "{\"k\":[";
    mixed += "0";
    for (int i = 0; i < 32; ++i) mixed += "]}";
    CHECK(parse_json(mixed).is_ok());  // 64 deep
    std::string deeper = "[";
    deeper += mixed;
    deeper += "]";
    CHECK(parse_json(deeper).code() == Errc::invalid_argument);
    // Siblings do not add up: depth, not count.
    std::string wide = "[";
    for (int i = 0; i < 200; ++i) {
      if (i) wide += ',';
      wide += nest(63, '[', ']');
    }
    wide += "]";
    CHECK(parse_json(wide).is_ok());
  }
  SECTION("brackets inside strings do not count") {
    const std::string br = std::string(100, '[') + std::string(100, '{');
    auto r = parse_json("[\"" + br + "\"]");
    REQUIRE(r.is_ok());
    CHECK((*r)[0].get<std::string>() == br);
    CHECK(parse_json("{\"" + br + "\": \"" + br + "\"}").is_ok());
    // An escaped quote does not end the string.
    CHECK(parse_json("[\"\\\"" + br + "\"]").is_ok());
    // An escaped backslash does: what follows counts again.
    const std::string s63 = nest(63, '[', ']');
    CHECK(parse_json("[\"\\\\\"," + s63 + "]").is_ok());                             // 64 deep
    CHECK(parse_json("[\"\\\\\",[" + s63 + "]]").code() == Errc::invalid_argument);  // 65 deep
  }
  SECTION("a custom max_depth") {
    CHECK(parse_json("[[1]]", 2).is_ok());
    CHECK(parse_json("[[1]]", 1).code() == Errc::invalid_argument);
    CHECK(parse_json("1", 0).is_ok());
    CHECK(parse_json("[]", 0).code() == Errc::invalid_argument);
  }
  SECTION("malformed text is bad_json") {
    for (const char* t :
         {"{\"a\":}", "[1,2", "", "   ", "{'a':1}", "[1] x", "tru", "{\"a\" 1}", "\"unterminated",
          "[01]", "]]]", "{\"a\":1,}", "[1,]", "nul", "+1", "{\"a\":\"\x01\"}", "\"\\x\""}) {
      INFO("text: " << t);
      auto r = parse_json(t);
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.code() == Errc::bad_json);
      CHECK_FALSE(r.message().empty());
    }
    CHECK(parse_json(std::string("[\"\xff\"]")).code() == Errc::bad_json);  // invalid UTF-8
  }
  SECTION("well-formed values parse") {
    CHECK(ok(parse_json("  {\"a\": [1, 2.5, \"x\", true, null]}  ")) ==
          json({{"a", {1, 2.5, "x", true, nullptr}}}));
    CHECK(ok(parse_json("18446744073709551615")).is_number_unsigned());
    CHECK(ok(parse_json("-9223372036854775808")).get<std::int64_t>() ==
          std::numeric_limits<std::int64_t>::min());
  }
}

TEST_CASE("json: a number too large for a double is an error, not an exception", "[json]") {
  for (const char* t : {"1e400", "{\"f64\": 1e400}", "[-1e999]"}) {
    INFO("text: " << t);
    Result<json> r = make_error(Errc::internal, "not run");
    REQUIRE_NOTHROW(r = parse_json(t));
    REQUIRE_FALSE(r.is_ok());
    CHECK((r.code() == Errc::bad_json || r.code() == Errc::invalid_argument));
  }
}

TEST_CASE("json: a partial composite default keeps the type's other sub-field defaults", "[json]") {
  auto db = all_db();
  Transaction txn(db);
  auto spec = ok(
      field_spec_from_json({{"name", "q"}, {"type", "vec"}, {"default", {{"x", 1}}}}, txn.types()));
  REQUIRE(spec.default_value.size() == 8);
  ok(txn.add_field("all", spec));
  auto id = ok(insert_json(txn, "all", json::object()));
  CHECK(read<std::int32_t>(txn, id, "q.x") == 1);
  CHECK(read<std::int32_t>(txn, id, "q.y") == 8);
}

// Found by tests/fuzz/rpc_fuzz.cpp: nlohmann stops at a zero byte as at the end of the input,
// so a body "{...}\0garbage" was read as its first object.
TEST_CASE("json: a zero byte is refused, not taken for the end of the text", "[json]") {
  using namespace std::string_literals;
  auto r = parse_json("{\"a\": 1}\0{\"b\""s);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.code() == Errc::bad_json);
  CHECK_FALSE(parse_json("\0"s).is_ok());
  CHECK_FALSE(parse_json("[1,\0 2]"s).is_ok());
  CHECK(parse_json("\"\\u0000\"").is_ok());  // an escaped zero is JSON (record strings refuse it)
}
