// Queries (core/filter.h, core/query.h): the two filter forms, type checks and limits with
// their messages, and a differential test: thousands of random filters, orders, projections,
// offsets and cursors over a random table that changes between rounds, every page compared
// with a brute-force evaluation written here over the records' JSON.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/query.h"
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;
using json = nlohmann::json;

namespace {

std::shared_ptr<const DbVersion> mixed_db() {
  return commit(DbVersion::empty(), [&](Transaction& t) {
    ok(t.create_type("pair", {{"a", "f64"}, {"b", "i16"}}));
    ok(t.create_table("m", {{"hp", "i32"},
                            {"tag", "u8"},
                            {"name", "str", 6},
                            {"x", "f32"},
                            {"big", "i64"},
                            {"owner", "u64"},
                            {"ok", "bool"},
                            {"pos", "pair"}}));
  });
}

std::string message_of(const std::string& filter_text, const TableSchema& s) {
  auto f = parse_filter_text(filter_text);
  if (!f) return f.message();
  auto c = CompiledFilter::compile(*f, s);
  if (!c) return c.message();
  return "";
}

// ---- the model: filters evaluated over a record's JSON, exactly, with long double ----

enum class T { num_i, num_u, f32, f64, str, boolean };
struct FieldInfo {
  std::string path;
  T type;
  std::uint32_t size = 0;  // str
};
const std::vector<FieldInfo> kFields = {{"id", T::num_u},    {"hp", T::num_i},   {"tag", T::num_u},
                                        {"name", T::str, 6}, {"x", T::f32},      {"big", T::num_i},
                                        {"owner", T::num_u}, {"ok", T::boolean}, {"pos.a", T::f64},
                                        {"pos.b", T::num_i}};

const json& at_path(const json& rec, const std::string& path) {
  auto dot = path.find('.');
  if (dot == std::string::npos) return rec.at(path);
  return rec.at(path.substr(0, dot)).at(path.substr(dot + 1));
}

long double num(const json& v) {
  if (v.is_number_unsigned()) return static_cast<long double>(v.get<std::uint64_t>());
  if (v.is_number_integer()) return static_cast<long double>(v.get<std::int64_t>());
  return static_cast<long double>(v.get<double>());
}

const FieldInfo& info(const std::string& path) {
  for (const auto& f : kFields)
    if (f.path == path) return f;
  FAIL("no field " << path);
  return kFields[0];
}

// A field's value as stored: record JSON prints an f32 in its shortest form, which read back as
// a double is not the f32 itself.
long double field_num(const json& rec, const std::string& path) {
  const json& v = at_path(rec, path);
  if (info(path).type == T::f32)
    return static_cast<long double>(static_cast<float>(v.get<double>()));
  return num(v);
}

// A literal as the field's type sees it (API.md: converted before comparing).
long double lit_num(const FieldInfo& f, const json& v) {
  if (f.type == T::f32) return static_cast<long double>(static_cast<float>(v.get<double>()));
  return num(v);
}

template <class A>
bool cmp_op(const std::string& op, const A& a, const A& b) {
  if (op == "=") return a == b;
  if (op == "!=") return a != b;
  if (op == "<") return a < b;
  if (op == "<=") return a <= b;
  if (op == ">") return a > b;
  if (op == ">=") return a >= b;
  FAIL("op " << op);
  return false;
}

bool model_match(const json& f, const json& rec) {
  const std::string op = f[0];
  if (op == "&&") {
    for (std::size_t i = 1; i < f.size(); ++i)
      if (!model_match(f[i], rec)) return false;
    return true;
  }
  if (op == "||") {
    for (std::size_t i = 1; i < f.size(); ++i)
      if (model_match(f[i], rec)) return true;
    return false;
  }
  if (op == "!") return !model_match(f[1], rec);
  const FieldInfo& fi = info(f[1]);
  const json& v = at_path(rec, f[1]);
  if (op == "in" || op == "!in") {
    bool hit = false;
    for (const auto& l : f[2]) {
      if (fi.type == T::str)
        hit = hit || v.get<std::string>() == l.get<std::string>();
      else if (fi.type == T::boolean)
        hit = hit || v.get<bool>() == l.get<bool>();
      else
        hit = hit || field_num(rec, f[1]) == lit_num(fi, l);
    }
    return op == "in" ? hit : !hit;
  }
  const json& rhs = f[2];
  if (fi.type == T::str) {
    const std::string a = v.get<std::string>();
    const std::string b =
        rhs.is_object() ? at_path(rec, rhs["field"]).get<std::string>() : rhs.get<std::string>();
    if (op == "^=") return a.rfind(b, 0) == 0;
    if (op == "~") return a.find(b) != std::string::npos;
    return cmp_op(op, a, b);
  }
  if (fi.type == T::boolean) {
    bool b = rhs.is_object() ? at_path(rec, rhs["field"]).get<bool>() : rhs.get<bool>();
    return cmp_op(op, v.get<bool>(), b);
  }
  long double b = rhs.is_object() ? field_num(rec, rhs["field"]) : lit_num(fi, rhs);
  return cmp_op(op, field_num(rec, f[1]), b);
}

// Order: the model compares JSON values (numbers exactly, strings as bytes), then ids.
int model_cmp(const std::vector<OrderKey>& order, const json& a, const json& b) {
  for (const auto& k : order) {
    const json& x = at_path(a, k.path);
    const json& y = at_path(b, k.path);
    int c = 0;
    if (x.is_string())
      c = x.get<std::string>().compare(y.get<std::string>()) < 0 ? -1 : x == y ? 0 : 1;
    else if (x.is_boolean())
      c = x.get<bool>() == y.get<bool>() ? 0 : x.get<bool>() ? 1 : -1;
    else {
      long double a1 = field_num(a, k.path), b1 = field_num(b, k.path);
      c = a1 < b1 ? -1 : a1 > b1 ? 1 : 0;
    }
    if (c) return k.desc ? -c : c;
    if (k.path == "id") return 0;
  }
  return a["id"].get<std::uint64_t>() < b["id"].get<std::uint64_t>() ? -1 : 1;
}

json project(const json& rec, const std::vector<std::string>& select) {
  if (select.empty()) return rec;
  json o = {{"id", rec["id"]}};
  for (const auto& s : select) {
    if (s == "id") continue;
    auto dot = s.find('.');
    if (dot == std::string::npos)
      o[s] = rec[s];
    else
      o[s.substr(0, dot)][s.substr(dot + 1)] = rec[s.substr(0, dot)][s.substr(dot + 1)];
  }
  // "pos" after "pos.a": the whole composite
  for (const auto& s : select)
    if (s == "pos") o["pos"] = rec["pos"];
  return o;
}

// ---- random data and queries ----

struct Gen {
  std::mt19937_64 rng{12345};
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  }
  bool coin(int pct = 50) { return static_cast<int>(pick(100)) < pct; }

  const std::vector<std::string> names = {"",  "a",  "ab",     "abc",
                                          "b", "ba", "zzzzzz", "\xc3\xa9t\xc3\xa9"};
  const std::vector<double> xs = {-1.5, -0.0, 0.0, static_cast<double>(0.1f), 2.5, 1e30};

  json record() {
    return {{"hp", static_cast<int>(pick(11)) - 5},
            {"tag", pick(5)},
            {"name", names[pick(names.size())]},
            {"x", xs[pick(xs.size())]},
            {"big", std::vector<std::int64_t>{INT64_MIN, -1, 0, 1, INT64_MAX}[pick(5)]},
            {"owner", std::vector<std::uint64_t>{0, 1, 2, UINT64_MAX}[pick(4)]},
            {"ok", coin()},
            {"pos",
             {{"a", std::vector<double>{-0.0, 0.5, 3.0, -7.25}[pick(4)]},
              {"b", static_cast<int>(pick(7)) - 3}}}};
  }

  json literal(const FieldInfo& f) {
    switch (f.type) {
      case T::str: {
        std::vector<std::string> ls = names;
        ls.push_back("abcdefgh");  // longer than the field
        ls.push_back("z");
        return ls[pick(ls.size())];
      }
      case T::boolean:
        return coin();
      case T::f32:
      case T::f64:
        return std::vector<json>{-1.5, -0.0, 0.0, 0.1, 2.5, 3, -7.25, 1e30, 0.5, 7}[pick(10)];
      case T::num_u:
        return std::vector<json>{0, 1, 2, 3, 4, 5, 20, UINT64_MAX}[pick(f.path == "tag" ? 7 : 8)];
      case T::num_i:
        if (f.path == "big") return std::vector<json>{INT64_MIN, -1, 0, 1, INT64_MAX, 2}[pick(6)];
        return std::vector<json>{-5, -3, -1, 0, 1, 2, 3, 5}[pick(8)];
    }
    return 0;
  }

  json leaf() {
    const FieldInfo& f = kFields[pick(kFields.size())];
    int r = static_cast<int>(pick(10));
    if (r < 2) {  // in
      json vals = json::array();
      for (std::size_t i = 0, n = 1 + pick(3); i < n; ++i) vals.push_back(literal(f));
      return {coin() ? "in" : "!in", f.path, vals};
    }
    std::vector<std::string> ops = {"=", "!=", "<", "<=", ">", ">="};
    if (f.type == T::str) ops = {"=", "!=", "<", "<=", ">", ">=", "^=", "~"};
    if (f.type == T::boolean) ops = {"=", "!="};
    std::string op = ops[pick(ops.size())];
    if (r < 4) {  // field to field: a field of a compatible kind
      std::vector<std::string> peers;
      for (const auto& g : kFields) {
        bool numeric = f.type != T::str && f.type != T::boolean;
        bool gnumeric = g.type != T::str && g.type != T::boolean;
        if ((numeric && gnumeric) || f.type == g.type) peers.push_back(g.path);
      }
      return {op, f.path, {{"field", peers[pick(peers.size())]}}};
    }
    return {op, f.path, literal(f)};
  }

  json filter(int depth) {
    if (depth == 0 || coin(40)) return leaf();
    int r = static_cast<int>(pick(3));
    if (r == 0) return {"!", filter(depth - 1)};
    json f = {r == 1 ? "&&" : "||"};
    for (std::size_t i = 0, n = 2 + pick(2); i < n; ++i) f.push_back(filter(depth - 1));
    return f;
  }

  std::vector<OrderKey> order() {
    std::vector<OrderKey> o;
    for (std::size_t i = 0, n = pick(4); i < n; ++i) {
      const FieldInfo& f = kFields[pick(kFields.size())];
      o.push_back({f.path, coin()});
    }
    return o;
  }

  std::vector<std::string> select() {
    std::vector<std::string> s;
    if (coin()) return s;
    const std::vector<std::string> all = {"id",    "hp",  "name", "x",    "pos.a",
                                          "pos.b", "pos", "ok",   "owner"};
    for (std::size_t i = 0, n = 1 + pick(3); i < n; ++i) s.push_back(all[pick(all.size())]);
    return s;
  }
};

std::string order_text(const std::vector<OrderKey>& o) {
  std::string s;
  for (const auto& k : o) {
    if (!s.empty()) s += ',';
    if (k.desc) s += '-';
    s += k.path;
  }
  return s;
}

}  // namespace

TEST_CASE("both filter forms parse to the same tree", "[query]") {
  auto a = ok(parse_filter_text(
      "hp < 50 && (team in (\"red\", \"blue\") || !(x >= -1.5e3)) && pos.x != pos.y"));
  auto b = ok(parse_filter_json(json::parse(
      R"(["&&", ["<", "hp", 50], ["||", ["in", "team", ["red", "blue"]], ["!", [">=", "x", -1.5e3]]], ["!=", "pos.x", {"field": "pos.y"}]])")));
  CHECK(filter_to_string(a) == filter_to_string(b));
  // The canonical text parses back to itself.
  CHECK(filter_to_string(ok(parse_filter_text(filter_to_string(a)))) == filter_to_string(a));
  CHECK(filter_to_string(ok(parse_filter_text("a !in (1,2)"))) ==
        filter_to_string(ok(parse_filter_json(json::parse(R"(["!in", "a", [1, 2]])")))));
  CHECK(filter_to_string(ok(parse_filter_text(" a\t=\n\"x\" "))) == "a = \"x\"");
}

TEST_CASE("integer literals of the text form read as JSON reads them", "[query]") {
  // Plain integers skip the JSON parser: each must give the value and type json::parse gives
  // (unsigned when not negative), at the edges of the short path and past them.
  for (const std::string lit : {"0", "7", "-0", "-7", "123456789012345678", "-123456789012345678",
                                "999999999999999999", "1234567890123456789", "18446744073709551615",
                                "-9223372036854775808", "18446744073709551616", "1.5", "-2e3"}) {
    INFO(lit);
    const auto text = ok(parse_filter_text("a = " + lit));
    const auto from_json = ok(parse_filter_json(json::parse(R"(["=", "a", )" + lit + "]")));
    CHECK(filter_to_string(text) == filter_to_string(from_json));
    CHECK(text.value.type() == json::parse(lit).type());
    CHECK(text.value == json::parse(lit));
  }
  for (const std::string lit : {"01", "-01", "00", "-", "--1", "1-"}) {
    INFO(lit);
    CHECK(parse_filter_text("a = " + lit).code() == Errc::invalid_argument);
  }
}

TEST_CASE("filter syntax errors say what and where", "[query]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "filter: the filter is empty"},
      {"   ", "filter: the filter is empty"},
      {"hp", "expected an operator (= != < <= > >= ^= ~ in) after 'hp' at 1:3"},
      {"hp <", "expected a value (a number, a string, true, false or a field) at 1:5"},
      {"hp < 5 &&", "expected a comparison, '!' or '(' at 1:10"},
      {"hp < 5 )", "unexpected ')' at 1:8"},
      {"(hp < 5", "expected ')' at 1:8"},
      {"hp == 5", "expected a value (a number, a string, true, false or a field) at 1:5"},
      {"hp < \"abc", "unterminated string at 1:6"},
      {"hp < 1e400", "number '1e400' is out of range at 1:6"},
      {"hp < 1.2.3", "malformed number '1.2.3' at 1:6"},
      {"hp in 1", "expected '(' after 'in' at 1:7"},
      {"hp in (1 2)", "expected ',' or ')' in the 'in' list at 1:10"},
      {"hp in (x)", "'in' lists hold literals only at 1:8"},
      {"hp ! 3", "expected 'in' after '!' at 1:6"},
      {"a.", "expected a field name at 1:3"},
      {"hp < 5 &&\n  5 < hp", "expected a field name at 2:3"},
      {"= 5", "expected a field name at 1:1"},
  };
  for (const auto& [text, msg] : cases) {
    INFO(text);
    auto f = parse_filter_text(text);
    REQUIRE_FALSE(f.is_ok());
    CHECK(f.code() == Errc::invalid_argument);
    CHECK_THAT(f.message(), Catch::Contains(msg));
  }
}

TEST_CASE("filter errors give the line and column on any line", "[query]") {
  auto message = [](const std::string& text) {
    auto f = parse_filter_text(text);
    REQUIRE_FALSE(f.is_ok());
    return f.message();
  };
  CHECK_THAT(message("a = 1 &&\nb = 2 &&\n\n  c =="),
             Catch::Contains("expected a value (a number, a string, true, false or a field) at "
                             "4:6"));
  // The end of the text, right after a newline.
  CHECK_THAT(message("a = 1 &&\n"), Catch::Contains("expected a comparison, '!' or '(' at 2:1"));
  // Many lines (60 comparisons: the limit is 64), the error on the last one, and one after a
  // run of newlines.
  std::string text;
  for (int i = 0; i < 60; ++i) text += "x" + std::to_string(i) + " = 1 ||\n";
  CHECK_THAT(message(text + "   y ~"), Catch::Contains("at 61:7"));
  CHECK_THAT(message(text + "\n\n\n)"), Catch::Contains("expected a field name at 64:1"));
}

TEST_CASE("filter JSON form errors give a JSON pointer", "[query]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(3)", "expected a string (the text form) or an array"},
      {R"([])", "expected an array [operator, operands...] at "},
      {R"(["&&", ["<", "hp", 1]])", "'&&' takes two or more operands at "},
      {R"(["!", 1])", "expected an array [operator, operands...] at /1"},
      {R"(["<", "hp"])", "'<' takes a field and a value at "},
      {R"(["<", "hp", null])", "expected a value or {\"field\": name} at /2"},
      {R"(["<", "hp", {"field": "a", "x": 1}])", "expected a value or {\"field\": name} at /2"},
      {R"(["<", 3, 4])", "expected a field name at /1"},
      {R"(["<<", "hp", 4])", "unknown operator '<<' at /0"},
      {R"(["in", "hp", []])", "expected a non-empty array of values at /2"},
      {R"(["in", "hp", [1, [2]]])", "'in' lists hold literals only at /2/1"},
      {R"(["||", ["=", "a", 1], ["&&", ["=", "b", 1], ["=", "c", "1"], ["~", 1, 1]]])",
       "expected a field name at /2/3/1"},
  };
  for (const auto& [text, msg] : cases) {
    INFO(text);
    auto f =
        text[0] == '3' ? parse_filter(json::parse(text)) : parse_filter_json(json::parse(text));
    REQUIRE_FALSE(f.is_ok());
    CHECK_THAT(f.message(), Catch::Contains(msg));
  }
}

TEST_CASE("filter limits: comparisons, nesting, in lists", "[query]") {
  std::string many = "a = 0";
  for (int i = 1; i < 64; ++i) many += " || a = " + std::to_string(i);
  CHECK(parse_filter_text(many).is_ok());
  CHECK_THAT(parse_filter_text(many + " || a = 64").message(),
             Catch::Contains("more than 64 comparisons"));
  std::string deep = "a = 1";
  for (int i = 1; i < 16; ++i) deep = "!" + deep;
  CHECK(parse_filter_text(deep).is_ok());
  CHECK_THAT(parse_filter_text("!" + deep).message(), Catch::Contains("nesting is deeper than 16"));
  // Parentheses add no level, but their recursion is bounded.
  CHECK(parse_filter_text(std::string(40, '(') + "a = 1" + std::string(40, ')')).is_ok());
  CHECK_THAT(parse_filter_text(std::string(100000, '(')).message(),
             Catch::Contains("nesting is deeper than 16"));
  json in = json::array();
  for (int i = 0; i < 1000; ++i) in.push_back(i);
  CHECK(parse_filter_json(json::array({"in", "a", in})).is_ok());
  in.push_back(1000);
  CHECK_THAT(parse_filter_json(json::array({"in", "a", in})).message(),
             Catch::Contains("at most 1000 values"));
  std::string text = "a in (0";
  for (int i = 1; i <= 1000; ++i) {
    text += ',';
    text += std::to_string(i);
  }
  CHECK_THAT(parse_filter_text(text + ")").message(), Catch::Contains("at most 1000 values"));
}

TEST_CASE("filters are type-checked against the schema", "[query]") {
  auto db = mixed_db();
  const TableSchema& s = *db->table("m")->schema();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"hpp < 5", "filter: unknown field 'hpp' at 1:1"},
      {"hp < 5 && pos.q = 1", "unknown field 'pos.q' at 1:11"},
      {"hp.a = 1", "'hp' is not a composite"},
      {"pos = 1", "field 'pos' is a composite (pair): compare its leaves, e.g. 'pos.a' at 1:1"},
      {"hp < \"x\"", "i32 field 'hp' cannot be compared with \"x\" at 1:1"},
      {"name = 3", "str field 'name' cannot be compared with 3"},
      {"ok = 1", "bool field 'ok' cannot be compared with 1"},
      {"ok < true", "'<' does not apply to bool field 'ok'"},
      {"hp ^= \"a\"", "'^=' does not apply to i32 field 'hp'"},
      {"x ~ \"a\"", "'~' does not apply to f32 field 'x'"},
      {"tag = 256", "literal 256 is out of range for u8 field 'tag'"},
      {"tag = -1", "literal -1 is out of range for u8 field 'tag'"},
      {"hp = 2147483648", "literal 2147483648 is out of range for i32 field 'hp'"},
      {"hp = 1.5", "literal 1.5 is not an integer, as i32 field 'hp' needs"},
      {"big = 9223372036854775808", "out of range for i64 field 'big'"},
      {"owner = -1", "out of range for u64 field 'owner'"},
      {"x = 1e39", "literal 1e+39 is out of range for f32 field 'x'"},
      {"hp in (1, \"a\")", "i32 field 'hp' cannot be compared with \"a\""},
      {"hp < name", "i32 field 'hp' cannot be compared with str field 'name'"},
      {"ok = hp", "bool field 'ok' cannot be compared with i32 field 'hp'"},
      {"id = -1", "out of range for u64 field 'id'"},
  };
  for (const auto& [text, msg] : cases) {
    INFO(text);
    CHECK_THAT(message_of(text, s), Catch::Contains(msg));
  }
  // Valid: integral floats for integer fields, u64 max, field to field across numeric types.
  for (std::string text : {"hp = 3.0", "owner = 18446744073709551615", "big < x", "pos.b >= tag",
                           "id > hp", "name ^= \"\"", "name ~ \"toolongforthefield\"", "x = 0.1"}) {
    INFO(text);
    CHECK(message_of(text, s).empty());
  }
}

TEST_CASE("query parameters: limits and combinations", "[query]") {
  auto bad = [](json p) { return query_spec_from_json(p, {"table"}, false).message(); };
  CHECK_THAT(bad({{"limit", 0}}), Catch::Contains("limit must be 1..10000, it is 0"));
  CHECK_THAT(bad({{"limit", 10001}}), Catch::Contains("limit must be 1..10000"));
  CHECK_THAT(bad({{"limit", -1}}), Catch::Contains("'limit' must be a non-negative integer"));
  CHECK_THAT(bad({{"offset", 100001}}), Catch::Contains("offset must be at most 100000"));
  CHECK_THAT(bad({{"after", 1}, {"offset", 1}}),
             Catch::Contains("give one of 'after', 'offset' and 'cursor'"));
  CHECK_THAT(bad({{"after", 1}, {"order", "-hp"}}),
             Catch::Contains("'after' pages in id order only"));
  CHECK_THAT(bad({{"order", "a,b,c,d,e"}}), Catch::Contains("order: at most 4 fields"));
  CHECK_THAT(bad({{"order", "a,,b"}}), Catch::Contains("order: an empty field name"));
  CHECK_THAT(bad({{"order", "-"}}), Catch::Contains("order: an empty field name"));
  CHECK_THAT(bad({{"select", json::array()}}), Catch::Contains("select: expected a string"));
  CHECK_THAT(bad({{"count", "some"}}), Catch::Contains("count: expected \"exact\" or \"none\""));
  CHECK_THAT(bad({{"explain", "yes"}}), Catch::Contains("explain: expected true or false"));
  CHECK_THAT(bad({{"cursor", ""}}), Catch::Contains("cursor: expected the next_cursor"));
  CHECK_THAT(bad({{"colour", 1}}), Catch::Contains("unknown parameter 'colour'"));
  CHECK_THAT(bad({{"filter", 3}}), Catch::Contains("filter: expected a string"));
  CHECK_THAT(bad({{"filter", std::string(65537, ' ')}}),
             Catch::Contains("filter: longer than 65536 bytes"));
  CHECK_THAT(
      query_spec_from_json({{"filter", "a = " + std::string(4100, '1')}}, {}, true).message(),
      Catch::Contains("filter: longer than 4096 bytes"));
  CHECK(
      query_spec_from_json({{"table", "m"}, {"order", "-id"}, {"offset", 100000}}, {"table"}, false)
          .is_ok());

  auto db = mixed_db();
  const TableVersion& t = *db->table("m");
  auto run_msg = [&](json p) {
    auto q = query_spec_from_json(p, {}, false);
    if (!q) return q.message();
    auto page = run_query(t, *q);
    return page ? std::string() : page.message();
  };
  CHECK_THAT(run_msg({{"order", "-nope"}}), Catch::Contains("order: field 'nope' does not exist"));
  CHECK_THAT(run_msg({{"order", "pos"}}), Catch::Contains("order: field 'pos' is a composite"));
  CHECK_THAT(run_msg({{"select", "hp,nope"}}),
             Catch::Contains("select: field 'nope' does not exist"));
  CHECK_THAT(run_msg({{"cursor", "!!!"}}), Catch::Contains("cursor: not a cursor of this query"));
  CHECK_THAT(run_msg({{"cursor", "AQ"}}), Catch::Contains("cursor: not a cursor of this query"));
}

TEST_CASE("differential: random queries against a brute-force model", "[query]") {
  Gen g;
  auto db = mixed_db();
  std::vector<std::uint64_t> ids;
  auto mutate = [&](int n) {
    db = commit(db, [&](Transaction& txn) {
      for (int i = 0; i < n; ++i) {
        int r = static_cast<int>(g.pick(10));
        if (r < 6 || ids.empty()) {
          ids.push_back(ok(insert_json(txn, "m", g.record())));
        } else if (r < 8) {
          ok(update_json(txn, "m", ids[g.pick(ids.size())], g.record()));
        } else {
          std::size_t k = g.pick(ids.size());
          ok(txn.erase("m", ids[k]));
          ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(k));
        }
      }
    });
  };
  std::size_t queries = 0, pages = 0, nonempty = 0, indexed = 0, early = 0;
  int next_index = 0;
  // Random indexes come and go: the planner may use them, the answers must not change.
  auto reindex = [&]() {
    db = commit(db, [&](Transaction& txn) {
      const auto& have = txn.table("m")->indexes();
      if (!have.empty() && g.coin(30)) {
        ok(txn.drop_index("m", have[g.pick(have.size())].name()));
        return;
      }
      IndexDef d;
      d.name = "ix" + std::to_string(next_index++);
      d.type = g.coin(30) ? IndexType::hash : IndexType::ordered;
      for (std::size_t i = 0, n = 1 + g.pick(3); i < n; ++i) {
        std::string f = kFields[1 + g.pick(kFields.size() - 1)].path;
        if (std::find(d.fields.begin(), d.fields.end(), f) == d.fields.end()) d.fields.push_back(f);
      }
      ok(txn.create_index("m", d));
    });
  };
  for (int round = 0; round < 40; ++round) {
    mutate(round < 5 ? 60 : 25);
    if (round % 2 == 1) reindex();
    const TableVersion& t = *db->table("m");
    std::vector<json> all;
    for (RecordView r : t) all.push_back(record_to_json(r));
    for (int qi = 0; qi < 60; ++qi) {
      ++queries;
      json fj = g.coin(85) ? g.filter(3) : json();
      QuerySpec q;
      if (!fj.is_null()) q.filter = ok(parse_filter_json(fj));
      q.order = g.order();
      q.select = g.select();
      q.limit = 1 + g.pick(7);
      q.count = g.coin() ? QuerySpec::Count::exact : QuerySpec::Count::automatic;
      INFO("filter " << fj.dump() << " order " << order_text(q.order) << " limit " << q.limit);
      // The model's answer.
      std::vector<json> want;
      for (const auto& r : all)
        if (fj.is_null() || model_match(fj, r)) want.push_back(r);
      std::sort(want.begin(), want.end(),
                [&](const json& a, const json& b) { return model_cmp(q.order, a, b) < 0; });
      nonempty += !want.empty();
      // Both evaluators of the compiled filter agree with the model.
      if (q.filter) {
        auto cf = ok(CompiledFilter::compile(*q.filter, *t.schema()));
        std::string first_wrong;  // per record: the compiled filter against the model
        for (RecordView r : t) {
          json rj = record_to_json(r);
          if (cf.match(r.data(), r.id()) != model_match(fj, rj) && first_wrong.empty())
            first_wrong = rj.dump();
        }
        REQUIRE(first_wrong == "");
        REQUIRE(cf.count(t) == want.size());
        // The canonical text form compiles to the same answer.
        auto again = ok(CompiledFilter::compile(ok(parse_filter_text(filter_to_string(*q.filter))),
                                                *t.schema()));
        REQUIRE(again.count(t) == want.size());
      }
      // Page through with the cursor.
      std::vector<json> got;
      QuerySpec pq = q;
      for (int guard = 0; guard < 1000; ++guard) {
        auto page = ok(run_query(t, pq));
        ++pages;
        indexed += !page.index.empty();
        early += !page.index.empty() && page.scanned < t.count() / 2 && want.size() > q.limit * 2;
        json j = query_page_to_json(page, pq, *t.schema());
        if (q.count == QuerySpec::Count::exact || !q.filter)
          REQUIRE(j["total"] == want.size());
        else
          REQUIRE(j["total"].is_null());
        for (const auto& r : j["records"]) got.push_back(r);
        if (j["next_cursor"].is_null()) {
          REQUIRE(j["next_after"].is_null());
          break;
        }
        REQUIRE(j["records"].size() == q.limit);  // every page but the last is full
        const bool id_order =
            q.order.empty() || (q.order[0].path == "id" && !q.order[0].desc && q.order.size() == 1);
        REQUIRE(j["next_after"].is_null() != id_order);
        pq.cursor = j["next_cursor"].get<std::string>();
      }
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i)
        if (got[i] != project(want[i], q.select)) REQUIRE(got[i] == project(want[i], q.select));
      // One page at an offset.
      QuerySpec oq = q;
      oq.offset = g.pick(want.size() + 2);
      auto page = ok(run_query(t, oq));
      for (std::size_t i = 0; i < page.records.size(); ++i)
        if (record_to_json(page.records[i]) != want[*oq.offset + i])
          REQUIRE(record_to_json(page.records[i]) == want[*oq.offset + i]);
      REQUIRE(page.records.size() ==
              std::min<std::size_t>(q.limit,
                                    want.size() - std::min<std::size_t>(want.size(), *oq.offset)));
    }
  }
  // The random queries were not all trivially empty, and the planner took indexes (some of
  // them stopping early) for a good share of the pages.
  CHECK(nonempty > queries / 3);
  CHECK(indexed > pages / 10);
  CHECK(early > 0);
  // Every index is still in step with the records.
  ok(check_indexes(*db->table("m")));
  CHECK(pages > queries);
}

TEST_CASE("cursor pages stay exact while the table changes between pages", "[query]") {
  auto db = mixed_db();
  db = commit(db, [&](Transaction& txn) {
    for (int i = 0; i < 30; ++i) ok(insert_json(txn, "m", {{"hp", i % 7}, {"name", "n"}}));
  });
  QuerySpec q = ok(query_spec_from_json({{"order", "-hp"}, {"limit", 10}}, {}, false));
  auto p1 = ok(run_query(*db->table("m"), q));
  REQUIRE(p1.next_cursor);
  // Records before the cursor change; the next page starts right after the last one seen.
  json last = record_to_json(p1.records.back());
  db = commit(db, [&](Transaction& txn) {
    ok(txn.erase("m", p1.records.front().id()));
    ok(insert_json(txn, "m", {{"hp", 100}}));
  });
  q.cursor = *p1.next_cursor;
  auto p2 = ok(run_query(*db->table("m"), q));
  REQUIRE(!p2.records.empty());
  json first = record_to_json(p2.records.front());
  CHECK(model_cmp({{"hp", true}}, last, first) < 0);
  // A cursor of another query is refused.
  QuerySpec other = ok(query_spec_from_json({{"order", "hp"}, {"limit", 10}}, {}, false));
  other.cursor = *p1.next_cursor;
  CHECK_THAT(run_query(*db->table("m"), other).message(),
             Catch::Contains("cursor: it belongs to another"));
}

TEST_CASE("the planner picks an index for =, in, ranges, prefixes and a served order", "[query]") {
  auto db = mixed_db();
  db = commit(db, [&](Transaction& txn) {
    for (int i = 0; i < 1000; ++i)
      ok(insert_json(txn, "m",
                     {{"hp", i % 100},
                      {"tag", i % 5},
                      {"name", "n" + std::to_string(i % 300)},
                      {"owner", i}}));
    ok(txn.create_index("m", IndexDef{"m_owner", {"owner"}, IndexType::hash, true, false}));
    ok(txn.create_index("m",
                        IndexDef{"m_tag_hp", {"tag", "hp"}, IndexType::ordered, false, false}));
    ok(txn.create_index("m", IndexDef{"m_name", {"name"}, IndexType::ordered, false, false}));
  });
  const TableVersion& t = *db->table("m");
  struct Case {
    json params;
    std::string index;
    std::uint64_t max_scanned;
    std::size_t count;
  };
  const std::vector<Case> cases = {
      {{{"filter", "owner = 77"}}, "m_owner", 1, 1},
      {{{"filter", "owner in (1, 2, 3, 5000)"}}, "m_owner", 3, 3},
      {{{"filter", "tag = 3 && hp >= 10 && hp < 20"}, {"limit", 1000}}, "m_tag_hp", 20, 20},
      {{{"filter", "tag = 3 && hp > 90"}, {"order", "-hp"}, {"limit", 3}}, "m_tag_hp", 11, 3},
      {{{"filter", "tag in (1, 2) && hp = 7"}, {"limit", 1000}}, "m_tag_hp", 10, 10},
      {{{"filter", "name ^= \"n29\""}, {"limit", 1000}}, "m_name", 34, 34},
      {{{"order", "name"}, {"limit", 5}}, "m_name", 10, 5},
      {{{"order", "-name"}, {"limit", 5}}, "m_name", 10, 5},
      {{{"filter", "tag = 4"}, {"order", "hp"}, {"limit", 2}}, "m_tag_hp", 12, 2},
      {{{"filter", "hp = 3"}, {"limit", 1000}}, "", 1000, 10},  // hp is not a leading field
      {{{"filter", "id >= 500 && id < 510 && hp >= 0"}, {"limit", 1000}},
       "",
       10,
       10},  // the id walk's bounds
      {{{"filter", "id < 20 && tag = 1"}, {"order", "-id"}, {"limit", 2}}, "", 13, 2},
      {{{"filter", "id in (7, 9) && hp < 100"}}, "", 3, 2},
      {{{"filter", "id > 18446744073709551615"}}, "", 0, 0},
      {{{"filter", "owner = 5 || tag = 1"}, {"limit", 1000}}, "", 1000, 201},  // || is not served
  };
  for (const auto& c : cases) {
    INFO(c.params.dump());
    auto q = ok(query_spec_from_json(c.params, {}, false));
    auto page = ok(run_query(t, q));
    CHECK(page.index == c.index);
    CHECK(page.scanned <= c.max_scanned);
    CHECK(page.records.size() == c.count);
    // The same answer without indexes.
    auto bare = commit(db, [&](Transaction& txn) {
      for (const char* ix : {"m_owner", "m_tag_hp", "m_name"}) ok(txn.drop_index("m", ix));
    });
    auto scan = ok(run_query(*bare->table("m"), q));
    REQUIRE(scan.records.size() == page.records.size());
    for (std::size_t i = 0; i < scan.records.size(); ++i)
      CHECK(scan.records[i].id() == page.records[i].id());
    CHECK(scan.index.empty());
  }
}

TEST_CASE("a hash lookup of a value held by many records pages through all of them", "[query]") {
  // 40 ids for owner 7: more than one batch of the walk's prefetch (16), with records
  // deleted and records the rest of the filter rejects among them.
  auto db = mixed_db();
  db = commit(db, [&](Transaction& txn) {
    for (int i = 0; i < 200; ++i)
      ok(insert_json(txn, "m", {{"hp", i}, {"owner", i % 5 == 0 ? 7 : 1000 + i}}));
    ok(txn.create_index("m", IndexDef{"m_owner", {"owner"}, IndexType::hash, false, false}));
  });
  db = commit(db, [&](Transaction& txn) {
    for (std::uint64_t id : {1, 51, 196}) ok(txn.erase("m", id));
  });
  const TableVersion& t = *db->table("m");
  std::vector<std::uint64_t> want;  // owner 7, alive, hp not in [100, 120)
  for (std::uint64_t id = 1; id <= 200; ++id)
    if ((id - 1) % 5 == 0 && id != 1 && id != 51 && id != 196 && !(id > 100 && id <= 120))
      want.push_back(id);
  for (std::uint64_t limit : {1, 5, 16, 17, 100}) {
    auto q = query_spec_from_json(
        {{"filter", "owner = 7 && !(hp >= 100 && hp < 120)"}, {"limit", limit}, {"count", "exact"}},
        {}, false);
    REQUIRE(q);
    auto page = run_query(t, *q);
    REQUIRE(page);
    CHECK(page->index == "m_owner");
    std::vector<std::uint64_t> got;
    for (const auto& r : page->records) got.push_back(r.id());
    const std::vector<std::uint64_t> first(
        want.begin(), want.begin() + std::min<std::size_t>(limit, want.size()));
    CHECK(got == first);
    CHECK(page->total == want.size());
  }
}
