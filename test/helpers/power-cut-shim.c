/*
 * A write recorder for the power-cut test (test/fault/power-cut.test.ts), loaded with LD_PRELOAD
 * into the process whose store is cut. For every file under $PC_ROOT it appends to $PC_JOURNAL,
 * in the order the calls happen (one lock across threads: the store's writer is a worker thread),
 * what the disk was asked to do: create/truncate at open, each write with its offset and bytes,
 * ftruncate, fsync/fdatasync, rename, unlink. Writes to a file named "ACK" are journalled as
 * acknowledgement marks (the test writes one when a promise resolved). The real call always runs.
 *
 * Record: u8 op, u32 path length, path, [u32 second path length, second path], i64 offset,
 * u32 data length, data.  ops: C create/open, Z open with O_TRUNC, W write, T truncate, S sync,
 * R rename, U unlink, A acknowledgement.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536
static char *paths[MAX_FD];
static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static int journal = -1;
static char root[PATH_MAX];
static size_t root_len;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);

__attribute__((constructor)) static void init(void) {
  real_write = dlsym(RTLD_NEXT, "write");
  real_pwrite = dlsym(RTLD_NEXT, "pwrite");
  real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
  real_writev = dlsym(RTLD_NEXT, "writev");
  real_open = dlsym(RTLD_NEXT, "open");
  real_open64 = dlsym(RTLD_NEXT, "open64");
  real_openat = dlsym(RTLD_NEXT, "openat");
  real_openat64 = dlsym(RTLD_NEXT, "openat64");
  real_close = dlsym(RTLD_NEXT, "close");
  real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
  real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
  real_fsync = dlsym(RTLD_NEXT, "fsync");
  real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
  real_rename = dlsym(RTLD_NEXT, "rename");
  real_renameat = dlsym(RTLD_NEXT, "renameat");
  real_unlink = dlsym(RTLD_NEXT, "unlink");
  real_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
  const char *r = getenv("PC_ROOT"), *j = getenv("PC_JOURNAL");
  if (!r || !j) return;
  strncpy(root, r, sizeof root - 1);
  root_len = strlen(root);
  journal = real_open(j, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static void put(const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = real_write(journal, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      abort(); /* a journal that misses a record would make the test lie */
    }
    c += w;
    n -= (size_t)w;
  }
}

static void record(char op, const char *path, const char *path2, int64_t off, const void *data, uint32_t len) {
  uint32_t pl = (uint32_t)strlen(path);
  put(&op, 1);
  put(&pl, 4);
  put(path, pl);
  if (op == 'R') {
    uint32_t pl2 = (uint32_t)strlen(path2);
    put(&pl2, 4);
    put(path2, pl2);
  }
  put(&off, 8);
  put(&len, 4);
  if (len) put(data, len);
}

/* The absolute path of `p` (relative to dirfd or the cwd), if it lies under the root. */
static char *under_root(int dirfd, const char *p) {
  if (journal < 0 || !p) return NULL;
  char buf[PATH_MAX];
  if (p[0] == '/') {
    strncpy(buf, p, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
  } else {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (!getcwd(base, sizeof base)) return NULL;
    } else if (dirfd >= 0 && dirfd < MAX_FD && paths[dirfd]) {
      strncpy(base, paths[dirfd], sizeof base - 1);
      base[sizeof base - 1] = 0;
    } else
      return NULL;
    if (snprintf(buf, sizeof buf, "%s/%s", base, p) >= (int)sizeof buf) return NULL;
  }
  if (strncmp(buf, root, root_len) != 0 || (buf[root_len] != '/' && buf[root_len] != 0)) return NULL;
  return strdup(buf);
}

static int is_ack(const char *path) {
  const char *s = strrchr(path, '/');
  return s && strcmp(s + 1, "ACK") == 0;
}

static int opened(int fd, int dirfd, const char *p, int flags) {
  if (fd < 0 || fd >= MAX_FD) return fd;
  char *abs = under_root(dirfd, p);
  pthread_mutex_lock(&lock);
  free(paths[fd]);
  paths[fd] = abs;
  if (abs && !is_ack(abs)) {
    struct stat st;
    int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    if (!dir) record(flags & O_TRUNC ? 'Z' : 'C', abs, NULL, 0, NULL, 0);
  }
  pthread_mutex_unlock(&lock);
  return fd;
}

#define MODE_ARG                                                                                          \
  mode_t mode = 0;                                                                                        \
  if (flags & (O_CREAT | O_TMPFILE)) {                                                                    \
    va_list ap;                                                                                           \
    va_start(ap, flags);                                                                                  \
    mode = va_arg(ap, mode_t);                                                                            \
    va_end(ap);                                                                                           \
  }

int open(const char *p, int flags, ...) {
  MODE_ARG
  return opened(real_open(p, flags, mode), AT_FDCWD, p, flags);
}
int open64(const char *p, int flags, ...) {
  MODE_ARG
  return opened(real_open64(p, flags, mode), AT_FDCWD, p, flags);
}
int openat(int d, const char *p, int flags, ...) {
  MODE_ARG
  return opened(real_openat(d, p, flags, mode), d, p, flags);
}
int openat64(int d, const char *p, int flags, ...) {
  MODE_ARG
  return opened(real_openat64(d, p, flags, mode), d, p, flags);
}
int __open_2(const char *p, int flags) { return opened(real_open(p, flags), AT_FDCWD, p, flags); }
int __open64_2(const char *p, int flags) { return opened(real_open64(p, flags), AT_FDCWD, p, flags); }

int close(int fd) {
  if (fd >= 0 && fd < MAX_FD && paths[fd]) {
    pthread_mutex_lock(&lock);
    free(paths[fd]);
    paths[fd] = NULL;
    pthread_mutex_unlock(&lock);
  }
  return real_close(fd);
}

static const char *tracked(int fd) { return fd >= 0 && fd < MAX_FD ? paths[fd] : NULL; }

static ssize_t wrote(int fd, const void *buf, ssize_t n, off_t off) {
  if (n > 0) record(is_ack(paths[fd]) ? 'A' : 'W', paths[fd], NULL, off, buf, (uint32_t)n);
  return n;
}

ssize_t write(int fd, const void *buf, size_t n) {
  if (!tracked(fd)) return real_write(fd, buf, n);
  pthread_mutex_lock(&lock);
  off_t off = lseek(fd, 0, SEEK_CUR);
  ssize_t r = wrote(fd, buf, real_write(fd, buf, n), off);
  pthread_mutex_unlock(&lock);
  return r;
}
#define PWRITE(name, real)                                                                                \
  ssize_t name(int fd, const void *buf, size_t n, off_t off) {                                            \
    if (!tracked(fd)) return real(fd, buf, n, off);                                                       \
    pthread_mutex_lock(&lock);                                                                            \
    ssize_t r = wrote(fd, buf, real(fd, buf, n, off), off);                                               \
    pthread_mutex_unlock(&lock);                                                                          \
    return r;                                                                                             \
  }
PWRITE(pwrite, real_pwrite)
PWRITE(pwrite64, real_pwrite64)

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  if (!tracked(fd)) return real_writev(fd, iov, cnt);
  pthread_mutex_lock(&lock);
  off_t off = lseek(fd, 0, SEEK_CUR);
  ssize_t r = real_writev(fd, iov, cnt);
  ssize_t left = r;
  for (int i = 0; i < cnt && left > 0; i++) {
    size_t n = iov[i].iov_len < (size_t)left ? iov[i].iov_len : (size_t)left;
    wrote(fd, iov[i].iov_base, (ssize_t)n, off);
    off += (off_t)n;
    left -= (ssize_t)n;
  }
  pthread_mutex_unlock(&lock);
  return r;
}

static int truncated(int fd, int r, off_t len) {
  if (r == 0) record('T', paths[fd], NULL, len, NULL, 0);
  return r;
}
int ftruncate(int fd, off_t len) {
  if (!tracked(fd)) return real_ftruncate(fd, len);
  pthread_mutex_lock(&lock);
  int r = truncated(fd, real_ftruncate(fd, len), len);
  pthread_mutex_unlock(&lock);
  return r;
}
int ftruncate64(int fd, off_t len) {
  if (!tracked(fd)) return real_ftruncate64(fd, len);
  pthread_mutex_lock(&lock);
  int r = truncated(fd, real_ftruncate64(fd, len), len);
  pthread_mutex_unlock(&lock);
  return r;
}

/* The sync is journalled after it returns: only then is what came before it durable. */
static int synced(int fd, int r) {
  if (r == 0 && tracked(fd)) {
    pthread_mutex_lock(&lock);
    record('S', paths[fd], NULL, 0, NULL, 0);
    pthread_mutex_unlock(&lock);
  }
  return r;
}
int fsync(int fd) { return synced(fd, real_fsync(fd)); }
int fdatasync(int fd) { return synced(fd, real_fdatasync(fd)); }

static int renamed(int r, char *a, char *b) {
  if (r == 0 && a && b) {
    pthread_mutex_lock(&lock);
    record('R', a, b, 0, NULL, 0);
    pthread_mutex_unlock(&lock);
  }
  free(a);
  free(b);
  return r;
}
int rename(const char *a, const char *b) {
  return renamed(real_rename(a, b), under_root(AT_FDCWD, a), under_root(AT_FDCWD, b));
}
int renameat(int da, const char *a, int db, const char *b) {
  return renamed(real_renameat(da, a, db, b), under_root(da, a), under_root(db, b));
}

static int unlinked(int r, char *a) {
  if (r == 0 && a) {
    pthread_mutex_lock(&lock);
    record('U', a, NULL, 0, NULL, 0);
    pthread_mutex_unlock(&lock);
  }
  free(a);
  return r;
}
int unlink(const char *a) { return unlinked(real_unlink(a), under_root(AT_FDCWD, a)); }
int unlinkat(int d, const char *a, int flags) { return unlinked(real_unlinkat(d, a, flags), under_root(d, a)); }
