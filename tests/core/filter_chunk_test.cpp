// The chunk evaluator of compiled filters (the tight loops per type and comparison, and how
// && and || combine into the mask) must give, slot for slot, what the per-record evaluator
// gives, for every numeric type and comparison, at the edges of each type (sign bits,
// extremes, -0, denormals), in chunks with deleted records and in a partial last chunk.
#include <catch2/catch.hpp>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/filter.h"
#include "core/table.h"
#include "test_db.h"

using namespace tickdb;
using namespace tickdb::test;

namespace {

struct Col {
  const char* name;
  const char* type;
  std::vector<double> floats;     // f32/f64 columns
  std::vector<std::string> ints;  // every other column, as literal text
};

template <class T>
std::vector<std::string> int_edges() {
  using L = std::numeric_limits<T>;
  std::vector<std::string> v = {std::to_string(L::min()),
                                std::to_string(L::max()),
                                "0",
                                "1",
                                std::to_string(static_cast<T>(L::max() / 2)),
                                std::to_string(static_cast<T>(L::max() / 2 + 1))};
  if constexpr (std::is_signed_v<T>) {
    v.push_back("-1");
    v.push_back(std::to_string(static_cast<T>(L::min() / 2)));
  }
  return v;
}

std::string float_text(double d) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", d);
  return b;
}

}  // namespace

TEST_CASE("filter chunk loops agree with the per-record evaluator", "[query][filter-chunk]") {
  std::vector<Col> cols = {
      {"a8", "i8", {}, int_edges<std::int8_t>()},
      {"a16", "i16", {}, int_edges<std::int16_t>()},
      {"a32", "i32", {}, int_edges<std::int32_t>()},
      {"a64", "i64", {}, int_edges<std::int64_t>()},
      {"b8", "u8", {}, int_edges<std::uint8_t>()},
      {"b16", "u16", {}, int_edges<std::uint16_t>()},
      {"b32", "u32", {}, int_edges<std::uint32_t>()},
      {"b64", "u64", {}, int_edges<std::uint64_t>()},
      // Records hold finite floats only (an insert refuses NaN and infinities).
      {"f", "f32", {0.0, -0.0, 1.5, -1.5, 3.4e38, -3.4e38, 1e-40, 0.1}, {}},
      {"d", "f64", {0.0, -0.0, 1.5, -1.5, 1.7e308, -1.7e308, 5e-324, 0.1}, {}},
      {"ok", "bool", {}, {"false", "true"}},
  };
  std::mt19937_64 rng(7);
  std::vector<std::uint64_t> ids;
  auto db = commit(DbVersion::empty(), [&](Transaction& t) {
    std::vector<FieldSpec> fields;
    for (const Col& c : cols) fields.emplace_back(c.name, c.type);
    ok(t.create_table("k", fields));
    const TableSchema& s = *t.table("k")->schema();
    // Four chunks and a partial fifth of a record count that is no multiple of 8.
    const std::uint32_t n = t.table("k")->records_per_chunk() * 4 + 13;
    for (std::uint32_t r = 0; r < n; ++r) {
      json rec = json::object();
      for (const Col& c : cols) {
        if (!c.floats.empty()) {
          rec[c.name] = c.floats[rng() % c.floats.size()];
        } else {
          rec[c.name] = json::parse(c.ints[rng() % c.ints.size()]);
        }
      }
      RecordBuffer buf(s);
      ok(record_from_json(s, rec, buf.data()));
      ids.push_back(ok(t.insert("k", buf.bytes())));
    }
    // Holes: chunks with an alive mask.
    for (std::size_t k = 0; k < ids.size(); k += 7) ok(t.erase("k", ids[k]));
  });
  const TableVersion& t = *db->table("k");

  const char* ops[] = {"=", "!=", "<", "<=", ">", ">="};
  std::vector<std::uint8_t> mask(t.records_per_chunk()), scratch;
  std::size_t checked = 0;
  auto check_filter = [&](const std::string& text) {
    INFO(text);
    auto cf = ok(CompiledFilter::compile(ok(parse_filter_text(text)), *t.schema()));
    std::uint64_t n = 0;
    for (ChunkSpan c : t.chunks()) {
      cf.match_chunk(c, mask.data(), scratch);
      for (std::uint32_t i = 0; i < c.count; ++i) {
        const bool live = !c.alive || c.alive[i];
        const bool want = live && cf.match(c.records + std::size_t{i} * c.record_size, c.ids[i]);
        if (mask[i] != static_cast<std::uint8_t>(want)) {
          INFO("slot " << i << " of a chunk, id " << c.ids[i]);
          REQUIRE(int{mask[i]} == int{want});
        }
        n += want;
      }
    }
    CHECK(cf.count(t) == n);
    ++checked;
  };
  for (const Col& c : cols) {
    std::vector<std::string> lits = c.ints;
    for (double d : c.floats) lits.push_back(float_text(d));
    const bool is_bool = std::string(c.type) == "bool";
    for (const char* op : ops)
      for (const std::string& lit : lits) {
        if (is_bool && op[0] != '=' && op[0] != '!') continue;  // bools: = and != only
        const std::string leaf = std::string(c.name) + " " + op + " " + lit;
        check_filter(leaf);                 // written into the mask
        check_filter("id > 0 && " + leaf);  // and-ed into it (the first operand keeps all)
        check_filter("id = 0 || " + leaf);  // or-ed into it
        check_filter("!(" + leaf + ")");
      }
  }
  for (const char* op : ops)
    check_filter(std::string("id ") + op + " " + std::to_string(ids[ids.size() / 2]));
  CHECK(checked > 1000);
}
