#include "core/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/file_io.h"
#include "core/file_names.h"
#include "core/snapshot_file.h"

namespace tickdb {

namespace {
constexpr std::uint32_t kKeyMagic = 0x4b494b54;  // "TKIK"
constexpr std::uint32_t kKeyFormat = 1;

using fileio::Fd;
using fileio::get;
using fileio::os_error;
using fileio::put;
}  // namespace

std::string encode_key_file(const std::vector<KeyRecord>& records) {
  std::string out;
  put<std::uint32_t>(out, kKeyMagic);
  put<std::uint32_t>(out, kKeyFormat);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(records.size()));
  for (const auto& r : records) {
    const std::string_view k = std::string_view(r.key).substr(0, 255);
    put<std::uint8_t>(out, static_cast<std::uint8_t>(k.size()));
    out.append(k);
    put<std::uint64_t>(out, r.fingerprint);
    put<std::uint64_t>(out, r.version);
    put<std::uint64_t>(out, r.unix_ms);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(r.result.size()));
    out.append(r.result);
  }
  put<std::uint64_t>(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

Result<std::vector<KeyRecord>> decode_key_file(std::string_view bytes, const std::string& what) {
  auto damaged = [&](const std::string& why) -> Result<std::vector<KeyRecord>> {
    return make_error(Errc::corruption, "key file '" + what + "': " + why);
  };
  if (bytes.size() < 4 + 4 + 4 + 8) return damaged("cut short");
  std::uint64_t sum = 0;
  std::memcpy(&sum, bytes.data() + bytes.size() - 8, 8);
  if (XXH3_64bits(bytes.data(), bytes.size() - 8) != sum) return damaged("checksum mismatch");
  std::string_view in = bytes.substr(0, bytes.size() - 8);
  std::uint32_t magic = 0, format = 0, n = 0;
  get(in, magic);
  get(in, format);
  get(in, n);
  if (magic != kKeyMagic) return damaged("not a key file");
  if (format != kKeyFormat) return damaged("format " + std::to_string(format) + " is not known");
  std::vector<KeyRecord> out;
  out.reserve(std::min<std::uint32_t>(n, 1u << 16));
  for (std::uint32_t i = 0; i < n; ++i) {
    KeyRecord r;
    std::uint8_t klen = 0;
    std::uint32_t rlen = 0;
    if (!get(in, klen) || klen == 0 || in.size() < klen) return damaged("a record is cut short");
    r.key.assign(in.data(), klen);
    in.remove_prefix(klen);
    if (!get(in, r.fingerprint) || !get(in, r.version) || !get(in, r.unix_ms) || !get(in, rlen) ||
        in.size() < rlen)
      return damaged("a record is cut short");
    r.result.assign(in.data(), rlen);
    in.remove_prefix(rlen);
    out.push_back(std::move(r));
  }
  if (!in.empty()) return damaged("bytes after the last record");
  return out;
}

Status write_key_file(const std::string& path, const std::vector<KeyRecord>& records) {
  const std::string bytes = encode_key_file(records);
  const std::string tmp = path + ".tmp";
  Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (f.fd < 0) return os_error("cannot create", tmp);
  auto fail = [&](Error e) -> Status {
    ::unlink(tmp.c_str());
    return e;
  };
  for (std::size_t off = 0; off < bytes.size();) {
    ssize_t w = ::write(f.fd, bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fail(os_error("cannot write", tmp));
    off += static_cast<std::size_t>(w);
  }
  if (::fsync(f.fd) != 0) return fail(os_error("cannot fsync", tmp));
  f.close();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(os_error("cannot rename to", path));
  auto dir = std::filesystem::path(path).parent_path().string();
  return fsync_dir(dir.empty() ? "." : dir);
}

Result<std::vector<KeyRecord>> read_key_file(const std::string& path) {
  Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return os_error("cannot open", path);
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd.fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return os_error("cannot read", path);
    if (r == 0) break;
    data.append(buf, static_cast<std::size_t>(r));
  }
  return decode_key_file(data, path);
}

std::string key_file_name(std::uint64_t version) {
  return numbered_file_name("keys-", version, ".tdk");
}

std::optional<std::uint64_t> parse_key_file_name(std::string_view name) {
  return parse_numbered_file_name(name, "keys-", ".tdk");
}

}  // namespace tickdb
