// Small helpers shared by the on-disk formats (snapshot_file.cpp, commit_log.cpp): little-
// endian fixed-size fields, an owned file descriptor, and errno in messages and Error kinds.
// Internal: no other part of tickdb needs them.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tickdb::fileio {

// Appends v's bytes (little-endian hosts only: x86-64, aarch64).
template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

// Reads a T from the front of `in`; false when too few bytes are left.
template <class T>
bool get(std::string_view& in, T& v) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(&v, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}

// "what 'path': strerror(errno)".
inline std::string errno_text(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

// The Error for a system call on `path` that failed with errno: io_error naming the file and
// the OS error, except out of space or memory, which API.md calls resource_exhausted (507).
inline Error os_error(const std::string& what, const std::string& path) {
  const int e = errno;
  std::string msg = errno_text(what, path);
  if (e == ENOSPC || e == EDQUOT || e == ENOMEM)
    return make_error(Errc::resource_exhausted, std::move(msg));
  return make_error(Errc::io_error, std::move(msg));
}

// A file descriptor closed when it goes out of scope.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace tickdb::fileio
