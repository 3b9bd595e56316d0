// The pure pieces of tickdb-cli: the prompt's shell-like splitting, the NAME:TYPE field
// spec, CSV quoting and reading, cells converted by a schema's types, terminal widths, and a
// live subscription's model under repeated deltas.
#include <catch2/catch.hpp>
#include <sstream>

#include "tools/cli/csv.h"
#include "tools/cli/exit_codes.h"
#include "tools/cli/field_spec.h"
#include "tools/cli/live_model.h"
#include "tools/cli/record_shape.h"
#include "tools/cli/shell_words.h"
#include "tools/cli/table_printer.h"

using namespace tickdb::cli;

using Words = std::vector<std::string>;

TEST_CASE("shell words: quotes, escapes and comments split as a POSIX shell would", "[cli]") {
  CHECK(split_shell_words("  get  players 7 ").words == Words{"get", "players", "7"});
  CHECK(split_shell_words(R"(insert t '{"name": "a b"}')").words ==
        Words{"insert", "t", R"({"name": "a b"})"});
  CHECK(split_shell_words(R"(x "a \"q\" \\ \n" y)").words == Words{"x", R"(a "q" \ \n)", "y"});
  CHECK(split_shell_words(R"(a\ b c'd'"e")").words == Words{"a b", "cde"});
  CHECK(split_shell_words("a '' b").words == Words{"a", "", "b"});
  CHECK(split_shell_words("list t # a comment").words == Words{"list", "t"});
  CHECK(split_shell_words("a#b").words == Words{"a#b"});
  CHECK(split_shell_words("").words.empty());
  CHECK(split_shell_words("a 'open").error == "unterminated single quote");
  CHECK(split_shell_words("a \"open").error == "unterminated double quote");
}

TEST_CASE("field spec: hp:i32, name:str16, a composite and a default", "[cli]") {
  CHECK(parse_field_spec("hp:i32") == json{{"name", "hp"}, {"type", "i32"}});
  CHECK(parse_field_spec("name:str16") == json{{"name", "name"}, {"type", "str"}, {"size", 16}});
  CHECK(parse_field_spec("pos:vec3") == json{{"name", "pos"}, {"type", "vec3"}});
  CHECK(parse_field_spec("hp:i32=100") == json{{"name", "hp"}, {"type", "i32"}, {"default", 100}});
  CHECK(parse_field_spec("tag:str4=red") ==
        json{{"name", "tag"}, {"type", "str"}, {"size", 4}, {"default", "red"}});
  CHECK(parse_field_spec("s:str4096")["size"] == 4096);
  for (const char* bad : {"hp", "hp:", ":i32", "1hp:i32", "s:str", "s:str0", "s:str4097",
                          "s:str99999", "h-p:i32", "hp:i-32"}) {
    INFO(bad);
    try {
      parse_field_spec(bad);
      FAIL("accepted");
    } catch (const CliError& e) {
      CHECK(e.code() == kExitUsage);
    }
  }
}

TEST_CASE("csv: fields are quoted exactly when they must be and read back", "[cli]") {
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
  CHECK(csv_field(" pad") == "\" pad\"");
  CHECK(csv_field("") == "");
  const Words row{"1", "a,b", "say \"hi\"", "two\nlines", "", " pad ", "日本"};
  std::istringstream in("h1,h2\n" + csv_row(row) + "\r\nlast,\n");
  CsvReader r(in);
  Words got;
  REQUIRE(r.next(got));
  CHECK(got == Words{"h1", "h2"});
  REQUIRE(r.next(got));
  CHECK(got == row);
  CHECK(r.line() == 2);
  REQUIRE(r.next(got));  // the empty line is skipped; "last," ends with an empty field
  CHECK(got == Words{"last", ""});
  CHECK(r.line() == 5);  // the quoted newline made record 2 two lines long
  CHECK_FALSE(r.next(got));
  CHECK(r.error().empty());

  std::istringstream bad("a,\"open\nstill open");
  CsvReader rb(bad);
  CHECK_FALSE(rb.next(got));
  CHECK(rb.error() == "unterminated quoted field");
  std::istringstream bad2("a,b\"c\n");
  CsvReader rb2(bad2);
  CHECK_FALSE(rb2.next(got));
  CHECK_FALSE(rb2.error().empty());
}

TEST_CASE("record shape: leaves of composites, cells converted exactly by type", "[cli]") {
  const json types = json::parse(R"([{"name":"vec2","fields":[{"name":"x","type":"f32"},
      {"name":"y","type":"f64"}]}])");
  const json table = json::parse(R"({"name":"t","fields":[{"name":"big","type":"u64"},
      {"name":"pos","type":"vec2"},{"name":"name","type":"str","size":4},
      {"name":"ok","type":"bool"},{"name":"n","type":"i8"}]})");
  const RecordShape shape(table, types);
  CHECK(shape.header() == Words{"id", "big", "pos.x", "pos.y", "name", "ok", "n"});
  const json rec = json::parse(
      R"({"id":3,"big":18446744073709551615,"pos":{"x":0.1,"y":1e-300},"name":"ab","ok":true,"n":-128})");
  const auto cells = shape.to_cells(rec);
  CHECK(cells == Words{"3", "18446744073709551615", "0.1", "1e-300", "ab", "true", "-128"});
  const auto cols = shape.columns_of(shape.header());
  CHECK(shape.from_cells(cols, cells) == rec);
  CHECK_NOTHROW(shape.check(rec));

  CHECK_THROWS_WITH(
      shape.from_cells(cols, Words{"1", "18446744073709551616", "0", "0", "", "", "0"}),
      Catch::Contains("big"));
  CHECK_THROWS_WITH(shape.from_cells(cols, Words{"1", "1", "0", "0", "abcde", "", "0"}),
                    Catch::Contains("longer than 4"));
  CHECK_THROWS_WITH(shape.from_cells(cols, Words{"1", "1", "0", "0", "", "", "128"}),
                    Catch::Contains("'n'"));
  CHECK_THROWS_WITH(shape.from_cells(cols, Words{"1", "1", "nan", "0", "", "", "0"}),
                    Catch::Contains("pos.x"));
  CHECK_THROWS_WITH(shape.from_cells(cols, Words{"1"}), Catch::Contains("header has 7"));
  CHECK_THROWS_WITH(shape.columns_of(Words{"hp"}), Catch::Contains("unknown column 'hp'"));
  CHECK_THROWS_WITH(shape.check(json::parse(R"({"pos":{"z":1}})")),
                    Catch::Contains("unknown field 'pos.z'"));
  CHECK_THROWS_WITH(shape.check(json::parse(R"({"n":1.5})")), Catch::Contains("integer"));
  CHECK_THROWS_WITH(shape.check(json::parse(R"({"n":-129})")), Catch::Contains("range"));
  CHECK_THROWS_WITH(shape.check(json::parse(R"({"ok":1})")), Catch::Contains("true or false"));
  CHECK_THROWS_WITH(shape.check(json::parse("[1]")), Catch::Contains("object"));
}

TEST_CASE("table printer: widths are terminal columns, numbers right-aligned", "[cli]") {
  CHECK(display_width("abc") == 3);
  CHECK(display_width("bé") == 2);
  CHECK(display_width("日本") == 4);
  std::ostringstream out;
  print_table(out, {"id", "name"}, {{"1", "日本"}, {"10", "ab"}});
  CHECK(out.str() == "id  name\n--  ----\n 1  日本\n10  ab\n");
}

TEST_CASE("live model: deltas are upserts and removals, a repeated delta is harmless", "[cli]") {
  LiveModel m;
  m.add_rows(json::parse(R"([{"id":1,"hp":1},{"id":2,"hp":2}])"));
  const json d = json::parse(R"({"ins":[{"id":3,"hp":3}],"upd":[{"id":1,"hp":9}],"del":[2]})");
  CHECK(m.apply(d) == 3);
  CHECK(m.apply(d) == 3);
  CHECK(m.to_json() == json::parse(R"([{"id":1,"hp":9},{"id":3,"hp":3}])"));
  m.apply(json::parse(R"({"out":[1]})"));
  CHECK(m.rows().size() == 1);
}
