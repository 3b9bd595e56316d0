// Fuzz target: the JSON record codec and the schema readers (core/json_codec.h).
//
// Input: JSON text. It is read as a record of the fixed table (fuzz_common.h) and, when
// accepted, must round-trip: the text and DOM encoders agree, and reading the encoded text
// back writes the same bytes. It is also read as a field spec, table spec, relation, index
// definition and whole catalog; a catalog that loads must print the same after a round trip.
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_common.h"

using namespace tickdb;

namespace {

void record_round_trip(const json& j) {
  const TableSchema& schema = fuzz::fixed_schema();
  std::vector<std::byte> rec(schema.record_size(), std::byte{0});
  std::optional<std::uint64_t> id;
  if (!record_from_json(schema, j, rec.data(), &id)) return;
  TICKDB_FUZZ_CHECK(validate_record_bytes(schema.fields(), rec).is_ok(), "accepted bytes invalid");
  RecordView view(rec.data(), id.value_or(1), &schema);
  std::string text;
  append_record_json(text, view);
  auto back = parse_json(text);
  TICKDB_FUZZ_CHECK(back.is_ok(), text);
  TICKDB_FUZZ_CHECK(*back == record_to_json(view), text);
  std::vector<std::byte> again(schema.record_size(), std::byte{0xff});
  std::optional<std::uint64_t> id2;
  TICKDB_FUZZ_CHECK(record_from_json(schema, *back, again.data(), &id2).is_ok(), text);
  TICKDB_FUZZ_CHECK(again == rec, text);
  TICKDB_FUZZ_CHECK(id2 == id.value_or(1), text);
}

void catalog_round_trip(const json& j) {
  auto db = catalog_from_json(j);
  if (!db) return;
  json once = catalog_to_json(**db);
  auto again = catalog_from_json(once);
  TICKDB_FUZZ_CHECK(again.is_ok(), again.message() + ": " + once.dump());
  TICKDB_FUZZ_CHECK(catalog_to_json(**again) == once, once.dump());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto j = parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!j) return 0;
  record_round_trip(*j);
  const TypeRegistry& types = fuzz::fixed_db()->types();
  (void)field_spec_from_json(*j, types);
  (void)table_spec_from_json(*j, types);
  (void)relation_spec_from_json(*j);
  if (auto d = index_def_from_json(*j)) {
    auto back = index_def_from_json(index_def_to_json(*d));
    TICKDB_FUZZ_CHECK(back.is_ok() && index_def_to_json(*back) == index_def_to_json(*d), j->dump());
  }
  catalog_round_trip(*j);
  return 0;
}
