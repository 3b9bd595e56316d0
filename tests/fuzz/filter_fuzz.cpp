// Fuzz target, differential: the filter parsers and compiler (core/filter.h) against a
// brute-force evaluator that walks the parsed FilterExpr tree per record.
//
// Input: a filter, in the text form, or JSON (a string holding the text form, or the array
// form). A parsed filter must print (filter_to_string) a canonical text that parses to the
// same canonical text. A filter that compiles against the fixed table must give, for every
// record of a fixed set of edge values, what the brute-force evaluator gives: through match(),
// match_chunk() and count() alike.
//
// The evaluator follows API.md (Queries) literally: a literal is converted to the left field's
// type (integers exactly, floats rounded to the field's precision), numbers compare by exact
// value whatever their types, -0.0 = 0.0, strings compare as bytes.
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "core/filter.h"
#include "core/table.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tickdb;
using Op = FilterExpr::Op;

namespace {

// A value as the evaluator sees it: a signed or unsigned integer, a double, a string, a bool.
struct Val {
  enum class K { i, u, d, s, b } k = K::i;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double d = 0;
  std::string s;
  bool b = false;
  bool numeric() const { return k == K::i || k == K::u || k == K::d; }
};

template <class T>
T load_at(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Val load_value(const FieldLoc& loc, const std::byte* rec) {
  const std::byte* p = rec + loc.offset;
  Val v;
  switch (loc.type.kind) {
    case Kind::Bool:
      v.k = Val::K::b;
      v.b = std::to_integer<unsigned>(*p) != 0;
      break;
    case Kind::I8:
      v.i = load_at<std::int8_t>(p);
      break;
    case Kind::I16:
      v.i = load_at<std::int16_t>(p);
      break;
    case Kind::I32:
      v.i = load_at<std::int32_t>(p);
      break;
    case Kind::I64:
      v.i = load_at<std::int64_t>(p);
      break;
    case Kind::U8:
      v.k = Val::K::u;
      v.u = load_at<std::uint8_t>(p);
      break;
    case Kind::U16:
      v.k = Val::K::u;
      v.u = load_at<std::uint16_t>(p);
      break;
    case Kind::U32:
      v.k = Val::K::u;
      v.u = load_at<std::uint32_t>(p);
      break;
    case Kind::U64:
      v.k = Val::K::u;
      v.u = load_at<std::uint64_t>(p);
      break;
    case Kind::F32:
      v.k = Val::K::d;
      v.d = load_at<float>(p);
      break;
    case Kind::F64:
      v.k = Val::K::d;
      v.d = load_at<double>(p);
      break;
    case Kind::Str: {
      v.k = Val::K::s;
      std::string_view sv(reinterpret_cast<const char*>(p), loc.type.size);
      v.s = std::string(sv.substr(0, sv.find('\0')));
      break;
    }
    case Kind::Composite:
      fuzz::fail("a composite compared whole compiled");
  }
  return v;
}

// The left side of a comparison: the field's value and its kind.
struct Side {
  Val v;
  Kind kind = Kind::U64;
};

Side load_path(const std::string& path, const std::byte* rec, std::uint64_t id) {
  Side s;
  if (path == "id") {
    s.v.k = Val::K::u;
    s.v.u = id;
    return s;
  }
  auto loc = fuzz::fixed_schema().locate(path);
  if (!loc) fuzz::fail("compiled a filter over an unknown path " + path);
  s.kind = loc->type.kind;
  s.v = load_value(*loc, rec);
  return s;
}

// Rounds a double to f32 without the undefined behaviour of casting one out of range.
double round_f32(double d) {
  if (std::isnan(d)) return d;
  if (d > std::numeric_limits<float>::max() || d < -std::numeric_limits<float>::max()) {
    // Beyond the largest float: rounds to it or to infinity (round to nearest, ties to even).
    const double limit = 0x1.ffffffp127;  // max float + half an ulp
    if (std::fabs(d) >= limit) return d > 0 ? INFINITY : -INFINITY;
    return d > 0 ? std::numeric_limits<float>::max() : -std::numeric_limits<float>::max();
  }
  return static_cast<double>(static_cast<float>(d));
}

// A literal in the domain of the left field (`kind`).
Val literal(const nlohmann::json& j, Kind kind, bool is_id) {
  Val v;
  if (j.is_boolean()) {
    v.k = Val::K::b;
    v.b = j.get<bool>();
  } else if (j.is_string()) {
    v.k = Val::K::s;
    v.s = j.get<std::string>();
  } else if (j.is_number_unsigned()) {
    v.k = Val::K::u;
    v.u = j.get<std::uint64_t>();
  } else if (j.is_number_integer()) {
    v.i = j.get<std::int64_t>();
  } else if (j.is_number_float()) {
    v.k = Val::K::d;
    v.d = j.get<double>();
  } else {
    fuzz::fail("compiled a literal that is none of bool, number, string: " + j.dump());
  }
  if (!is_id && (kind == Kind::F32 || kind == Kind::F64) && v.numeric()) {
    double d = v.k == Val::K::i   ? static_cast<double>(v.i)
               : v.k == Val::K::u ? static_cast<double>(v.u)
                                  : v.d;
    v = Val{};
    v.k = Val::K::d;
    v.d = kind == Kind::F32 ? round_f32(d) : d;
  }
  return v;
}

// <0, 0, >0: exact comparison of two numbers of any kinds.
int cmp_num(const Val& a, const Val& b);
int cmp_int_double(std::int64_t i, double d) {
  if (d < -0x1p63) return 1;
  if (d >= 0x1p63) return -1;
  double t = std::trunc(d);
  auto ti = static_cast<std::int64_t>(t);
  if (i != ti) return i < ti ? -1 : 1;
  return d > t ? -1 : d < t ? 1 : 0;
}
int cmp_uint_double(std::uint64_t u, double d) {
  if (d < 0) return 1;
  if (d >= 0x1p64) return -1;
  double t = std::trunc(d);
  auto tu = static_cast<std::uint64_t>(t);
  if (u != tu) return u < tu ? -1 : 1;
  return d > t ? -1 : 0;
}
int cmp_num(const Val& a, const Val& b) {
  using K = Val::K;
  if (a.k == K::i && b.k == K::i) return a.i < b.i ? -1 : a.i > b.i;
  if (a.k == K::u && b.k == K::u) return a.u < b.u ? -1 : a.u > b.u;
  if (a.k == K::d && b.k == K::d) return a.d < b.d ? -1 : a.d > b.d;
  if (a.k == K::i && b.k == K::u) {
    if (a.i < 0) return -1;
    const auto u = static_cast<std::uint64_t>(a.i);
    return u < b.u ? -1 : u > b.u;
  }
  if (a.k == K::u && b.k == K::i) return -cmp_num(b, a);
  if (a.k == K::i) return cmp_int_double(a.i, b.d);
  if (a.k == K::u) return cmp_uint_double(a.u, b.d);
  return -cmp_num(b, a);
}

bool compare(const Val& a, Op op, const Val& b) {
  int c = 0;
  if (a.numeric() && b.numeric()) {
    c = cmp_num(a, b);
  } else if (a.k == Val::K::s && b.k == Val::K::s) {
    if (op == Op::prefix) return a.s.starts_with(b.s);
    if (op == Op::contains) return a.s.find(b.s) != std::string::npos;
    c = a.s.compare(b.s);
  } else if (a.k == Val::K::b && b.k == Val::K::b) {
    c = static_cast<int>(a.b) - static_cast<int>(b.b);
  } else {
    fuzz::fail("compiled a comparison of two kinds that do not compare");
  }
  switch (op) {
    case Op::eq:
      return c == 0;
    case Op::ne:
      return c != 0;
    case Op::lt:
      return c < 0;
    case Op::le:
      return c <= 0;
    case Op::gt:
      return c > 0;
    case Op::ge:
      return c >= 0;
    default:
      fuzz::fail("compiled ^= or ~ on a non-string");
  }
}

bool brute(const FilterExpr& f, const std::byte* rec, std::uint64_t id) {
  switch (f.kind) {
    case FilterExpr::Kind::all_of:
      for (const auto& k : f.kids)
        if (!brute(k, rec, id)) return false;
      return true;
    case FilterExpr::Kind::any_of:
      for (const auto& k : f.kids)
        if (brute(k, rec, id)) return true;
      return false;
    case FilterExpr::Kind::negate:
      return !brute(f.kids.at(0), rec, id);
    case FilterExpr::Kind::compare: {
      Side l = load_path(f.path, rec, id);
      if (!f.rhs_path.empty()) return compare(l.v, f.op, load_path(f.rhs_path, rec, id).v);
      return compare(l.v, f.op, literal(f.value, l.kind, f.path == "id"));
    }
    case FilterExpr::Kind::in: {
      Side l = load_path(f.path, rec, id);
      for (const auto& v : f.values)
        if (compare(l.v, Op::eq, literal(v, l.kind, f.path == "id"))) return true;
      return false;
    }
  }
  return false;
}

// A table of records made of edge values, field by field (a fixed pseudo-random mix), with a
// few deleted so that chunks have dead slots.
std::shared_ptr<const DbVersion> build_records() {
  Transaction txn(fuzz::fixed_db());
  const TableSchema& s = fuzz::fixed_schema();
  const std::vector<std::int64_t> ints = {0,
                                          1,
                                          -1,
                                          2,
                                          7,
                                          100,
                                          -128,
                                          127,
                                          -32768,
                                          32767,
                                          std::numeric_limits<std::int32_t>::min(),
                                          std::numeric_limits<std::int64_t>::min(),
                                          std::numeric_limits<std::int64_t>::max()};
  const std::vector<std::uint64_t> uints = {0,
                                            1,
                                            2,
                                            7,
                                            100,
                                            255,
                                            65535,
                                            4294967295u,
                                            9007199254740993u,
                                            std::numeric_limits<std::uint64_t>::max()};
  const std::vector<double> floats = {0.0,  -0.0,  1.0,    -1.0,  0.1,        0.5,
                                      1e30, -1e30, 3.4e38, 1e-40, 16777217.0, 9007199254740993.0,
                                      1e300};
  const std::vector<std::string> strs = {
      "", "a", "ab", "abc", "b", "ba", "\xc3\xa9t\xc3\xa9", "zzzzzzzz", "A", "aa"};
  std::uint64_t x = 0x9e3779b97f4a7c15u;
  auto pick = [&](std::size_t n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<std::size_t>(x % n);
  };
  for (int r = 0; r < 80; ++r) {
    std::vector<std::byte> rec(s.record_size(), std::byte{0});
    for (const auto& path : {"b", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32",
                             "f64", "s", "tag", "pos.x", "pos.y", "pos.z"}) {
      auto loc = s.locate(path).value();
      std::byte* p = rec.data() + loc.offset;
      auto put = [&](auto v) { std::memcpy(p, &v, sizeof v); };
      std::int64_t i = ints[pick(ints.size())];
      std::uint64_t u = uints[pick(uints.size())];
      double d = floats[pick(floats.size())];
      switch (loc.type.kind) {
        case Kind::Bool:
          *p = std::byte{static_cast<unsigned char>(pick(2))};
          break;
        case Kind::I8:
          put(static_cast<std::int8_t>(i));
          break;
        case Kind::I16:
          put(static_cast<std::int16_t>(i));
          break;
        case Kind::I32:
          put(static_cast<std::int32_t>(i));
          break;
        case Kind::I64:
          put(i);
          break;
        case Kind::U8:
          put(static_cast<std::uint8_t>(u));
          break;
        case Kind::U16:
          put(static_cast<std::uint16_t>(u));
          break;
        case Kind::U32:
          put(static_cast<std::uint32_t>(u));
          break;
        case Kind::U64:
          put(u);
          break;
        case Kind::F32:
          put(static_cast<float>(round_f32(d) == INFINITY ? 1.0 : round_f32(d)));
          break;
        case Kind::F64:
          put(d);
          break;
        case Kind::Str: {
          std::string v = strs[pick(strs.size())].substr(0, loc.type.size);
          std::memcpy(p, v.data(), v.size());
          break;
        }
        default:
          break;
      }
    }
    if (!txn.insert("t", rec)) fuzz::fail("insert");
  }
  for (std::uint64_t id : {3u, 40u, 41u, 77u})
    if (!txn.erase("t", id)) fuzz::fail("erase");
  auto v = txn.commit();
  if (!v) fuzz::fail("commit: " + v.message());
  return *v;
}

const TableVersion& records() {
  static const std::shared_ptr<const DbVersion> db = build_records();
  return *db->table("t");
}

void check_filter(const FilterExpr& f) {
  const std::string canonical = filter_to_string(f);
  auto again = parse_filter_text(canonical);
  TICKDB_FUZZ_CHECK(again.is_ok(),
                    "the canonical text does not parse: " + again.message() + ": " + canonical);
  TICKDB_FUZZ_CHECK(filter_to_string(*again) == canonical, canonical);

  auto compiled = CompiledFilter::compile(f, fuzz::fixed_schema());
  if (!compiled) return;
  const TableVersion& t = records();
  std::uint64_t matched = 0;
  std::vector<std::uint8_t> out, scratch;
  for (ChunkSpan c : t.chunks()) {
    out.assign(c.count, 2);
    compiled->match_chunk(c, out.data(), scratch);
    for (std::uint32_t i = 0; i < c.count; ++i) {
      const bool live = c.alive == nullptr || c.alive[i] != 0;
      if (!live) {
        TICKDB_FUZZ_CHECK(out[i] == 0, "match_chunk matched a dead slot");
        continue;
      }
      const std::byte* rec = c.records + std::size_t{i} * c.record_size;
      const bool want = brute(f, rec, c.ids[i]);
      const bool got = compiled->match(rec, c.ids[i]);
      TICKDB_FUZZ_CHECK(got == want, "match() of record " + std::to_string(c.ids[i]) + " is " +
                                         std::to_string(got) + " for " + canonical);
      TICKDB_FUZZ_CHECK(
          out[i] == (want ? 1 : 0),
          "match_chunk() of record " + std::to_string(c.ids[i]) + " for " + canonical);
      matched += want;
    }
  }
  TICKDB_FUZZ_CHECK(compiled->count(t) == matched, "count() for " + canonical);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto f = parse_filter_text(text)) check_filter(*f);
  if (auto j = parse_json(text); j.is_ok())
    if (auto f = parse_filter(*j)) check_filter(*f);
  return 0;
}
