// A durable put of one object into a local directory as a single thread-pool job: write a
// temporary file, rename it into place, fdatasync it, fsync its directory. From JavaScript the
// same calls are about nine thread-pool round trips (each a futex wake on both sides and an
// eventfd back), which cost a small object more CPU than the calls themselves; here they are one.
// The order and the durability are those of src/object/backends/file.ts: acknowledged only once
// the data and the directory entry are both on stable storage.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADDON_NAME "objput"
#include "napi_check.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref data_ref;
  char *tmp;
  char *target;
  char *dir;
  char *parent;  // non-NULL: make `dir` first (if missing) and, when this job made it, fsync `parent`
  const char *data;
  size_t length;
  int error;            // errno of the failed call, 0 on success
  const char *syscall;  // the failed call
  const char *path;     // the path it was about
} Put;

static void fail(Put *put, const char *syscall, const char *path) {
  put->error = errno;
  put->syscall = syscall;
  put->path = path;
}

// Syncs the entry of a directory this job made in its parent, whatever else failed: a later put
// into the directory finds it existing and does not sync its parent again.
static void sync_made_dir(Put *put) {
  int pfd = open(put->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) {
    if (put->error == 0) fail(put, "open", put->parent);
    return;
  }
  if (fsync(pfd) != 0 && put->error == 0) fail(put, "fsync", put->parent);
  close(pfd);
}

static void write_and_sync(Put *put) {
  int fd = open(put->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return fail(put, "open", put->tmp);
  size_t written = 0;
  while (written < put->length) {
    ssize_t n = pwrite(fd, put->data + written, put->length - written, (off_t)written);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;  // no progress on a regular file: never loop on it
    if (n <= 0) {
      fail(put, "write", put->tmp);
      close(fd);
      unlink(put->tmp);
      return;
    }
    written += (size_t)n;
  }
  // Renamed before the syncs, as the JavaScript put does: data and name reach the disk together.
  if (rename(put->tmp, put->target) != 0) {
    fail(put, "rename", put->target);
    close(fd);
    unlink(put->tmp);
    return;
  }
  if (fdatasync(fd) != 0) {
    fail(put, "fdatasync", put->target);
    close(fd);
    return;
  }
  close(fd);
  int dfd = open(put->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail(put, "open", put->dir);
  if (fsync(dfd) != 0) fail(put, "fsync", put->dir);
  close(dfd);
}

static void execute(napi_env env, void *arg) {
  (void)env;
  Put *put = arg;
  bool made_dir = false;
  if (put->parent != NULL) {
    if (mkdir(put->dir, 0777) == 0) made_dir = true;
    else if (errno != EEXIST) return fail(put, "mkdir", put->dir);
  }
  write_and_sync(put);
  if (made_dir) sync_made_dir(put);
}

// The errno's name, as Node puts it in error.code ("ENOSPC"); glibc 2.32 and later know them all.
static const char *code_of(int error) {
  const char *name = strerrorname_np(error);
  return name != NULL ? name : "EIO";
}

// Rejects with an Error shaped as Node's fs errors are: code, errno (negative), syscall, path.
static void complete(napi_env env, napi_status status, void *arg) {
  Put *put = arg;
  napi_value result;
  if (status == napi_ok && put->error == 0) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, put->deferred, result);
  } else {
    int error = status == napi_ok ? put->error : EIO;
    const char *syscall = status == napi_ok ? put->syscall : "put";
    const char *path = status == napi_ok ? put->path : put->target;
    char text[512];
    snprintf(text, sizeof text, "%s: %s, %s '%s'", code_of(error), strerror(error), syscall, path);
    napi_value message, code, error_object, errno_value, syscall_value, path_value;
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_string_utf8(env, code_of(error), NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, message, &error_object);
    napi_create_int32(env, -error, &errno_value);
    napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_value);
    napi_set_named_property(env, error_object, "errno", errno_value);
    napi_set_named_property(env, error_object, "syscall", syscall_value);
    napi_set_named_property(env, error_object, "path", path_value);
    napi_reject_deferred(env, put->deferred, error_object);
  }
  napi_delete_reference(env, put->data_ref);
  napi_delete_async_work(env, put->work);
  free(put->tmp);
  free(put->target);
  free(put->dir);
  free(put->parent);
  free(put);
}

static char *string_arg(napi_env env, napi_value value) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return NULL;
  char *text = malloc(length + 1);
  if (text == NULL) return NULL;
  if (napi_get_value_string_utf8(env, value, text, length + 1, &length) != napi_ok) {
    free(text);
    return NULL;
  }
  return text;
}

// put(tmpPath, targetPath, dirPath, data: Buffer, parentPath?: string): Promise<void>. The buffer
// is kept alive (and must not be changed) until the promise settles. With parentPath, dirPath is
// made first when missing (its parent must exist), and synced in parentPath when this job made it.
static napi_value put_object(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_buffer = false;
  if (argc >= 4) CHECK(napi_is_buffer(env, argv[3], &is_buffer));
  if (!is_buffer) {
    napi_throw_type_error(env, NULL, "objput.put(tmp, target, dir, data): data must be a Buffer");
    return NULL;
  }
  Put *put = calloc(1, sizeof *put);
  if (put == NULL) {
    napi_throw_error(env, "ENOMEM", "objput: out of memory");
    return NULL;
  }
  put->tmp = string_arg(env, argv[0]);
  put->target = string_arg(env, argv[1]);
  put->dir = string_arg(env, argv[2]);
  napi_valuetype parent_type = napi_undefined;
  if (argc >= 5) CHECK(napi_typeof(env, argv[4], &parent_type));
  bool parent_ok = parent_type == napi_undefined || parent_type == napi_null;
  if (parent_type == napi_string) parent_ok = (put->parent = string_arg(env, argv[4])) != NULL;
  void *data;
  if (put->tmp == NULL || put->target == NULL || put->dir == NULL || !parent_ok ||
      napi_get_buffer_info(env, argv[3], &data, &put->length) != napi_ok) {
    free(put->tmp);
    free(put->target);
    free(put->dir);
    free(put->parent);
    free(put);
    napi_throw_type_error(env, NULL, "objput.put(tmp, target, dir, data, parent?): three paths, a Buffer, a path");
    return NULL;
  }
  put->data = data;
  napi_value promise, name;
  CHECK(napi_create_reference(env, argv[3], 1, &put->data_ref));
  CHECK(napi_create_promise(env, &put->deferred, &promise));
  CHECK(napi_create_string_utf8(env, "strata.objput", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, execute, complete, put, &put->work));
  CHECK(napi_queue_async_work(env, put->work));
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"put", NULL, put_object, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 1, props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
