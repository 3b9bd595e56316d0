// The idempotency keys a snapshot carries: `keys-<version, 20 digits>.tdk` beside
// `snapshot-<version>.tdb`, holding every keyed write committed at or before that version and
// still within its time to live, so that a write retried after a restart is not applied again
// although its log entry went with the log segments the snapshot replaced (http/idempotency.h,
// actors/idempotency_ledger.h).
//
// Format: magic "TKIK" (u32), format (u32, 1), record count (u32), then per record: key length
// (u8), key, fingerprint (u64), version (u64), commit time in Unix ms (u64), result length
// (u32), the call's result as JSON text; last, XXH3-64 (u64) of every byte before it. Written
// to `<path>.tmp`, fsynced, renamed into place, and the directory fsynced.
//
// Owned by the persistence (actors/persistence.cpp). Thread-safety: no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tickdb {

struct KeyRecord {
  std::string key;  // 1 to 255 bytes
  std::uint64_t fingerprint = 0;
  std::uint64_t version = 0;  // the version the keyed call committed in
  std::uint64_t unix_ms = 0;  // when it committed
  std::string result;         // the call's result, JSON text
};

std::string encode_key_file(const std::vector<KeyRecord>& records);
// corruption naming `what` (a file) when the bytes are cut short, damaged or of another format.
Result<std::vector<KeyRecord>> decode_key_file(std::string_view bytes, const std::string& what);

// Writes the file atomically (see above): io_error / resource_exhausted naming the file.
Status write_key_file(const std::string& path, const std::vector<KeyRecord>& records);
// io_error when it cannot be read; corruption when it is damaged.
Result<std::vector<KeyRecord>> read_key_file(const std::string& path);

// "keys-00000000000000000042.tdk" for version 42, and back (nullopt: not a key file name).
std::string key_file_name(std::uint64_t version);
std::optional<std::uint64_t> parse_key_file_name(std::string_view name);

}  // namespace tickdb
