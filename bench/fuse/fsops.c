// Metadata load generator for bench/fuse/run.ts: plain syscalls, so the client side costs
// the same against every file system under test.
//   fsops populate DIR N          create N empty files DIR/f<i>
//   fsops lstat DIR N SECONDS     lstat DIR/f<i> round-robin; prints ops/s
//   fsops create DIR N PROCS      PROCS processes create+close N/PROCS files each in DIR/p<k>; prints ops/s
//   fsops unlink DIR N PROCS      the same files unlinked; prints ops/s
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int work(const char *mode, const char *dir, int k, int count) {
  char path[4096];
  snprintf(path, sizeof path, "%s/p%d", dir, k);
  if (!strcmp(mode, "create")) mkdir(path, 0755);
  for (int i = 0; i < count; i++) {
    snprintf(path, sizeof path, "%s/p%d/f%d", dir, k, i);
    if (!strcmp(mode, "create")) {
      int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0644);
      if (fd < 0 || close(fd) < 0) { perror(path); return 1; }
    } else if (unlink(path) < 0) { perror(path); return 1; }
  }
  if (!strcmp(mode, "unlink")) {
    snprintf(path, sizeof path, "%s/p%d", dir, k);
    rmdir(path);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: fsops MODE DIR N [SECONDS|PROCS]\n"); return 2; }
  const char *mode = argv[1], *dir = argv[2];
  int n = atoi(argv[3]);
  char path[4096];
  if (!strcmp(mode, "populate")) {
    for (int i = 0; i < n; i++) {
      snprintf(path, sizeof path, "%s/f%d", dir, i);
      int fd = open(path, O_CREAT | O_WRONLY, 0644);
      if (fd < 0 || close(fd) < 0) { perror(path); return 1; }
    }
    return 0;
  }
  if (!strcmp(mode, "lstat")) {
    double seconds = argc > 4 ? atof(argv[4]) : 3, start = now(), end = start + seconds;
    long ops = 0;
    struct stat st;
    while (1) {
      for (int i = 0; i < 256; i++, ops++) {
        snprintf(path, sizeof path, "%s/f%ld", dir, ops % n);
        if (lstat(path, &st) < 0) { perror(path); return 1; }
      }
      if (now() >= end) break;
    }
    printf("%.0f\n", ops / (now() - start));
    return 0;
  }
  int procs = argc > 4 ? atoi(argv[4]) : 1;
  double start = now();
  for (int k = 0; k < procs; k++) {
    pid_t pid = fork();
    if (pid == 0) _exit(work(mode, dir, k, n / procs));
  }
  int failed = 0, status;
  while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  if (failed) return 1;
  printf("%.0f\n", (n / procs) * procs / (now() - start));
  return 0;
}
