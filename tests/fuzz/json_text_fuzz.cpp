// Fuzz target, differential: the DOM-free JSON reader of the fast path (core/json_text.h)
// against nlohmann (parse_json + record_from_json).
//
// Input: JSON text. Whatever the fast reader accepts as a whole, nlohmann must accept with the
// same meaning: a record read by record_from_text has exactly the bytes and id that
// record_from_json writes; a value skip() accepts parses; a scalar or number it reads is the
// value (and JSON type) nlohmann reads. The fast reader may give up on anything: the general
// path then answers, so giving up is never a failure.
#include <cstring>
#include <vector>

#include "core/json_text.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tickdb;

namespace {

void check_record(std::string_view text) {
  const TableSchema& schema = fuzz::fixed_schema();
  RecordBuffer start(schema);  // the defaults: fields not named keep them on both paths
  std::vector<std::byte> fast(start.bytes().begin(), start.bytes().end());
  std::optional<std::uint64_t> fast_id;
  JsonCursor in(text);
  if (!record_from_text(schema, in, fast.data(), &fast_id) || !in.at_end()) return;
  auto j = parse_json(text);
  TICKDB_FUZZ_CHECK(j.is_ok(), "fast path took text nlohmann refuses: " + j.message());
  std::vector<std::byte> general(start.bytes().begin(), start.bytes().end());
  std::optional<std::uint64_t> general_id;
  auto st = record_from_json(schema, *j, general.data(), &general_id);
  TICKDB_FUZZ_CHECK(st.is_ok(), "fast path took a record the codec refuses: " + st.message());
  TICKDB_FUZZ_CHECK(fast == general, "the two paths wrote different bytes");
  TICKDB_FUZZ_CHECK(fast_id == general_id, "the two paths read different ids");
}

void check_skip(std::string_view text) {
  JsonCursor in(text);
  std::string_view span;
  if (!in.skip(&span) || !in.at_end()) return;
  auto j = parse_json(text);
  TICKDB_FUZZ_CHECK(j.is_ok(), "skip() took text nlohmann refuses: " + j.message());
  auto k = parse_json(span);
  TICKDB_FUZZ_CHECK(k.is_ok() && *k == *j, "skip()'s span is not the value");
}

void check_scalar(std::string_view text) {
  JsonCursor in(text);
  json v;
  if (!in.scalar(v) || !in.at_end()) return;
  auto j = parse_json(text);
  TICKDB_FUZZ_CHECK(j.is_ok(), "scalar() took text nlohmann refuses: " + j.message());
  TICKDB_FUZZ_CHECK(j->type() == v.type() && *j == v, v.dump() + " vs " + j->dump());
  if (v.is_number_float()) {  // the same double, to the bit (the sign of zero included)
    double a = v.get<double>(), b = j->get<double>();
    TICKDB_FUZZ_CHECK(std::memcmp(&a, &b, sizeof a) == 0, v.dump());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_record(text);
  check_skip(text);
  check_scalar(text);
  return 0;
}
