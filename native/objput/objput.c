// The file store's native jobs. put: a durable put of one object into a local directory as a
// single thread-pool job: write a temporary file, rename it into place, fdatasync it, fsync its
// directory. allocate: an object's exact size allocated ahead (see allocate_exact). readDirect:
// a whole object read past the page cache (see read_direct). From JavaScript the put's
// calls are about nine thread-pool round trips (each a futex wake on both sides and an
// eventfd back), which cost a small object more CPU than the calls themselves; here they are one.
// The order and the durability are those of src/object/backends/file.ts: acknowledged only once
// the data and the directory entry are both on stable storage.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
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

// Objects of at least this size get their exact size allocated before they are written.
#define ALLOCATE_MIN_BYTES (64 * 1024)

// Allocates the file's exact size up front; 0, or -1 with errno set. Why: ext4 rounds the
// allocation of a larger file synced while open up to a power of two (a 4 MiB block plus its
// trailer takes an 8 MiB region) and frees the unused part only at close, so objects written
// one after another lie 8 MiB apart and a cold sequential read of them crosses as much empty
// disk as data (on the development machine's ext4: 1.03-1.06 GB/s against 1.33-1.40 GB/s for
// the same objects laid end to end). A file system that cannot allocate ahead is not an error.
static int allocate_exact(int fd, size_t length) {
  if (length < ALLOCATE_MIN_BYTES) return 0;
  if (fallocate(fd, 0, 0, (off_t)length) == 0) return 0;
  return errno == EOPNOTSUPP || errno == ENOSYS ? 0 : -1;
}

static void write_and_sync(Put *put) {
  int fd = open(put->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return fail(put, "open", put->tmp);
  if (allocate_exact(fd, put->length) != 0) {
    fail(put, "fallocate", put->tmp);
    close(fd);
    unlink(put->tmp);
    return;
  }
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

// Resolves, or rejects with an Error shaped as Node's fs errors are: code, errno (negative),
// syscall, path.
static void settle(napi_env env, napi_deferred deferred, int error, const char *syscall, const char *path) {
  napi_value result;
  if (error == 0) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, deferred, result);
    return;
  }
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
  napi_reject_deferred(env, deferred, error_object);
}

static void complete(napi_env env, napi_status status, void *arg) {
  Put *put = arg;
  if (status == napi_ok) settle(env, put->deferred, put->error, put->syscall, put->path);
  else settle(env, put->deferred, EIO, "put", put->target);
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

// Queues `job` on the thread pool under `name` (what async hooks show); returns the promise its
// complete callback settles through `deferred`.
static napi_value queue_job(napi_env env, const char *name, napi_async_execute_callback execute,
                            napi_async_complete_callback complete, void *job, napi_deferred *deferred,
                            napi_async_work *work) {
  napi_value promise, resource_name;
  CHECK(napi_create_promise(env, deferred, &promise));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_create_async_work(env, NULL, resource_name, execute, complete, job, work));
  CHECK(napi_queue_async_work(env, *work));
  return promise;
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
  CHECK(napi_create_reference(env, argv[3], 1, &put->data_ref));
  return queue_job(env, "strata.objput", execute, complete, put, &put->deferred, &put->work);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t length;
  char *path;  // for the error message only
  int error;
} Allocation;

static void execute_allocation(napi_env env, void *arg) {
  (void)env;
  Allocation *allocation = arg;
  if (allocate_exact(allocation->fd, (size_t)allocation->length) != 0) allocation->error = errno;
}

static void complete_allocation(napi_env env, napi_status status, void *arg) {
  Allocation *allocation = arg;
  settle(env, allocation->deferred, status == napi_ok ? allocation->error : EIO, "fallocate", allocation->path);
  napi_delete_async_work(env, allocation->work);
  free(allocation->path);
  free(allocation);
}

// allocate(fd, length, path): Promise<void>. What put does before writing, for a file the
// caller writes itself: its exact length allocated (from allocateMinBytes on, below it nothing
// is done), as one thread-pool job. Resolves where the file system cannot allocate ahead;
// `path` names the file in an error.
static napi_value allocate_file(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Allocation *allocation = calloc(1, sizeof *allocation);
  if (allocation == NULL) {
    napi_throw_error(env, "ENOMEM", "objput: out of memory");
    return NULL;
  }
  if (argc < 3 || napi_get_value_int32(env, argv[0], &allocation->fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &allocation->length) != napi_ok || allocation->length < 0 ||
      (allocation->path = string_arg(env, argv[2])) == NULL) {
    free(allocation);
    napi_throw_type_error(env, NULL, "objput.allocate(fd, length, path): an fd, a length >= 0, a path");
    return NULL;
  }
  return queue_job(env, "strata.objput.allocate", execute_allocation, complete_allocation, allocation,
                   &allocation->deferred, &allocation->work);
}

#define DIRECT_ALIGN 4096

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref view_ref;
  char *path;
  uint8_t *data;
  size_t capacity;  // the view's length: nothing is read past it
  ssize_t result;   // bytes read, or -errno
  const char *syscall;  // the failed call: "open" says the file system refuses O_DIRECT
} DirectRead;

static void execute_direct_read(napi_env env, void *arg) {
  (void)env;
  DirectRead *read_job = arg;
  if ((uintptr_t)read_job->data % DIRECT_ALIGN != 0) {
    read_job->result = -EINVAL;
    read_job->syscall = "readDirect";  // the view, not the file system
    return;
  }
  int fd = open(read_job->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    read_job->result = -errno;
    read_job->syscall = "open";
    return;
  }
  struct stat info;
  if (fstat(fd, &info) != 0) {
    read_job->result = -errno;
    read_job->syscall = "fstat";
    close(fd);
    return;
  }
  size_t size = (size_t)info.st_size;
  read_job->result = (ssize_t)size;
  if (size > read_job->capacity) {  // the caller reads it another way
    close(fd);
    return;
  }
  // The whole 4 KiB pages with O_DIRECT, then the last partial page through the page cache:
  // nothing is written past the view.
  size_t aligned = size / DIRECT_ALIGN * DIRECT_ALIGN;
  size_t done = 0;
  while (done < size) {
    if (done == aligned) {
      int flags = fcntl(fd, F_GETFL);
      if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_DIRECT) != 0) {
        read_job->result = -errno;
        read_job->syscall = "fcntl";
        break;
      }
    }
    size_t end = done < aligned ? aligned : size;
    ssize_t n = pread(fd, read_job->data + done, end - done, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      read_job->result = n < 0 ? -errno : -EIO;  // EIO: the file shrank, which objects never do
      read_job->syscall = "pread";
      break;
    }
    done += (size_t)n;
    // A short read of the direct part leaves `done` unaligned: the rest goes through the cache.
    if (done < aligned && done % DIRECT_ALIGN != 0) aligned = done;
  }
  close(fd);
}

static void complete_direct_read(napi_env env, napi_status status, void *arg) {
  DirectRead *read_job = arg;
  if (status != napi_ok) settle(env, read_job->deferred, EIO, "readDirect", read_job->path);
  else if (read_job->result < 0)
    settle(env, read_job->deferred, (int)-read_job->result, read_job->syscall, read_job->path);
  else {
    napi_value result;
    napi_create_double(env, (double)read_job->result, &result);
    napi_resolve_deferred(env, read_job->deferred, result);
  }
  napi_delete_reference(env, read_job->view_ref);
  napi_delete_async_work(env, read_job->work);
  free(read_job->path);
  free(read_job);
}

// readDirect(path, view): Promise<number>. Reads the whole file into `view` from its start, its
// whole 4 KiB pages with O_DIRECT (past the page cache), the rest through the page cache;
// resolves with the file's size, having read nothing when that is more than view.length. The
// view must start on a 4 KiB boundary (rejects EINVAL, syscall "readDirect", otherwise; where
// the file system cannot read with O_DIRECT, EINVAL from "open" or "pread").
static napi_value read_direct(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (argc < 2 || napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "objput.readDirect(path, view): a path and a Uint8Array");
    return NULL;
  }
  DirectRead *read_job = calloc(1, sizeof *read_job);
  if (read_job == NULL || (read_job->path = string_arg(env, argv[0])) == NULL) {
    free(read_job);
    napi_throw_type_error(env, NULL, "objput.readDirect(path, view): a path and a Uint8Array");
    return NULL;
  }
  read_job->data = data;
  read_job->capacity = length;
  CHECK(napi_create_reference(env, argv[1], 1, &read_job->view_ref));
  return queue_job(env, "strata.objput.readDirect", execute_direct_read, complete_direct_read, read_job,
                   &read_job->deferred, &read_job->work);
}

// directOffset(arrayBuffer): how many bytes from its start the first 4 KiB boundary lies.
static napi_value direct_offset(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_arraybuffer_info(env, argv[0], &data, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "objput.directOffset(arrayBuffer): an ArrayBuffer");
    return NULL;
  }
  napi_value result;
  CHECK(napi_create_uint32(env, (uint32_t)((DIRECT_ALIGN - (uintptr_t)data % DIRECT_ALIGN) % DIRECT_ALIGN), &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value allocate_min;
  if (napi_create_uint32(env, ALLOCATE_MIN_BYTES, &allocate_min) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"put", NULL, put_object, NULL, NULL, NULL, napi_default, NULL},
      {"allocate", NULL, allocate_file, NULL, NULL, NULL, napi_default, NULL},
      {"allocateMinBytes", NULL, NULL, NULL, NULL, allocate_min, napi_enumerable, NULL},
      {"readDirect", NULL, read_direct, NULL, NULL, NULL, napi_default, NULL},
      {"directOffset", NULL, direct_offset, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 5, props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
