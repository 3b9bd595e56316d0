// A fault-injection shim for the e2e tests (tests/e2e/fault_test.py): an LD_PRELOAD library
// that makes file system calls on paths under a prefix fail the way a full, broken or
// read-only disk does, without root (chmod tricks do not stop root).
//
// Environment:
//   TICKDB_FAULT_PATH  only files whose path starts with this prefix are affected (required:
//                      without it the shim does nothing)
//   TICKDB_FAULT       the faults, comma separated (used when TICKDB_FAULT_CTL is not set):
//                        enospc_after:BYTES  writes succeed until BYTES more bytes were written
//                                            under the prefix (the one that crosses the limit
//                                            is short), then fail with ENOSPC
//                        eio_write           write/pwrite/writev fail with EIO
//                        fsync_fail          fsync/fdatasync fail with EIO
//                        erofs_open          open/openat for writing or creating fail with
//                                            EROFS, and so do writes to files already open
//                        slow_ms:MS          writes and fsyncs wait MS milliseconds first (a
//                                            slow disk: a long window in which what was
//                                            published is not on disk yet)
//   TICKDB_FAULT_CTL   a file holding the faults in the same syntax, looked at on every call
//                      (one stat; read again only when its inode, size or mtime changed), so a
//                      test can switch faults on and off while the process runs. Replace it
//                      atomically (write a temporary file, rename). Missing or empty: no fault.
//                      Each change of the faults starts the enospc_after count anew.
//
// Only the calls a program makes through libc's symbols are seen (not raw syscalls, not
// libc's internal calls such as fopen's). Calls on file descriptors find their path through
// /proc/self/fd, and only while a fault is on.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { F_ENOSPC = 1, F_EIO_WRITE = 2, F_FSYNC = 4, F_EROFS = 8, F_SLOW = 16 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int inited;
static const char* prefix;
static size_t prefix_len;
static const char* ctl;
static int faults;             // F_* bits in force
static long long enospc_left;  // bytes still allowed under enospc_after
static long slow_ms;           // under slow_ms
static struct stat ctl_seen;   // the control file as last read
static int ctl_present;

static void parse(const char* s) {
  faults = 0;
  enospc_left = 0;
  slow_ms = 0;
  while (s && *s) {
    while (*s == ',' || *s == ' ' || *s == '\n' || *s == '\t') ++s;
    if (!*s) break;
    const char* end = s + strcspn(s, ", \n\t");
    size_t n = (size_t)(end - s);
    if (n > 13 && strncmp(s, "enospc_after:", 13) == 0) {
      faults |= F_ENOSPC;
      enospc_left = strtoll(s + 13, NULL, 10);
    } else if (n == 9 && strncmp(s, "eio_write", 9) == 0) {
      faults |= F_EIO_WRITE;
    } else if (n == 10 && strncmp(s, "fsync_fail", 10) == 0) {
      faults |= F_FSYNC;
    } else if (n == 10 && strncmp(s, "erofs_open", 10) == 0) {
      faults |= F_EROFS;
    } else if (n > 8 && strncmp(s, "slow_ms:", 8) == 0) {
      faults |= F_SLOW;
      slow_ms = strtol(s + 8, NULL, 10);
    }
    s = end;
  }
}

// Reads the control file with raw system calls (never through the wrappers below).
static void reread_ctl(void) {
  struct stat st;
  if (syscall(SYS_newfstatat, AT_FDCWD, ctl, &st, 0) != 0) {
    if (ctl_present) parse("");
    ctl_present = 0;
    return;
  }
  if (ctl_present && st.st_ino == ctl_seen.st_ino && st.st_size == ctl_seen.st_size &&
      st.st_mtim.tv_sec == ctl_seen.st_mtim.tv_sec &&
      st.st_mtim.tv_nsec == ctl_seen.st_mtim.tv_nsec)
    return;
  char buf[256];
  long n = 0;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, ctl, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
  }
  buf[n > 0 ? n : 0] = 0;
  parse(buf);
  ctl_seen = st;
  ctl_present = 1;
}

// The faults in force now (under mu).
static int current(void) {
  if (!inited) {
    inited = 1;
    prefix = getenv("TICKDB_FAULT_PATH");
    prefix_len = prefix ? strlen(prefix) : 0;
    ctl = getenv("TICKDB_FAULT_CTL");
    if (!ctl) parse(getenv("TICKDB_FAULT"));
  }
  if (!prefix_len) return 0;
  if (ctl) reread_ctl();
  return faults;
}

static int faults_now(void) {
  pthread_mutex_lock(&mu);
  int f = current();
  pthread_mutex_unlock(&mu);
  return f;
}

static int under_prefix(const char* path) {
  return path && prefix_len && strncmp(path, prefix, prefix_len) == 0;
}

static int fd_under_prefix(int fd) {
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  long n = syscall(SYS_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = 0;
  return under_prefix(target);
}

// slow_ms: waits (outside the lock, so other threads' calls go on).
static void go_slow(void) {
  pthread_mutex_lock(&mu);
  long ms = slow_ms;
  pthread_mutex_unlock(&mu);
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

// How many of `want` bytes a write to `fd` may write: want, or a shorter count, or -1 with
// errno set.
static ssize_t allowed(int fd, size_t want) {
  if (!faults_now() || !fd_under_prefix(fd)) return (ssize_t)want;
  if (faults_now() & F_SLOW) go_slow();
  pthread_mutex_lock(&mu);
  int f = current();
  ssize_t r = (ssize_t)want;
  if (f & F_EROFS) {
    errno = EROFS;
    r = -1;
  } else if (f & F_EIO_WRITE) {
    errno = EIO;
    r = -1;
  } else if (f & F_ENOSPC) {
    if (enospc_left <= 0) {
      errno = ENOSPC;
      r = -1;
    } else {
      if ((long long)want > enospc_left) r = (ssize_t)enospc_left;
      enospc_left -= r;
    }
  }
  pthread_mutex_unlock(&mu);
  return r;
}

// dlsym's object pointer into a function pointer, without the cast ISO C forbids.
#define REAL(name, type)                      \
  static type real_##name;                    \
  if (!real_##name) {                         \
    void* sym_ = dlsym(RTLD_NEXT, #name);     \
    memcpy(&real_##name, &sym_, sizeof sym_); \
  }

typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef ssize_t (*pwrite_fn)(int, const void*, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec*, int);
typedef int (*fsync_fn)(int);
typedef int (*open_fn)(const char*, int, ...);
typedef int (*openat_fn)(int, const char*, int, ...);

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(write, write_fn);
  ssize_t a = allowed(fd, n);
  if (a < 0) return -1;
  return real_write(fd, buf, (size_t)a);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  REAL(pwrite, pwrite_fn);
  ssize_t a = allowed(fd, n);
  if (a < 0) return -1;
  return real_pwrite(fd, buf, (size_t)a, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  REAL(pwrite64, pwrite_fn);
  ssize_t a = allowed(fd, n);
  if (a < 0) return -1;
  return real_pwrite64(fd, buf, (size_t)a, off);
}

ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  REAL(writev, writev_fn);
  size_t total = 0;
  for (int i = 0; i < cnt; ++i) total += iov[i].iov_len;
  ssize_t a = allowed(fd, total);
  if (a < 0) return -1;
  if ((size_t)a == total) return real_writev(fd, iov, cnt);
  // A short write: as much of the vector as is allowed.
  ssize_t done = 0;
  for (int i = 0; i < cnt && done < a; ++i) {
    size_t part = iov[i].iov_len;
    if ((ssize_t)part > a - done) part = (size_t)(a - done);
    REAL(write, write_fn);
    ssize_t w = real_write(fd, iov[i].iov_base, part);
    if (w < 0) return done ? done : -1;
    done += w;
    if ((size_t)w < part) break;
  }
  return done;
}

static int sync_fails(int fd) {
  const int f = faults_now();
  if (!(f & (F_FSYNC | F_SLOW)) || !fd_under_prefix(fd)) return 0;
  if (f & F_SLOW) go_slow();
  if (!(f & F_FSYNC)) return 0;
  errno = EIO;
  return 1;
}

int fsync(int fd) {
  REAL(fsync, fsync_fn);
  if (sync_fails(fd)) return -1;
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync, fsync_fn);
  if (sync_fails(fd)) return -1;
  return real_fdatasync(fd);
}

// True when opening `path` (relative to `dirfd`) with `flags` must fail with EROFS.
static int open_fails(int dirfd, const char* path, int flags) {
  if (!(flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC))) return 0;
  if (!(faults_now() & F_EROFS)) return 0;
  int hit = under_prefix(path);
  if (!hit && path && path[0] != '/') {
    // A relative path: resolve its directory.
    char dir[4096];
    if (dirfd == AT_FDCWD) {
      hit = getcwd(dir, sizeof dir) && under_prefix(dir);
    } else {
      hit = fd_under_prefix(dirfd);
    }
  }
  if (hit) errno = EROFS;
  return hit;
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char* path, int flags, ...) {
  REAL(open, open_fn);
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  if (open_fails(AT_FDCWD, path, flags)) return -1;
  return real_open(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  REAL(open64, open_fn);
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  if (open_fails(AT_FDCWD, path, flags)) return -1;
  return real_open64(path, flags, mode);
}

int openat(int dirfd, const char* path, int flags, ...) {
  REAL(openat, openat_fn);
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  if (open_fails(dirfd, path, flags)) return -1;
  return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char* path, int flags, ...) {
  REAL(openat64, openat_fn);
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  if (open_fails(dirfd, path, flags)) return -1;
  return real_openat64(dirfd, path, flags, mode);
}
