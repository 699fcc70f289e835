import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// A small C program for what coreutils cannot do on Debian 12: fcntl record locks
// (F_GETLK/F_SETLK/F_SETLKW), renameat2 flags, and O_TMPFILE. Compiled per test file.
const source = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>

static void on_alarm(int sig) { (void)sig; }

static struct flock range(short type, off_t start, off_t len) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type; fl.l_whence = SEEK_SET; fl.l_start = start; fl.l_len = len;
  return fl;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: prog CMD ARGS\n"); return 2; }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "hold")) {            /* hold FILE: write-lock bytes [0,100) until stdin closes */
    int fd = open(argv[2], O_RDWR);
    struct flock fl = range(F_WRLCK, 0, 100);
    if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0) { perror("hold"); return 1; }
    printf("locked %d\n", getpid()); fflush(stdout);
    char c; while (read(0, &c, 1) > 0) {}
    return 0;
  }
  if (!strcmp(cmd, "probe")) {           /* probe FILE: F_GETLK then a non-blocking F_SETLK on [50,60) */
    int fd = open(argv[2], O_RDWR);
    struct flock fl = range(F_WRLCK, 50, 10);
    if (fd < 0 || fcntl(fd, F_GETLK, &fl) < 0) { perror("getlk"); return 1; }
    printf("getlk type=%s pid=%d start=%lld len=%lld\n", fl.l_type == F_WRLCK ? "wr" : fl.l_type == F_RDLCK ? "rd" : "un",
           (int)fl.l_pid, (long long)fl.l_start, (long long)fl.l_len);
    struct flock want = range(F_WRLCK, 50, 10);
    int rc = fcntl(fd, F_SETLK, &want);
    printf("setlk %s\n", rc == 0 ? "ok" : (errno == EAGAIN || errno == EACCES) ? "busy" : strerror(errno));
    struct flock free_range = range(F_WRLCK, 200, 10);
    rc = fcntl(fd, F_SETLK, &free_range);
    printf("setlk-free %s\n", rc == 0 ? "ok" : strerror(errno));
    return 0;
  }
  if (!strcmp(cmd, "setlkw")) {          /* setlkw FILE: blocking lock on [0,100), interrupted by an alarm after 1 s */
    int fd = open(argv[2], O_RDWR);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    struct flock fl = range(F_WRLCK, 0, 100);
    int rc = fcntl(fd, F_SETLKW, &fl);
    printf("setlkw %s\n", rc == 0 ? "ok" : errno == EINTR ? "EINTR" : strerror(errno));
    return 0;
  }
  if (!strcmp(cmd, "exchange") || !strcmp(cmd, "noreplace")) {  /* exchange|noreplace A B */
    unsigned flags = !strcmp(cmd, "exchange") ? RENAME_EXCHANGE : RENAME_NOREPLACE;
    if (renameat2(AT_FDCWD, argv[2], AT_FDCWD, argv[3], flags) < 0) { printf("%s\n", strerror(errno)); return 1; }
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "tmpfile")) {         /* tmpfile DIR NAME: O_TMPFILE, write, then link it in as NAME */
    int fd = open(argv[2], O_TMPFILE | O_RDWR, 0640);
    if (fd < 0) { printf("open %s\n", strerror(errno)); return 1; }
    if (write(fd, "tmp", 3) != 3) { perror("write"); return 1; }
    char path[64]; snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    char target[4096]; snprintf(target, sizeof target, "%s/%s", argv[2], argv[3]);
    if (linkat(AT_FDCWD, path, AT_FDCWD, target, AT_SYMLINK_FOLLOW) < 0) { printf("link %s\n", strerror(errno)); return 1; }
    printf("ok\n");
    return 0;
  }
  fprintf(stderr, "unknown command %s\n", cmd);
  return 2;
}
`;

export interface Program {
  path: string;
  remove(): void;
}

/** Compiles the helper program into a fresh /tmp directory. */
export function compileProgram(): Program {
  const dir = mkdtempSync('/tmp/strata-fuse-prog-');
  writeFileSync(join(dir, 'prog.c'), source);
  execFileSync('gcc', ['-O1', '-o', join(dir, 'prog'), join(dir, 'prog.c')], { stdio: 'pipe' });
  return { path: join(dir, 'prog'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
