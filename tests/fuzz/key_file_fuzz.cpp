// Fuzz target: the reader of a snapshot's key file (core/key_file.h), decode_key_file.
//
// Input: a key file without its 8-byte checksum. The target reads it as given (the checksum
// check itself is fuzzed) and with the right XXH3 appended, so that mutations reach the
// record decoder. A file that reads encodes again to exactly its bytes (the format has one
// encoding), and a damaged one is corruption, never a shorter list.
//
// Seeds: tests/fuzz/corpus/key_file (written by encode_key_file, checksum cut).
#include <cstring>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/key_file.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tickdb;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  if (auto r = decode_key_file(in, "fuzz")) {
    TICKDB_FUZZ_CHECK(encode_key_file(*r) == in, "a key file read as given encodes otherwise");
  } else {
    TICKDB_FUZZ_CHECK(r.error().code == Errc::corruption, r.error().message);
  }
  std::string whole = in;
  const std::uint64_t sum = XXH3_64bits(in.data(), in.size());
  whole.append(reinterpret_cast<const char*>(&sum), sizeof sum);
  if (auto r = decode_key_file(whole, "fuzz")) {
    TICKDB_FUZZ_CHECK(encode_key_file(*r) == whole, "a key file read back encodes otherwise");
  } else {
    TICKDB_FUZZ_CHECK(r.error().code == Errc::corruption, r.error().message);
  }
  return 0;
}
