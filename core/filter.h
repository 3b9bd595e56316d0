// Filters: the `filter` parameter of queries (API.md, Queries). Both forms, the text grammar
// (`hp < 50 && team in ("red", "blue")`) and the JSON array tree
// (`["&&", ["<", "hp", 50], ["in", "team", ["red", "blue"]]]`), parse into one FilterExpr.
// CompiledFilter checks a FilterExpr against a table's schema (fields exist, types fit,
// literals in range) and turns it into a small program over (offset, type) pairs that runs
// over packed records with memcpy loads: no JSON per record (DESIGN.md, Queries and indexes).
//
// Every error is invalid_argument and says where: "filter: unknown field 'hpp' at 1:1" (line and
// column, in bytes, of the text form) or "... at /2/1" (a JSON pointer into the array form).
//
// Thread-safety: FilterExpr and CompiledFilter are values; a CompiledFilter is immutable once
// compiled and may be run from many threads at once (match_chunk takes its scratch memory
// from the caller).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/schema.h"

namespace tickdb {

struct ChunkSpan;
class TableVersion;

// Limits of API.md (Queries).
inline constexpr std::size_t kFilterMaxUrlBytes = 4 * 1024;
inline constexpr std::size_t kFilterMaxBodyBytes = 64 * 1024;
inline constexpr std::size_t kFilterMaxLeaves = 64;
inline constexpr std::size_t kFilterMaxDepth = 16;
inline constexpr std::size_t kFilterMaxInValues = 1000;

struct FilterExpr {
  enum class Kind : std::uint8_t { all_of, any_of, negate, compare, in };
  enum class Op : std::uint8_t { eq, ne, lt, le, gt, ge, prefix, contains };
  Kind kind = Kind::compare;
  Op op = Op::eq;
  std::string path;                    // compare, in: the field on the left ("id", "pos.x")
  nlohmann::json value;                // compare: the literal, unless rhs_path is set
  std::string rhs_path;                // compare: the field on the right (field to field)
  std::vector<nlohmann::json> values;  // in: the literals
  std::vector<FilterExpr> kids;        // all_of, any_of (2 or more), negate (1)
  std::string where;                   // where it was written: "1:5" or "/2/1"
};

std::string_view filter_op_text(FilterExpr::Op op);

// The text form. invalid_argument with the position for a syntax error or a limit.
Result<FilterExpr> parse_filter_text(std::string_view text);
// The JSON array form.
Result<FilterExpr> parse_filter_json(const nlohmann::json& j);
// Either form: a JSON string holds the text form, an array is the JSON form.
Result<FilterExpr> parse_filter(const nlohmann::json& j);
// One canonical text of a filter (the text form, fully parenthesized): two filters that parse
// to the same tree print the same, whatever form or spacing they were written in.
std::string filter_to_string(const FilterExpr& f);

class CompiledFilter {
 public:
  // Type-checks `f` against `schema` and compiles it. invalid_argument with the position.
  static Result<CompiledFilter> compile(const FilterExpr& f, const TableSchema& schema);

  // True when the record (record_size bytes of the schema it was compiled for) matches.
  bool match(const std::byte* record, std::uint64_t id) const;
  // out[i] = 1 when slot i of the chunk is live and matches, else 0, for i < c.count.
  // `scratch` is the caller's: resized as needed, reused across calls.
  void match_chunk(const ChunkSpan& c, std::uint8_t* out, std::vector<std::uint8_t>& scratch) const;
  // Records of `t` (of the schema this was compiled for) that match.
  std::uint64_t count(const TableVersion& t) const;

  // One instruction. Literals are stored in the left field's domain: i for signed integer
  // fields, u for unsigned ones and id, d for floats (an f32 literal already rounded to f32),
  // s for strings; `in` keeps its literals sorted in the matching vector.
  struct Node {
    enum class Code : std::uint8_t {
      all_of,
      any_of,
      negate,
      always,
      never,
      cmp_lit,
      cmp_field,
      in_set
    };
    Code code = Code::never;
    FilterExpr::Op op = FilterExpr::Op::eq;
    Kind kind = Kind::U64;  // the left side's kind
    bool is_id = false;     // the left side is the record id
    std::uint32_t offset = 0, size = 0;
    Kind rkind = Kind::U64;  // cmp_field: the right side
    bool r_is_id = false;
    std::uint32_t roffset = 0, rsize = 0;
    std::int64_t i = 0;
    std::uint64_t u = 0;
    double d = 0;
    std::string s;
    std::vector<std::int64_t> iset;
    std::vector<std::uint64_t> uset;
    std::vector<double> dset;
    std::vector<std::string> sset;
    std::vector<std::uint32_t> kids;
  };

  // The program (for the planner): nodes()[0] is the root.
  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  std::vector<Node> nodes_;  // nodes_[0] is the root; kids come after their parent
  std::size_t depth_ = 0;
};

}  // namespace tickdb
