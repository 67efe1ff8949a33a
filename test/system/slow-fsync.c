/*
 * LD_PRELOAD shim for the system test (scripts/test-system.sh): a slow SD card. Every fsync(2) and
 * fdatasync(2) does the real call and then sleeps SLOW_FSYNC_MIN_MS..SLOW_FSYNC_MAX_MS (default
 * 1000..2000 ms) before returning, so the caller is held exactly as by a card whose flush takes that
 * long. Each stall is reported on stderr (the journal, under systemd) so the test can count them.
 * Build: gcc -shared -fPIC -O2 -o slow-fsync.so slow-fsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long env_ms(const char *name, long dflt) {
  const char *v = getenv(name);
  return v && *v ? strtol(v, NULL, 10) : dflt;
}

static void stall(const char *what, int fd) {
  long lo = env_ms("SLOW_FSYNC_MIN_MS", 1000), hi = env_ms("SLOW_FSYNC_MAX_MS", 2000);
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long ms = hi > lo ? lo + (long)((unsigned long)(now.tv_nsec ^ (now.tv_sec * 2654435761u)) % (unsigned long)(hi - lo + 1)) : lo;
  struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&d, &d) != 0) {}
  fprintf(stderr, "slow-fsync: %s(fd %d) held %ld ms\n", what, fd, ms);
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  int r = real(fd);
  stall("fsync", fd);
  return r;
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  int r = real(fd);
  stall("fdatasync", fd);
  return r;
}
