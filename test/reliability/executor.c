// StrataFS reliability suite: the differential tester's executor.
//
// A long-lived process that runs file system operations under one root
// directory, read one per line on stdin, answering one line per request on
// stdout. It exists because Node lacks several syscalls the tester needs
// (renameat2, fallocate, utimensat with nanoseconds, xattrs, per-operation
// uid/gid switching) and because it reports the exact errno of every call.
//
// Request:  !base NAME | !tree | !probe-punch           (control, run as root)
//           WHO VERB ARGS...                            (WHO = identity index)
// Reply:    ok [VALUES...]  |  err ENAME
//
// Identities: index 0 is root; each --user UID:GID:G1,G2 adds one more. The
// process keeps saved uid 0 so it can switch identity per operation; with a
// non-zero effective uid the kernel clears the effective capabilities, so each
// operation is checked exactly as for an unprivileged process.
//
// --plant BUG makes this executor deliberately wrong, so tests can prove that
// the differential tester notices a file system that misbehaves.
#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 16
#define MAX_USERS 8
#define MAX_GROUPS 8
#define MAX_ARGS 16
#define LINE_BYTES 65536
#define OUT_BYTES (1 << 20)
#define XATTR_LIST_BYTES 65536
#define XATTR_VALUE_BYTES 65536
#define MTIME_OLD_BEFORE_SEC 1000000000

struct identity {
  uid_t uid;
  gid_t gid;
  int groupCount;
  gid_t groups[MAX_GROUPS];
};

static struct identity users[MAX_USERS];
static int userCount = 1; // index 0 = root
static int currentUser = 0;
static int slots[MAX_SLOTS];
static int rootFd = -1;
static int baseFd = -1;
static const char *plant = "";
static int compareMtime = 1;
static int maskFileSetid = 0;
static char out[OUT_BYTES];
static size_t outLen = 0;
static unsigned char ioBuffer[1 << 20];

static void die(const char *what) {
  fprintf(stderr, "executor: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...) {
  if (outLen >= OUT_BYTES - 1) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out + outLen, OUT_BYTES - outLen, fmt, ap);
  va_end(ap);
  if (n > 0) outLen += (size_t)n < OUT_BYTES - outLen ? (size_t)n : OUT_BYTES - outLen - 1;
}

static int fail(void) {
  const char *name = strerrorname_np(errno);
  outLen = 0;
  if (name) emit("err %s", name);
  else emit("err E%d", errno);
  return -1;
}

static int planted(const char *bug) { return strcmp(plant, bug) == 0; }

// Deterministic file contents: the same (seed, length) always gives the same
// bytes on both sides, and a request line stays short.
static void fillPattern(unsigned char *buf, size_t len, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 0x9e3779b9u;
  if (x == 0) x = 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (unsigned char)(x >> 24);
  }
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t len) {
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static void becomeUser(int index) {
  if (index == currentUser) return;
  const struct identity *id = &users[index];
  if (seteuid(0) != 0) die("seteuid(0)");
  if (setgroups((size_t)id->groupCount, id->groups) != 0) die("setgroups");
  if (setresgid(id->gid, id->gid, 0) != 0) die("setresgid");
  if (setresuid(id->uid, id->uid, 0) != 0) die("setresuid");
  currentUser = index;
}

static const char *typeName(mode_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "dir";
  if (S_ISLNK(mode)) return "symlink";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISCHR(mode)) return "char";
  if (S_ISBLK(mode)) return "block";
  if (S_ISSOCK(mode)) return "sock";
  return "other";
}

// Only the fields POSIX defines and both sides must agree on: never inode
// numbers, st_dev, st_blocks, or a directory's size (file-system specific).
static void emitStat(const struct stat *st) {
  // --mask-file-setid: leave S_ISUID/S_ISGID of non-directories out (a target with a
  // known set-id clearing issue); directories keep them (setgid inheritance).
  unsigned shown = S_ISDIR(st->st_mode) || !maskFileSetid ? 07777 : 01777;
  emit(" %s %04o %lu %u %u", typeName(st->st_mode), (unsigned)(st->st_mode & shown),
       (unsigned long)st->st_nlink, (unsigned)st->st_uid, (unsigned)st->st_gid);
  if (S_ISDIR(st->st_mode)) emit(" -");
  else emit(" %lld", (long long)st->st_size);
  if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
    emit(" r:%u,%u", major(st->st_rdev), minor(st->st_rdev));
  // Times are compared by class, not value: the generator only ever sets
  // explicit times before 2001 (MTIME_OLD_BEFORE_SEC), so "old" means the last
  // change was an explicit utimes and "new" that something touched it since.
  // A FIFO's times are left out: pipe I/O stamps them in the kernel's inode only, and FUSE
  // marks its inodes S_NOCMTIME, so a FUSE FIFO keeps its times while tmpfs moves them.
  if (compareMtime && !S_ISFIFO(st->st_mode))
    emit(" m:%s", st->st_mtim.tv_sec < MTIME_OLD_BEFORE_SEC ? "old" : "new");
}

static int parseInt(const char *s, long long *v) {
  char *end;
  errno = 0;
  *v = strtoll(s, &end, 0);
  if (errno != 0 || *end != '\0') {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

static int slotFd(const char *arg, int *slot) {
  long long v;
  if (parseInt(arg, &v) != 0 || v < 0 || v >= MAX_SLOTS) {
    errno = EINVAL;
    return -1;
  }
  *slot = (int)v;
  if (slots[v] < 0) {
    errno = EBADF;
    return -1;
  }
  return slots[v];
}

static int parseOpenFlags(const char *spec, int *flags) {
  char copy[256];
  snprintf(copy, sizeof copy, "%s", spec);
  *flags = 0;
  for (char *tok = strtok(copy, "+"); tok; tok = strtok(NULL, "+")) {
    if (!strcmp(tok, "r")) *flags |= O_RDONLY;
    else if (!strcmp(tok, "w")) *flags |= O_WRONLY;
    else if (!strcmp(tok, "rw")) *flags |= O_RDWR;
    else if (!strcmp(tok, "creat")) *flags |= O_CREAT;
    else if (!strcmp(tok, "excl")) *flags |= O_EXCL;
    else if (!strcmp(tok, "trunc")) *flags |= O_TRUNC;
    else if (!strcmp(tok, "append")) *flags |= planted("append-ignored") ? 0 : O_APPEND;
    else if (!strcmp(tok, "directory")) *flags |= O_DIRECTORY;
    else if (!strcmp(tok, "tmpfile")) *flags |= O_TMPFILE;
    else if (!strcmp(tok, "nofollow")) *flags |= O_NOFOLLOW;
    else {
      errno = EINVAL;
      return -1;
    }
  }
  return 0;
}

static int hashFd(int fd, uint64_t *hash, long long *total) {
  *hash = FNV_INIT;
  *total = 0;
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, ioBuffer, sizeof ioBuffer, off);
    if (n < 0) return -1;
    if (n == 0) return 0;
    *hash = fnv1a(*hash, ioBuffer, (size_t)n);
    *total += n;
    off += n;
  }
}

static int cmpNames(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

// Sorted user.* and trusted.* xattr names of a path (trusted.* only when root
// asks), comma-joined into dst. Other namespaces (security.*, system.*) belong
// to the host's modules and ACLs, not to the file system under test.
static int listUserXattrs(const char *path, int noFollow, char *dst, size_t dstLen) {
  static char list[XATTR_LIST_BYTES];
  char *names[512];
  int count = 0;
  ssize_t n = noFollow ? llistxattr(path, list, sizeof list) : listxattr(path, list, sizeof list);
  if (n < 0) return -1;
  for (ssize_t i = 0; i < n && count < 512; i += (ssize_t)strlen(list + i) + 1) {
    if (strncmp(list + i, "user.", 5) == 0 || strncmp(list + i, "trusted.", 8) == 0)
      names[count++] = list + i;
  }
  qsort(names, (size_t)count, sizeof names[0], cmpNames);
  dst[0] = '\0';
  size_t used = 0;
  for (int i = 0; i < count; i++) {
    int w = snprintf(dst + used, dstLen - used, "%s%s", i ? "," : "", names[i]);
    if (w < 0 || (size_t)w >= dstLen - used) break;
    used += (size_t)w;
  }
  if (count == 0) snprintf(dst, dstLen, "-");
  return 0;
}

// /proc/self/fd/N/REL names a path relative to the base directory for the
// path-only xattr calls (there is no *xattrat before Linux 6.13 in glibc).
static void basePath(char *dst, size_t len, const char *rel) {
  snprintf(dst, len, "/proc/self/fd/%d/%s", baseFd, rel);
}

#include "executor-track.h"
#include "executor-acl.h"

static void treeWalk(int dirFd, const char *prefix) {
  // A fresh open, never dup(): a dup shares the directory offset, and the next
  // walk would start where this one ended and see nothing.
  int walkFd = openat(dirFd, ".", O_RDONLY | O_DIRECTORY);
  DIR *dir = walkFd >= 0 ? fdopendir(walkFd) : NULL;
  if (!dir) {
    if (walkFd >= 0) close(walkFd);
    emit(" %s:opendir-%s;", prefix, strerrorname_np(errno));
    return;
  }
  char *names[1024];
  int count = 0;
  struct dirent *de;
  while ((de = readdir(dir)) != NULL && count < 1024) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    names[count++] = strdup(de->d_name);
  }
  closedir(dir);
  qsort(names, (size_t)count, sizeof names[0], cmpNames);
  for (int i = 0; i < count; i++) {
    char rel[4096];
    snprintf(rel, sizeof rel, "%s%s%s", prefix, prefix[0] ? "/" : "", names[i]);
    struct stat st;
    if (fstatat(dirFd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
      emit(" %s:stat-%s;", rel, strerrorname_np(errno));
      free(names[i]);
      continue;
    }
    emit(" %s", rel);
    emitStat(&st);
    if (S_ISREG(st.st_mode)) {
      int fd = openat(dirFd, names[i], O_RDONLY | O_NOFOLLOW);
      uint64_t hash;
      long long total;
      if (fd < 0 || hashFd(fd, &hash, &total) != 0) emit(" read-%s", strerrorname_np(errno));
      else emit(" %016llx/%lld", (unsigned long long)hash, total);
      if (fd >= 0) close(fd);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlinkat(dirFd, names[i], target, sizeof target - 1);
      if (n < 0) emit(" readlink-%s", strerrorname_np(errno));
      else emit(" ->%.*s", (int)n, target);
    }
    if (!S_ISLNK(st.st_mode)) {
      char path[4200], xattrs[4096];
      basePath(path, sizeof path, rel);
      if (listUserXattrs(path, 1, xattrs, sizeof xattrs) != 0) emit(" x:%s", strerrorname_np(errno));
      else {
        emit(" x:%s", xattrs);
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", xattrs);
        for (char *name = strtok(copy, ","); name && strcmp(name, "-"); name = strtok(NULL, ",")) {
          static unsigned char value[XATTR_VALUE_BYTES];
          ssize_t n = lgetxattr(path, name, value, sizeof value);
          if (n < 0) emit("=%s", strerrorname_np(errno));
          else emit("=%016llx", (unsigned long long)fnv1a(FNV_INIT, value, (size_t)n));
        }
      }
      emitAcls(path);
    }
    emit(";");
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirFd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (sub >= 0) {
        treeWalk(sub, rel);
        close(sub);
      } else emit(" %s:open-%s;", rel, strerrorname_np(errno));
    }
    free(names[i]);
  }
}

static void closeSlots(void) {
  for (int i = 0; i < MAX_SLOTS; i++) {
    if (slots[i] >= 0) close(slots[i]);
    slots[i] = -1;
  }
}

static int control(char **argv, int argc) {
  becomeUser(0);
  if (!strcmp(argv[0], "!base") && argc == 2) {
    closeSlots();
    umask(0);
    if (baseFd >= 0) close(baseFd);
    baseFd = -1;
    if (mkdirat(rootFd, argv[1], 0777) != 0) return fail();
    baseFd = openat(rootFd, argv[1], O_RDONLY | O_DIRECTORY);
    if (baseFd < 0) return fail();
    // World-writable and sticky, like /tmp, so every identity can create here
    // and the sticky-bit rules apply from the first operation.
    if (fchmod(baseFd, 01777) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(argv[0], "!tree") && argc == 1) {
    if (baseFd < 0) {
      errno = EBADF;
      return fail();
    }
    emit("ok");
    treeWalk(baseFd, "");
    return 0;
  }
  if (!strcmp(argv[0], "!probe-punch") && argc == 1) {
    const char *name = ".strata-probe-punch";
    int fd = openat(rootFd, name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return fail();
    memset(ioBuffer, 1, 8192);
    int rc = pwrite(fd, ioBuffer, 8192, 0) == 8192 ? 0 : -1;
    if (rc == 0) rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
    int saved = errno;
    close(fd);
    unlinkat(rootFd, name, 0);
    errno = saved;
    if (rc != 0) return fail();
    emit("ok");
    return 0;
  }
  errno = EINVAL;
  return fail();
}

#define NEED(n)                                                                                    \
  do {                                                                                             \
    if (argc != (n)) {                                                                             \
      errno = EINVAL;                                                                              \
      return fail();                                                                               \
    }                                                                                              \
  } while (0)
#define INT(i, var)                                                                                \
  long long var;                                                                                   \
  if (parseInt(argv[i], &var) != 0) return fail()

static int fileOp(const char *verb, char **argv, int argc);
static int pathOp(const char *verb, char **argv, int argc);

static int operation(char **argv, int argc) {
  long long who;
  // "2t": identity 2, and report which timestamps the operation changed (executor-track.h).
  char whoText[32];
  snprintf(whoText, sizeof whoText, "%s", argc > 0 ? argv[0] : "");
  size_t whoLen = strlen(whoText);
  int trackTimes = whoLen > 1 && whoText[whoLen - 1] == 't';
  if (trackTimes) whoText[whoLen - 1] = '\0';
  if (argc < 2 || parseInt(whoText, &who) != 0 || who < 0 || who >= userCount) {
    errno = EINVAL;
    return fail();
  }
  if (baseFd < 0) {
    errno = EBADF;
    return fail();
  }
  if (trackTimes) {
    becomeUser(0);
    trackBefore(argv[1], argv + 2, argc - 2);
  }
  becomeUser((int)who);
  int rc = fileOp(argv[1], argv + 2, argc - 2);
  if (rc == 1) rc = pathOp(argv[1], argv + 2, argc - 2);
  if (rc == 1) {
    errno = ENOSYS;
    rc = fail();
  }
  // A permission bug: the file system lets anyone do anything.
  if (rc != 0 && planted("perm-bypass") && (errno == EACCES || errno == EPERM) && who != 0) {
    outLen = 0;
    becomeUser(0);
    rc = fileOp(argv[1], argv + 2, argc - 2);
    if (rc == 1) rc = pathOp(argv[1], argv + 2, argc - 2);
  }
  if (trackTimes) {
    int saved = errno;
    becomeUser(0);
    trackAfter();
    errno = saved;
  }
  return rc;
}

// Operations on an open handle slot. Returns 1 when the verb is not one of them.
static int fileOp(const char *verb, char **argv, int argc) {
  int slot, fd;
  if (!strcmp(verb, "open")) {
    NEED(4);
    INT(0, s);
    INT(3, mode);
    int flags;
    if (s < 0 || s >= MAX_SLOTS) {
      errno = EINVAL;
      return fail();
    }
    if (parseOpenFlags(argv[2], &flags) != 0) return fail();
    if (slots[s] >= 0) close(slots[s]);
    slots[s] = -1;
    // A FIFO would block the open (and the whole run) without a peer: open it
    // non-blocking, as on both sides alike; regular files keep their flags.
    struct stat st;
    if (fstatat(baseFd, argv[1], &st, 0) == 0 && S_ISFIFO(st.st_mode)) flags |= O_NONBLOCK;
    fd = openat(baseFd, argv[1], flags | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) return fail();
    slots[s] = fd;
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "copyrange")) {
    // copy_file_range as cp does it: repeat until the length is copied or a call copies 0.
    NEED(5);
    INT(2, offIn);
    INT(3, offOut);
    INT(4, len);
    int out;
    if ((fd = slotFd(argv[0], &slot)) < 0 || (out = slotFd(argv[1], &slot)) < 0) return fail();
    loff_t in = (loff_t)offIn, to = (loff_t)offOut;
    long long total = 0;
    while (total < len) {
      ssize_t n = copy_file_range(fd, &in, out, &to, (size_t)(len - total), 0);
      if (n < 0) return fail();
      if (n == 0) break;
      total += n;
    }
    emit("ok %lld", total);
    return 0;
  }
  if (!strcmp(verb, "mmapwrite")) {
    // A shared writable mapping, stores, msync(MS_SYNC): how databases and editors write.
    // Only inside the file (a store past EOF is SIGBUS): answered "ok outside" otherwise.
    NEED(4);
    INT(1, off);
    INT(2, len);
    INT(3, seed);
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    struct stat st;
    if (fstat(fd, &st) != 0) return fail();
    if (len <= 0 || off < 0 || off + len > st.st_size || len > (long long)sizeof ioBuffer) {
      emit("ok outside");
      return 0;
    }
    long page = sysconf(_SC_PAGESIZE);
    off_t start = (off_t)(off / page * page);
    size_t span = (size_t)(off + len - start);
    unsigned char *map = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, start);
    if (map == MAP_FAILED) return fail();
    fillPattern(ioBuffer, (size_t)len, (uint32_t)seed);
    memcpy(map + (off - start), ioBuffer, (size_t)len);
    int rc = msync(map, span, MS_SYNC);
    int saved = errno;
    munmap(map, span);
    errno = saved;
    if (rc != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "flink")) {
    // Names an open file (an O_TMPFILE one above all) the way programs do without
    // CAP_DAC_READ_SEARCH: linkat of /proc/self/fd/N with AT_SYMLINK_FOLLOW.
    NEED(2);
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, baseFd, argv[1], AT_SYMLINK_FOLLOW) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "umask")) {
    // The process umask for later creates (requests carry it to FUSE file systems).
    NEED(1);
    INT(0, mask);
    umask((mode_t)mask & 0777);
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "close")) {
    NEED(1);
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    slots[slot] = -1;
    if (close(fd) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "write")) {
    NEED(4);
    INT(2, len);
    INT(3, seed);
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    if (len < 0 || len > (long long)sizeof ioBuffer) {
      errno = EINVAL;
      return fail();
    }
    fillPattern(ioBuffer, (size_t)len, (uint32_t)seed);
    ssize_t n;
    if (!strcmp(argv[1], "-")) n = write(fd, ioBuffer, (size_t)len);
    else {
      INT(1, off);
      n = pwrite(fd, ioBuffer, (size_t)len, (off_t)off);
    }
    if (n < 0) return fail();
    emit("ok %zd", n);
    return 0;
  }
  if (!strcmp(verb, "read")) {
    NEED(3);
    INT(2, len);
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    if (len < 0 || len > (long long)sizeof ioBuffer) {
      errno = EINVAL;
      return fail();
    }
    ssize_t n;
    if (!strcmp(argv[1], "-")) n = read(fd, ioBuffer, (size_t)len);
    else {
      INT(1, off);
      n = pread(fd, ioBuffer, (size_t)len, (off_t)off);
    }
    if (n < 0) return fail();
    emit("ok %zd %016llx", n, (unsigned long long)fnv1a(FNV_INIT, ioBuffer, (size_t)n));
    return 0;
  }
  if (!strcmp(verb, "ftrunc")) {
    NEED(2);
    INT(1, len);
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    if (planted("short-truncate") && len > 0) len--;
    if (ftruncate(fd, (off_t)len) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "falloc")) {
    NEED(4);
    INT(2, off);
    INT(3, len);
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    int mode = 0;
    if (!strcmp(argv[1], "keep")) mode = FALLOC_FL_KEEP_SIZE;
    else if (!strcmp(argv[1], "punch")) mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    else if (strcmp(argv[1], "0")) {
      errno = EINVAL;
      return fail();
    }
    if (fallocate(fd, mode, (off_t)off, (off_t)len) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "fsync") || !strcmp(verb, "fdatasync")) {
    NEED(1);
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    if ((verb[1] == 's' ? fsync(fd) : fdatasync(fd)) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "fstat")) {
    NEED(1);
    struct stat st;
    if ((fd = slotFd(argv[0], &slot)) < 0) return fail();
    if (fstat(fd, &st) != 0) return fail();
    emit("ok");
    emitStat(&st);
    return 0;
  }
  return 1;
}

static int renameFlags(const char *spec, unsigned *flags) {
  if (!strcmp(spec, "0")) *flags = 0;
  else if (!strcmp(spec, "noreplace")) *flags = RENAME_NOREPLACE;
  else if (!strcmp(spec, "exchange")) *flags = RENAME_EXCHANGE;
  else {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

static int xattrFlags(const char *spec, int *flags) {
  if (!strcmp(spec, "0")) *flags = 0;
  else if (!strcmp(spec, "create")) *flags = XATTR_CREATE;
  else if (!strcmp(spec, "replace")) *flags = XATTR_REPLACE;
  else {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

static void emitTime(const struct timespec *ts) {
  emit(" %lld.%09ld", (long long)ts->tv_sec, ts->tv_nsec);
}

static int parseTime(const char *sec, const char *nsec, struct timespec *ts) {
  long long s, ns;
  if (!strcmp(nsec, "now")) {
    ts->tv_sec = 0;
    ts->tv_nsec = UTIME_NOW;
    return 0;
  }
  if (!strcmp(nsec, "omit")) {
    ts->tv_sec = 0;
    ts->tv_nsec = UTIME_OMIT;
    return 0;
  }
  if (parseInt(sec, &s) != 0 || parseInt(nsec, &ns) != 0) return -1;
  ts->tv_sec = (time_t)s;
  ts->tv_nsec = (long)ns;
  return 0;
}

// Operations on paths relative to the base directory. Returns 1 when unknown.
static int pathOp(const char *verb, char **argv, int argc) {
  if (!strcmp(verb, "stat") || !strcmp(verb, "statf")) {
    NEED(1);
    struct stat st;
    if (fstatat(baseFd, argv[0], &st, verb[4] == 'f' ? 0 : AT_SYMLINK_NOFOLLOW) != 0) return fail();
    emit("ok");
    emitStat(&st);
    return 0;
  }
  if (!strcmp(verb, "trunc")) {
    NEED(2);
    INT(1, len);
    char path[4200];
    basePath(path, sizeof path, argv[0]);
    if (planted("short-truncate") && len > 0) len--;
    if (truncate(path, (off_t)len) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "mkdir")) {
    NEED(2);
    INT(1, mode);
    if (mkdirat(baseFd, argv[0], (mode_t)mode) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "rmdir") || !strcmp(verb, "unlink")) {
    NEED(1);
    if (unlinkat(baseFd, argv[0], verb[0] == 'r' ? AT_REMOVEDIR : 0) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "link")) {
    NEED(2);
    if (linkat(baseFd, argv[0], baseFd, argv[1], 0) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "symlink")) {
    NEED(2);
    if (symlinkat(argv[0], baseFd, argv[1]) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "readlink")) {
    NEED(1);
    char target[4096];
    ssize_t n = readlinkat(baseFd, argv[0], target, sizeof target - 1);
    if (n < 0) return fail();
    emit("ok %.*s", (int)n, target);
    return 0;
  }
  if (!strcmp(verb, "rename")) {
    NEED(3);
    unsigned flags;
    if (renameFlags(argv[2], &flags) != 0) return fail();
    if (planted("exchange-as-rename") && flags == RENAME_EXCHANGE) flags = 0;
    if (renameat2(baseFd, argv[0], baseFd, argv[1], flags) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "chmod")) {
    NEED(2);
    INT(1, mode);
    if (fchmodat(baseFd, argv[0], (mode_t)mode, 0) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "chown") || !strcmp(verb, "chownf")) {
    NEED(3);
    INT(1, uid);
    INT(2, gid);
    int follow = verb[5] == 'f';
    if (fchownat(baseFd, argv[0], (uid_t)uid, (gid_t)gid, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0)
      return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "utimes") || !strcmp(verb, "lutimes")) {
    NEED(5);
    struct timespec ts[2];
    int flags = verb[0] == 'l' ? AT_SYMLINK_NOFOLLOW : 0;
    if (parseTime(argv[1], argv[2], &ts[0]) != 0 || parseTime(argv[3], argv[4], &ts[1]) != 0)
      return fail();
    if (utimensat(baseFd, argv[0], ts, flags) != 0) return fail();
    // Explicit times must read back exactly; "now" and "omit" are not compared.
    struct stat st;
    if (fstatat(baseFd, argv[0], &st, flags) != 0) return fail();
    emit("ok");
    if (ts[0].tv_nsec != UTIME_NOW && ts[0].tv_nsec != UTIME_OMIT) emitTime(&st.st_atim);
    if (ts[1].tv_nsec != UTIME_NOW && ts[1].tv_nsec != UTIME_OMIT) emitTime(&st.st_mtim);
    return 0;
  }
  if (!strcmp(verb, "mknod")) {
    NEED(3);
    INT(2, mode);
    mode_t type;
    dev_t dev = 0;
    if (!strcmp(argv[1], "fifo")) type = S_IFIFO;
    else if (!strcmp(argv[1], "sock")) type = S_IFSOCK;
    else if (!strcmp(argv[1], "reg")) type = S_IFREG;
    else if (!strcmp(argv[1], "char")) type = S_IFCHR, dev = makedev(1, 3);
    else if (!strcmp(argv[1], "block")) type = S_IFBLK, dev = makedev(259, 77);
    else {
      errno = EINVAL;
      return fail();
    }
    if (mknodat(baseFd, argv[0], type | (mode_t)mode, dev) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "deep")) {
    // A chain of LEVELS directories with 250-byte names under PATH and a file at the
    // bottom, made through descriptors: paths near PATH_MAX that no single call names.
    NEED(2);
    INT(1, levels);
    char name[251];
    memset(name, 'd', 250);
    name[250] = '\0';
    int dir = openat(baseFd, argv[0], O_RDONLY | O_DIRECTORY);
    if (dir < 0) return fail();
    for (long long i = 0; i < levels; i++) {
      int next = mkdirat(dir, name, 0755) == 0 || errno == EEXIST ? openat(dir, name, O_RDONLY | O_DIRECTORY) : -1;
      int saved = errno;
      close(dir);
      errno = saved;
      if (next < 0) return fail();
      dir = next;
    }
    int fd = openat(dir, "bottom", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int saved = errno;
    close(dir);
    errno = saved;
    if (fd < 0) return fail();
    fillPattern(ioBuffer, 1000, (uint32_t)levels);
    ssize_t n = write(fd, ioBuffer, 1000);
    saved = errno;
    close(fd);
    errno = saved;
    if (n < 0) return fail();
    emit("ok %zd", n);
    return 0;
  }
  if (!strcmp(verb, "access")) {
    NEED(2);
    INT(1, mode);
    if (faccessat(baseFd, argv[0], (int)mode, 0) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "readdir")) {
    NEED(1);
    int fd = openat(baseFd, argv[0], O_RDONLY | O_DIRECTORY);
    if (fd < 0) return fail();
    DIR *dir = fdopendir(fd);
    if (!dir) {
      int saved = errno;
      close(fd);
      errno = saved;
      return fail();
    }
    char *names[1024];
    int count = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && count < 1024) {
      if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names[count++] = strdup(de->d_name);
    }
    closedir(dir);
    qsort(names, (size_t)count, sizeof names[0], cmpNames);
    emit("ok ");
    for (int i = 0; i < count; i++) {
      emit("%s%s", i ? "," : "", names[i]);
      free(names[i]);
    }
    if (count == 0) emit("-");
    return 0;
  }
  char path[4200];
  if (!strcmp(verb, "setxattr") || !strcmp(verb, "lsetxattr")) {
    NEED(5);
    INT(2, len);
    INT(3, seed);
    int flags;
    if (xattrFlags(argv[4], &flags) != 0) return fail();
    if (len < 0 || len > (long long)sizeof ioBuffer) {
      errno = EINVAL;
      return fail();
    }
    fillPattern(ioBuffer, (size_t)len, (uint32_t)seed);
    basePath(path, sizeof path, argv[0]);
    int rc = verb[0] == 'l' ? lsetxattr(path, argv[1], ioBuffer, (size_t)len, flags)
                            : setxattr(path, argv[1], ioBuffer, (size_t)len, flags);
    if (rc != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "setacl")) {
    NEED(3);
    const char *name = aclName(argv[1]);
    size_t len;
    if (!name || aclEncode(argv[2], ioBuffer, &len) != 0) {
      errno = EINVAL;
      return fail();
    }
    basePath(path, sizeof path, argv[0]);
    if (setxattr(path, name, ioBuffer, len, 0) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "rmacl")) {
    NEED(2);
    const char *name = aclName(argv[1]);
    if (!name) {
      errno = EINVAL;
      return fail();
    }
    basePath(path, sizeof path, argv[0]);
    if (removexattr(path, name) != 0) return fail();
    emit("ok");
    return 0;
  }
  if (!strcmp(verb, "getxattr")) {
    // An optional buffer size: 0 asks for the length only, a short one must give ERANGE.
    if (argc != 2 && argc != 3) {
      errno = EINVAL;
      return fail();
    }
    long long size = XATTR_VALUE_BYTES;
    if (argc == 3 && parseInt(argv[2], &size) != 0) return fail();
    if (size < 0 || size > XATTR_VALUE_BYTES) size = XATTR_VALUE_BYTES;
    basePath(path, sizeof path, argv[0]);
    ssize_t n = getxattr(path, argv[1], size ? ioBuffer : NULL, (size_t)size);
    if (n < 0) return fail();
    if (size == 0) emit("ok %zd", n);
    else emit("ok %zd %016llx", n, (unsigned long long)fnv1a(FNV_INIT, ioBuffer, (size_t)n));
    return 0;
  }
  if (!strcmp(verb, "listsize")) {
    // listxattr with a buffer of SIZE bytes (0: the length needed): the raw answer, not
    // filtered to user.*, since what the size covers is the point.
    NEED(2);
    INT(1, size);
    static char names[XATTR_LIST_BYTES];
    if (size < 0 || size > XATTR_LIST_BYTES) size = XATTR_LIST_BYTES;
    basePath(path, sizeof path, argv[0]);
    ssize_t n = listxattr(path, size ? names : NULL, (size_t)size);
    if (n < 0) return fail();
    emit("ok %zd", n);
    return 0;
  }
  if (!strcmp(verb, "listxattr")) {
    NEED(1);
    char names[4096];
    basePath(path, sizeof path, argv[0]);
    if (listUserXattrs(path, 0, names, sizeof names) != 0) return fail();
    emit("ok %s", names);
    return 0;
  }
  if (!strcmp(verb, "removexattr")) {
    NEED(2);
    basePath(path, sizeof path, argv[0]);
    if (removexattr(path, argv[1]) != 0) return fail();
    emit("ok");
    return 0;
  }
  return 1;
}

static void parseUser(const char *spec) {
  if (userCount >= MAX_USERS) {
    fprintf(stderr, "executor: too many --user\n");
    exit(2);
  }
  struct identity *id = &users[userCount++];
  char copy[256];
  snprintf(copy, sizeof copy, "%s", spec);
  char *groups = NULL;
  char *colon = strchr(copy, ':');
  if (!colon) goto bad;
  *colon = '\0';
  id->uid = (uid_t)strtoul(copy, NULL, 10);
  char *gidText = colon + 1;
  colon = strchr(gidText, ':');
  if (colon) {
    *colon = '\0';
    groups = colon + 1;
  }
  id->gid = (gid_t)strtoul(gidText, NULL, 10);
  id->groupCount = 0;
  for (char *g = groups ? strtok(groups, ",") : NULL; g && id->groupCount < MAX_GROUPS;
       g = strtok(NULL, ","))
    id->groups[id->groupCount++] = (gid_t)strtoul(g, NULL, 10);
  return;
bad:
  fprintf(stderr, "executor: --user wants UID:GID[:G1,G2], got %s\n", spec);
  exit(2);
}

int main(int argc, char **argv) {
  const char *root = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--user") && i + 1 < argc) parseUser(argv[++i]);
    else if (!strcmp(argv[i], "--plant") && i + 1 < argc) plant = argv[++i];
    else if (!strcmp(argv[i], "--no-mtime")) compareMtime = 0;
    else if (!strcmp(argv[i], "--mask-file-setid")) maskFileSetid = 1;
    else if (!root) root = argv[i];
    else {
      fprintf(stderr, "usage: executor ROOT [--user UID:GID[:G1,G2]]... [--plant BUG] [--no-mtime] [--mask-file-setid]\n");
      return 2;
    }
  }
  if (!root) {
    fprintf(stderr, "usage: executor ROOT [--user UID:GID[:G1,G2]]... [--plant BUG] [--no-mtime] [--mask-file-setid]\n");
    return 2;
  }
  users[0].uid = 0;
  users[0].gid = 0;
  users[0].groupCount = 0;
  for (int i = 0; i < MAX_SLOTS; i++) slots[i] = -1;
  // Modes in requests are exact: no umask between the generator and the kernel.
  umask(0);
  // A write into a FIFO whose readers are all closed must answer EPIPE, not end the run.
  signal(SIGPIPE, SIG_IGN);
  rootFd = open(root, O_RDONLY | O_DIRECTORY);
  if (rootFd < 0) die(root);
  if (setgroups(0, NULL) != 0) die("setgroups");

  static char line[LINE_BYTES];
  while (fgets(line, sizeof line, stdin)) {
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    char *args[MAX_ARGS];
    int count = 0;
    static char expanded[MAX_ARGS][4200];
    for (char *tok = strtok(line, " "); tok && count < MAX_ARGS; tok = strtok(NULL, " ")) {
      args[count] = (char *)expandLongNames(tok, expanded[count], sizeof expanded[count]);
      count++;
    }
    outLen = 0;
    if (count == 0) {
      errno = EINVAL;
      fail();
    } else if (args[0][0] == '!') control(args, count);
    else operation(args, count);
    out[outLen] = '\0';
    fputs(out, stdout);
    fputc('\n', stdout);
    fflush(stdout);
  }
  return 0;
}
