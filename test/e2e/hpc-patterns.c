/*
 * The C side of test/e2e/hpc-patterns.test.ts, built by it with gcc: ranks writing one shared
 * file (pwrite of records, or stores through a MAP_SHARED mapping of pages) and its checker, a
 * data-set writer and random-range reader, and a stat(2) loop. Every byte of record r is
 * 1 + (r * 31 + j) % 255, never zero, so a byte some writer's data lost reads as a mismatch and
 * the record says whose it was; every 8-byte word of a data set is word() of its offset.
 */
#define _GNU_SOURCE /* statx */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned char pattern(long record, long j) { return (unsigned char)(1 + (record * 31 + j) % 255); }

/* The data-set pattern: one word per 8-byte offset, different for every seed. */
static unsigned long word(long offset, unsigned long seed) { return ((unsigned long)offset / 8 + 1) * 0x9E3779B97F4A7C15UL ^ seed; }

static void die(const char *what) { perror(what); exit(2); }

/* A barrier with the other writers: say where we are, wait for the test's go (a line on stdin). */
static void barrier(const char *reached) {
  char line[16];
  printf("%s\n", reached);
  fflush(stdout);
  if (fgets(line, sizeof line, stdin) == NULL) { fprintf(stderr, "no go after %s\n", reached); exit(2); }
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: hpc pwrite|mmapwrite|check|fill|randread|statloop PATH ...\n"); return 2; }
  const char *mode = argv[1], *path = argv[2];
  if (strcmp(mode, "pwrite") == 0) {
    /* hpc pwrite PATH RANK RANKS RECORDS RECORD_BYTES: records rank, rank + ranks, ... each read
       first (a restart reads what it overwrites), then written; fsync, then close */
    long rank = atol(argv[3]), ranks = atol(argv[4]), records = atol(argv[5]), size = atol(argv[6]);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) die("open");
    barrier("opened");
    unsigned char *buf = malloc(size);
    for (long r = rank; r < records; r += ranks) {
      if (pread(fd, buf, size, r * size) < 0) die("pread");
      for (long j = 0; j < size; j++) buf[j] = pattern(r, j);
      if (pwrite(fd, buf, size, r * size) != size) die("pwrite");
    }
    barrier("written");
    if (fsync(fd) != 0) die("fsync");
    barrier("synced");
    if (close(fd) != 0) die("close");
    return 0;
  }
  if (strcmp(mode, "mmapwrite") == 0) {
    /* hpc mmapwrite PATH RANK RANKS PAGES: pages rank, rank + ranks, ... of a file that size,
       stored through a shared mapping; msync, then unmap and close */
    long rank = atol(argv[3]), ranks = atol(argv[4]), pages = atol(argv[5]);
    long page = sysconf(_SC_PAGESIZE);
    int fd = open(path, O_RDWR);
    if (fd < 0) die("open");
    unsigned char *map = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    barrier("mapped");
    for (long p = rank; p < pages; p += ranks)
      for (long j = 0; j < page; j++) map[p * page + j] = pattern(p, j);
    barrier("stored");
    if (msync(map, pages * page, MS_SYNC) != 0) die("msync");
    barrier("synced");
    if (munmap(map, pages * page) != 0) die("munmap");
    if (close(fd) != 0) die("close");
    return 0;
  }
  if (strcmp(mode, "fill") == 0) {
    /* hpc fill PATH BYTES SEED: every 8-byte word the word() of its offset, written in place
       (no truncation: a rewrite keeps the size) */
    long bytes = atol(argv[3]);
    unsigned long seed = strtoul(argv[4], NULL, 10);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) die("open");
    long chunk = 1 << 20;
    unsigned long *buf = malloc(chunk);
    for (long at = 0; at < bytes; at += chunk) {
      long n = bytes - at < chunk ? bytes - at : chunk;
      for (long w = 0; w < n / 8; w++) buf[w] = word(at + w * 8, seed);
      if (pwrite(fd, buf, n, at) != n) die("pwrite");
    }
    if (close(fd) != 0) die("close");
    return 0;
  }
  if (strcmp(mode, "randread") == 0) {
    /* hpc randread PATH READS SEED RANDOM_SEED: READS preads of random ranges up to 1 MiB, each checked */
    long reads = atol(argv[3]);
    unsigned long seed = strtoul(argv[4], NULL, 10);
    srandom((unsigned)atol(argv[5]));
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open");
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat");
    long words = st.st_size / 8;
    unsigned long *buf = malloc(1 << 20);
    for (long i = 0; i < reads; i++) {
      long first = random() % words, count = 1 + random() % ((1 << 20) / 8);
      if (first + count > words) count = words - first;
      ssize_t got = pread(fd, buf, count * 8, first * 8);
      if (got != count * 8) { printf("pread of %ld bytes at %ld got %zd\n", count * 8, first * 8, got); return 1; }
      for (long w = 0; w < count; w++) {
        if (buf[w] == word((first + w) * 8, seed)) continue;
        printf("word at offset %ld: %lx, expected %lx\n", (first + w) * 8, buf[w], word((first + w) * 8, seed));
        return 1;
      }
    }
    close(fd);
    return 0;
  }
  if (strcmp(mode, "check") == 0) {
    /* hpc check PATH RECORDS RECORD_BYTES: the whole file, read after its own open */
    long records = atol(argv[3]), size = atol(argv[4]);
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open");
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat");
    if (st.st_size != records * size) {
      printf("size %ld, expected %ld\n", (long)st.st_size, records * size);
      return 1;
    }
    unsigned char *buf = malloc(size);
    long bad = 0;
    for (long r = 0; r < records; r++) {
      if (pread(fd, buf, size, r * size) != size) die("pread");
      for (long j = 0; j < size; j++) {
        if (buf[j] == pattern(r, j)) continue;
        if (bad++ < 5) printf("record %ld byte %ld (offset %ld): %u, expected %u\n", r, j, r * size + j, buf[j], pattern(r, j));
      }
    }
    close(fd);
    if (bad > 0) { printf("%ld bytes wrong\n", bad); return 1; }
    return 0;
  }
  if (strcmp(mode, "statloop") == 0) {
    /* hpc statloop PATH: statx of the name, asking the file system each time, until a line on
       stdin; fails if any failed */
    struct pollfd in = { .fd = 0, .events = POLLIN };
    long stats = 0, failed = 0;
    barrier("started");
    for (;;) {
      struct statx stx;
      if (statx(AT_FDCWD, path, AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &stx) != 0 && failed++ < 5)
        printf("statx %ld of %s: %s\n", stats + 1, path, strerror(errno));
      stats++;
      if (stats % 16 == 0 && poll(&in, 1, 0) > 0) break;
    }
    printf("%ld stats, %ld failed\n", stats, failed);
    return failed > 0;
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
