// StrataFS reliability suite: the executor's timestamp tracking (included by
// executor.c, which owns the globals used here).
//
// A request whose identity carries a `t` suffix (`2t chmod a 0644`) reports,
// after its usual reply, whether each object it touched had its ctime and
// mtime changed by it: ` t:` then one code per object, `c+m-` style, `x` when
// the object did not exist before, `g` when it is gone after (unlinked, or an
// fstat that fails). Objects are the path arguments and their parent
// directories, or the open file of a slot; they are held by O_PATH
// descriptors across the call, so a rename or unlink does not lose them.
// Timestamps are compared for change, never by value. tmpfs stamps with the
// coarse clock (one tick is several ms), so before the call the executor waits
// until that clock has passed every timestamp it saw: any change then shows.

#define MAX_TRACKED 6

struct tracked {
  int fd;
  int ownFd;
  int present;
  struct stat before;
};

static struct tracked trackedObjects[MAX_TRACKED];
static int trackedCount = 0;

static void trackFd(int fd, int ownFd) {
  if (trackedCount >= MAX_TRACKED) {
    if (ownFd && fd >= 0) close(fd);
    return;
  }
  struct tracked *t = &trackedObjects[trackedCount++];
  t->fd = fd;
  t->ownFd = ownFd;
  t->present = fd >= 0 && fstat(fd, &t->before) == 0;
}

static void trackPath(const char *rel) {
  // The parent first: "a/x" -> "a", "x" -> ".", "a/x/" -> "a".
  char parent[4200];
  snprintf(parent, sizeof parent, "%s", rel);
  size_t len = strlen(parent);
  while (len > 1 && parent[len - 1] == '/') parent[--len] = '\0';
  char *slash = strrchr(parent, '/');
  if (slash) *slash = '\0';
  else snprintf(parent, sizeof parent, ".");
  trackFd(openat(baseFd, parent, O_PATH | O_DIRECTORY | O_CLOEXEC), 1);
  trackFd(openat(baseFd, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC), 1);
}

static int timespecAfter(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

// Waits until CLOCK_REALTIME_COARSE has reached the millisecond after `latest`
// (at most ~100 ms: times set explicitly into the future are not waited for).
// The next millisecond, not just past it: a file system that stamps in whole
// milliseconds (the test MemFs: Date.now()) would otherwise stamp the call with
// the very time it saw before, and a real change would read as none.
static void waitPastCoarse(const struct timespec *latest) {
  struct timespec bound = *latest;
  bound.tv_nsec = (bound.tv_nsec / 1000000 + 1) * 1000000;
  if (bound.tv_nsec >= 1000000000) {
    bound.tv_sec++;
    bound.tv_nsec -= 1000000000;
  }
  for (int i = 0; i < 200; i++) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (!timespecAfter(&bound, &now)) return;
    struct timespec nap = {0, 500000};
    nanosleep(&nap, NULL);
  }
}

static int timesChanged(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec != b->tv_sec || a->tv_nsec != b->tv_nsec;
}

// Which arguments of a verb are paths (bit i = argument i), and whether
// argument 0 is a handle slot. Verbs not listed track nothing.
static unsigned trackedArgs(const char *verb, int *slotArg) {
  static const char *const slotVerbs[] = {"write", "read", "ftrunc", "falloc", "fsync", "fdatasync", "fstat", "mmapwrite"};
  static const char *const firstPath[] = {"trunc", "mkdir", "rmdir", "unlink", "chmod", "chown",
                                          "chownf", "utimes", "lutimes", "setxattr", "lsetxattr",
                                          "removexattr", "mknod", "readdir", "access", "getxattr",
                                          "listxattr", "stat", "statf", "readlink", "deep", "setacl", "rmacl"};
  *slotArg = 0;
  for (size_t i = 0; i < sizeof slotVerbs / sizeof slotVerbs[0]; i++)
    if (!strcmp(verb, slotVerbs[i])) {
      *slotArg = 1;
      return 0;
    }
  for (size_t i = 0; i < sizeof firstPath / sizeof firstPath[0]; i++)
    if (!strcmp(verb, firstPath[i])) return 1u;
  if (!strcmp(verb, "open") || !strcmp(verb, "symlink")) return 2u;
  if (!strcmp(verb, "link") || !strcmp(verb, "rename")) return 3u;
  if (!strcmp(verb, "flink")) return 2u;
  return 0;
}

// Runs as root, before the operation switches to its identity.
static void trackBefore(const char *verb, char **argv, int argc) {
  trackedCount = 0;
  int slotArg;
  unsigned paths = trackedArgs(verb, &slotArg);
  if (slotArg && argc > 0) {
    long long v;
    int fd = parseInt(argv[0], &v) == 0 && v >= 0 && v < MAX_SLOTS ? slots[v] : -1;
    trackFd(fd, 0);
  }
  for (int i = 0; i < argc && i < 8; i++)
    if (paths & (1u << i)) trackPath(argv[i]);
  struct timespec latest = {0, 0};
  for (int i = 0; i < trackedCount; i++) {
    const struct tracked *t = &trackedObjects[i];
    if (!t->present) continue;
    if (timespecAfter(&t->before.st_ctim, &latest)) latest = t->before.st_ctim;
    if (timespecAfter(&t->before.st_mtim, &latest)) latest = t->before.st_mtim;
  }
  waitPastCoarse(&latest);
}

// Runs as root, after the operation; appends the codes to the reply.
static void trackAfter(void) {
  emit(" t:");
  for (int i = 0; i < trackedCount; i++) {
    struct tracked *t = &trackedObjects[i];
    struct stat now;
    if (!t->present) emit("x");
    else if (fstat(t->fd, &now) != 0 || now.st_nlink == 0) emit("g");
    else {
      // FIFO times move with pipe I/O on tmpfs only (see emitStat): not compared.
      int fifo = S_ISFIFO(now.st_mode);
      emit("c%c", fifo ? '?' : timesChanged(&t->before.st_ctim, &now.st_ctim) ? '+' : '-');
      emit("m%c", fifo ? '?' : timesChanged(&t->before.st_mtim, &now.st_mtim) ? '+' : '-');
    }
    emit(i + 1 < trackedCount ? "," : "");
    if (t->ownFd && t->fd >= 0) close(t->fd);
  }
  trackedCount = 0;
}

// "@N" as a path component stands for a name of N bytes (ENAMETOOLONG at
// 256), so request lines stay short. Expands in place into dst.
static const char *expandLongNames(const char *token, char *dst, size_t dstLen) {
  if (!strchr(token, '@')) return token;
  size_t used = 0;
  for (const char *p = token; *p && used + 1 < dstLen;) {
    if (*p == '@' && (p == token || p[-1] == '/')) {
      char *end;
      long n = strtol(p + 1, &end, 10);
      if (end != p + 1 && n > 0 && (*end == '/' || *end == '\0')) {
        for (long i = 0; i < n && used + 1 < dstLen; i++) dst[used++] = i == 0 ? 'L' : 'l';
        p = end;
        continue;
      }
    }
    dst[used++] = *p++;
  }
  dst[used] = '\0';
  return dst;
}
