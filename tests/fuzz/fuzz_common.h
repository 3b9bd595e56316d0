// What the fuzz targets share: the small fixed schema they read records into, and a check
// that aborts (a crash libFuzzer reports) when a property the target asserts does not hold.
//
// Thread-safety: the schema is built once (a function-local static) and immutable after.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/json_codec.h"
#include "core/transaction.h"

namespace tickdb::fuzz {

// A property of the target failed: print it and abort, so libFuzzer saves the input.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz property failed: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}
#define TICKDB_FUZZ_CHECK(cond, what)                                               \
  do {                                                                              \
    if (!(cond)) ::tickdb::fuzz::fail(std::string(#cond ": ") + std::string(what)); \
  } while (0)

// vec3 {x, y, z: f32} and a table `t` with one field of every scalar type, two strings and a
// composite: what every record-reading target reads into.
inline const char* kTableJson = R"({"name": "t", "fields": [
  {"name": "b", "type": "bool"}, {"name": "i8", "type": "i8"}, {"name": "i16", "type": "i16"},
  {"name": "i32", "type": "i32"}, {"name": "i64", "type": "i64"}, {"name": "u8", "type": "u8"},
  {"name": "u16", "type": "u16"}, {"name": "u32", "type": "u32"}, {"name": "u64", "type": "u64"},
  {"name": "f32", "type": "f32"}, {"name": "f64", "type": "f64"},
  {"name": "s", "type": "str", "size": 8}, {"name": "tag", "type": "str", "size": 3},
  {"name": "pos", "type": "vec3"}]})";
inline const char* kVec3Json = R"({"name": "vec3", "fields": [
  {"name": "x", "type": "f32"}, {"name": "y", "type": "f32"}, {"name": "z", "type": "f32"}]})";

inline std::shared_ptr<const DbVersion> build_db() {
  Transaction txn(DbVersion::empty());
  auto vec3 = table_spec_from_json(json::parse(kVec3Json), txn.types());
  if (!vec3 || !txn.create_type(vec3->name, vec3->fields)) fail("vec3");
  auto t = table_spec_from_json(json::parse(kTableJson), txn.types());
  if (!t || !txn.create_table(t->name, t->fields)) fail("table t");
  auto v = txn.commit();
  if (!v) fail("commit: " + v.message());
  return *v;
}

// The database with the empty table `t` (built once).
inline const std::shared_ptr<const DbVersion>& fixed_db() {
  static const std::shared_ptr<const DbVersion> db = build_db();
  return db;
}
inline const TableSchema& fixed_schema() {
  return *fixed_db()->table("t")->schema();
}

}  // namespace tickdb::fuzz
