#include "core/commit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/file_io.h"
#include "core/file_names.h"
#include "core/snapshot_file.h"

namespace tickdb {

namespace {

constexpr std::uint32_t kEntryMagic = 0x454c4b54;  // "TKLE"
constexpr std::size_t kEntryHeader = 4 + 4 + 8 + 8 + 8;
constexpr std::uint32_t kMaxPayload = 1u << 30;
constexpr std::uint16_t kKeyedCall = 0x8000;  // in a call's name length: a CallKey follows

using fileio::Fd;
using fileio::get;
using fileio::os_error;
using fileio::put;

bool decode_payload(std::string_view p, LogEntry& e) {
  std::uint32_t n = 0;
  if (!get(p, n)) return false;
  e.calls.clear();
  e.calls.reserve(std::min<std::uint32_t>(n, 1u << 16));
  for (std::uint32_t i = 0; i < n; ++i) {
    LoggedCall c;
    std::uint16_t name_len = 0;
    std::uint32_t params_len = 0;
    if (!get(p, c.tick) || !get(p, c.tick_dt) || !get(p, name_len)) return false;
    const bool keyed = (name_len & kKeyedCall) != 0;
    name_len &= static_cast<std::uint16_t>(~kKeyedCall);
    if (p.size() < name_len) return false;
    c.name.assign(p.data(), name_len);
    p.remove_prefix(name_len);
    if (!get(p, params_len) || p.size() < params_len) return false;
    c.params.assign(p.data(), params_len);
    p.remove_prefix(params_len);
    if (keyed) {
      std::uint8_t key_len = 0;
      if (!get(p, key_len) || key_len == 0 || p.size() < key_len) return false;
      c.key.key.assign(p.data(), key_len);
      p.remove_prefix(key_len);
      if (!get(p, c.key.fingerprint) || !get(p, c.key.unix_ms)) return false;
    }
    e.calls.push_back(std::move(c));
  }
  return p.empty();
}

}  // namespace

void append_logged_call(std::string& payload, std::string_view name, std::string_view params,
                        std::uint64_t tick, double tick_dt, const CallKey* key) {
  const bool keyed = key && !key->key.empty();
  name = name.substr(0, kKeyedCall - 1);
  put<std::uint64_t>(payload, tick);
  put<double>(payload, tick_dt);
  put<std::uint16_t>(payload, static_cast<std::uint16_t>(name.size() | (keyed ? kKeyedCall : 0)));
  payload.append(name);
  put<std::uint32_t>(payload, static_cast<std::uint32_t>(params.size()));
  payload.append(params);
  if (keyed) {
    const std::string_view k = std::string_view(key->key).substr(0, 255);
    put<std::uint8_t>(payload, static_cast<std::uint8_t>(k.size()));
    payload.append(k);
    put<std::uint64_t>(payload, key->fingerprint);
    put<std::uint64_t>(payload, key->unix_ms);
  }
}

void append_entry(std::string& out, std::uint64_t version, std::uint64_t prev_version,
                  std::uint32_t calls, std::string_view calls_payload) {
  const std::size_t len = 4 + calls_payload.size();
  put<std::uint32_t>(out, kEntryMagic);
  const std::size_t sum_at = out.size();
  put<std::uint64_t>(out, 0);
  const std::size_t covered_at = out.size();  // the checksum covers length, versions and payload
  put<std::uint32_t>(out, static_cast<std::uint32_t>(len));
  put<std::uint64_t>(out, version);
  put<std::uint64_t>(out, prev_version);
  put<std::uint32_t>(out, calls);
  out.append(calls_payload);
  const std::uint64_t sum = XXH3_64bits(out.data() + covered_at, out.size() - covered_at);
  std::memcpy(out.data() + sum_at, &sum, sizeof sum);
}

std::size_t entries_through(std::string_view encoded, std::uint64_t version, std::uint64_t& count) {
  count = 0;
  std::size_t off = 0;
  while (encoded.size() - off >= kEntryHeader) {
    std::string_view e = encoded.substr(off + 12);  // after magic and checksum
    std::uint32_t len = 0;
    std::uint64_t v = 0;
    if (!get(e, len) || !get(e, v) || v > version || encoded.size() - off < kEntryHeader + len)
      break;
    off += kEntryHeader + len;
    ++count;
  }
  return off;
}

Result<LogReadResult> read_log_file(const std::string& path) {
  Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return os_error("cannot open", path);
  std::string data;
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) return os_error("cannot stat", path);
  data.resize(static_cast<std::size_t>(st.st_size));
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t r = ::read(fd.fd, data.data() + off, data.size() - off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return os_error("cannot read", path);
    if (r == 0) break;  // shorter than fstat said: read what is there
    off += static_cast<std::size_t>(r);
  }
  fd.close();
  data.resize(off);

  LogReadResult out;
  out.file_bytes = data.size();
  auto damaged = [&](const char* what) {
    return make_error(Errc::corruption, "log segment '" + path + "': " + what + " at byte " +
                                            std::to_string(out.valid_bytes) + " of " +
                                            std::to_string(out.file_bytes));
  };
  std::string_view in(data);
  std::uint64_t last_version = 0;
  while (!in.empty()) {
    // The preallocated rest of the segment: zeros only is a clean end.
    if (in.find_first_not_of('\0') == std::string_view::npos) break;
    std::string_view e = in;
    std::uint32_t magic = 0, len = 0;
    std::uint64_t version = 0, prev = 0, sum = 0;
    if (!get(e, magic) || !get(e, sum)) {
      out.damage = damaged("an entry header is cut short");
      break;
    }
    const std::string_view covered = e;  // length, versions, payload
    if (!get(e, len) || !get(e, version) || !get(e, prev)) {
      out.damage = damaged("an entry header is cut short");
      break;
    }
    if (magic != kEntryMagic) {
      out.damage = damaged("no entry magic");
      break;
    }
    if (len > kMaxPayload || e.size() < len) {
      out.damage = damaged("an entry is cut short");
      break;
    }
    std::string_view payload = e.substr(0, len);
    if (XXH3_64bits(covered.data(), 4 + 8 + 8 + len) != sum) {
      out.damage = damaged("an entry does not match its checksum");
      break;
    }
    LogEntry entry;
    entry.version = version;
    entry.prev_version = prev;
    if (!decode_payload(payload, entry)) {
      out.damage = damaged("an entry's calls are malformed");
      break;
    }
    if (version <= last_version || prev >= version) {
      out.damage = damaged("versions do not rise");
      break;
    }
    last_version = version;
    out.entries.push_back(std::move(entry));
    in.remove_prefix(kEntryHeader + len);
    out.valid_bytes += kEntryHeader + len;
  }
  return out;
}

Status truncate_log_file(const std::string& path, std::uint64_t bytes) {
  Fd fd{::open(path.c_str(), O_WRONLY | O_CLOEXEC)};
  if (fd.fd < 0) return os_error("cannot open", path);
  if (::ftruncate(fd.fd, static_cast<off_t>(bytes)) != 0) return os_error("cannot cut", path);
  if (::fsync(fd.fd) != 0) return os_error("cannot fsync", path);
  return {};
}

LogFile::~LogFile() {
  close();
}

Status LogFile::open(const std::string& path) {
  close();
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  std::uint64_t valid = 0;
  if (existed) {
    auto r = read_log_file(path);
    if (!r) return r.error();
    valid = r->valid_bytes;
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return os_error("cannot open log", path);
  path_ = path;
  // Written at bytes_ with pwrite: the file is longer than its entries (preallocated).
  bytes_ = valid;
  synced_ = valid;
  allocated_ = valid;
  zeroed_ = valid;
  if (existed && ::ftruncate(fd_, static_cast<off_t>(valid)) != 0)
    return os_error("cannot truncate log", path);
  reserve(kLogPreallocBytes);
  if (!existed) {
    auto dir = std::filesystem::path(path).parent_path().string();
    TICKDB_TRY(fsync_dir(dir.empty() ? "." : dir));
  }
  return {};
}

void LogFile::reserve(std::uint64_t more) {
  if (bytes_ + more <= allocated_) return;
  const std::uint64_t want = std::max(allocated_, bytes_) + std::max(more, kLogPreallocBytes);
  // Not where the filesystem cannot (or the disk is nearly full): the file then grows as it
  // is written, and a full disk shows at the write.
  if (::posix_fallocate(fd_, static_cast<off_t>(allocated_),
                        static_cast<off_t>(want - allocated_)) == 0)
    allocated_ = want;
}

Status LogFile::write(std::string_view bytes) {
  reserve(bytes.size());
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w =
        ::pwrite(fd_, bytes.data() + off, bytes.size() - off, static_cast<off_t>(bytes_ + off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return os_error("cannot write log", path_);
    }
    off += static_cast<std::size_t>(w);
  }
  bytes_ += bytes.size();
  zero_ahead();
  return {};
}

void LogFile::zero_ahead() {
  static const char zeros[kLogZeroStep] = {};
  zeroed_ = std::max(zeroed_, bytes_);
  if (zeroed_ >= bytes_ + kLogZeroStep / 2) return;
  reserve(zeroed_ - bytes_ + kLogZeroStep);
  // Within the preallocated space only: past it a write would grow the file (whose new size
  // the next fdatasync must commit anyway). A failed or short write leaves zeros or nothing,
  // both a clean end; the entries' own writes report a real disk problem.
  const std::uint64_t n = std::min(kLogZeroStep, allocated_ > zeroed_ ? allocated_ - zeroed_ : 0);
  if (n == 0) return;
  const ssize_t w = ::pwrite(fd_, zeros, n, static_cast<off_t>(zeroed_));
  if (w > 0) zeroed_ += static_cast<std::uint64_t>(w);
}

Status LogFile::sync() {
  if (::fdatasync(fd_) != 0) return os_error("cannot fdatasync log", path_);
  synced_ = bytes_;
  return {};
}

Status LogFile::cut_to_synced() {
  if (fd_ < 0) return {};
  if (::ftruncate(fd_, static_cast<off_t>(synced_)) != 0)
    return os_error("cannot truncate log", path_);
  bytes_ = allocated_ = zeroed_ = synced_;
  if (::fdatasync(fd_) != 0) return os_error("cannot fdatasync log", path_);
  return {};
}

void LogFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string log_file_name(std::uint64_t first_version) {
  return numbered_file_name("log-", first_version, ".tdl");
}

std::optional<std::uint64_t> parse_log_file_name(std::string_view name) {
  return parse_numbered_file_name(name, "log-", ".tdl");
}

}  // namespace tickdb
