// fdpoll: lets the Node.js event loop watch an arbitrary file descriptor (here /dev/fuse)
// for readability with a libuv uv_poll_t, and call back into JavaScript when it is.
// Node has no public API for this; reader threads cost a ~25 us hop per request
// (FACTS.md). It also offers a read(2) that returns -errno instead of throwing. The
// protocol (decoding, dispatch, replies) stays in TypeScript.
//
//   const watcher = start(fd, onReadable)   // onReadable(status): status < 0 is a libuv error
//   stop(watcher)                            // idempotent; the callback is never called after it
//   ref(watcher) / unref(watcher)            // keep / do not keep the process alive
//   setNonBlocking(fd)                       // O_NONBLOCK on an fd Node did not open (session hand-over)
//   readInto(fd, buffer)                     // read(2): bytes read, or -errno (no exception: EAGAIN is routine)
//   writeFrom(fd, buffer, length)            // write(2) of buffer[0, length): bytes written, or -errno
//   writeTwo(fd, header, data)               // writev(2) of two buffers (a reply header and its data)
//   trimMemory()                             // malloc_trim(0): give freed heap memory back to the system
//   retireFd(fd)                             // dup3 /dev/null onto fd: drops what it named, keeps the number taken
//   spinReadable(fd, us)                     // polls fd without sleeping for up to `us`: true once readable
//   involuntarySwitches()                    // the calling thread's involuntary context switches so far
#define _GNU_SOURCE // dup3
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <node_api.h>
#include <poll.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  // The async resource handed to every callback: made once, not per wake-up.
  napi_ref resource;
  int stopped;
} watcher_t;

#define ADDON_NAME "fdpoll"
#include "napi_check.h"

static void on_closed(uv_handle_t* handle) { free(handle->data); }

static void on_poll(uv_poll_t* poll, int status, int events) {
  (void)events;
  watcher_t* w = (watcher_t*)poll->data;
  if (w->stopped) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, resource, argv[1], result;
  if (napi_get_reference_value(env, w->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_reference_value(env, w->resource, &resource) == napi_ok && resource != NULL &&
      napi_create_int32(env, status, &argv[0]) == napi_ok) {
    // napi_make_callback (not napi_call_function) so the microtask queue is drained after
    // the callback, exactly as for Node's own I/O callbacks: promise continuations of the
    // requests just dispatched run before the loop polls again.
    napi_status s = napi_make_callback(env, w->async_context, resource, callback, 1, argv, &result);
    if (s == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static watcher_t* unwrap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void* data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "fdpoll: expected a watcher returned by start()");
    return NULL;
  }
  return (watcher_t*)data;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, external, resource;
  int32_t fd;
  napi_valuetype type;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "fdpoll.start(fd, onReadable): expected an fd and a function");
    return NULL;
  }
  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  watcher_t* w = calloc(1, sizeof(watcher_t));
  if (w == NULL) {
    napi_throw_error(env, NULL, "fdpoll: out of memory");
    return NULL;
  }
  w->env = env;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    free(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  w->poll.data = w;
  CHECK(napi_create_reference(env, argv[1], 1, &w->callback));
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_reference(env, resource, 1, &w->resource));
  CHECK(napi_create_string_utf8(env, "FuseDevice", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &w->async_context));
  rc = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (rc != 0) {
    w->stopped = 1;
    napi_delete_reference(env, w->callback);
    napi_delete_reference(env, w->resource);
    napi_async_destroy(env, w->async_context);
    uv_close((uv_handle_t*)&w->poll, on_closed);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  // The external does not own the watcher: stop() frees it (after uv_close), so a
  // watcher that is garbage collected while still polling keeps working.
  CHECK(napi_create_external(env, w, NULL, NULL, &external));
  return external;
}

static napi_value stop(napi_env env, napi_callback_info info) {
  watcher_t* w = unwrap(env, info);
  if (w == NULL || w->stopped) return NULL;
  w->stopped = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  napi_delete_reference(env, w->resource);
  napi_async_destroy(env, w->async_context);
  uv_close((uv_handle_t*)&w->poll, on_closed);
  return NULL;
}

static napi_value ref(napi_env env, napi_callback_info info) {
  watcher_t* w = unwrap(env, info);
  if (w != NULL && !w->stopped) uv_ref((uv_handle_t*)&w->poll);
  return NULL;
}

static napi_value unref(napi_env env, napi_callback_info info) {
  watcher_t* w = unwrap(env, info);
  if (w != NULL && !w->stopped) uv_unref((uv_handle_t*)&w->poll);
  return NULL;
}

static napi_value set_non_blocking(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "fdpoll.setNonBlocking(fd): expected an fd");
    return NULL;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    napi_throw_error(env, "EBADF", strerror(errno));
    return NULL;
  }
  return NULL;
}

// fs.readSync throws on EAGAIN, and building that exception (with its stack trace) cost
// more than serving an lstat (bench/fuse, RESULTS.md). Draining the device until EAGAIN
// needs a read that reports errors as values.
static napi_value read_into(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd;
  void* data;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "fdpoll.readInto(fd, buffer): expected an fd and a Buffer");
    return NULL;
  }
  ssize_t n;
  do {
    n = read(fd, data, length);
  } while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &result));
  return result;
}

// Replies go out through these rather than fs.writeSync: that one builds a context
// object, a request wrapper and, when the kernel refuses a reply (ENOENT for an
// interrupted request), an exception; this is the hot path of every request.
static napi_value write_from(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  int32_t fd;
  uint32_t length;
  void* data;
  size_t capacity;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &capacity) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &length) != napi_ok || length > capacity) {
    napi_throw_type_error(env, NULL, "fdpoll.writeFrom(fd, buffer, length): expected an fd, a Buffer and a length within it");
    return NULL;
  }
  ssize_t n;
  do {
    n = write(fd, data, length);
  } while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &result));
  return result;
}

static napi_value write_two(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  int32_t fd;
  struct iovec iov[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &iov[0].iov_base, &iov[0].iov_len) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &iov[1].iov_base, &iov[1].iov_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "fdpoll.writeTwo(fd, header, data): expected an fd and two Buffers");
    return NULL;
  }
  ssize_t n;
  do {
    n = writev(fd, iov, 2);
  } while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &result));
  return result;
}

// glibc keeps freed heap memory: once the first 4 MiB block buffer is freed it raises its mmap
// threshold, later buffers come from the heap, and the holes they leave between live ones stay
// resident (~245 MiB after mixed workloads, docs/data-path.md). malloc_trim(0) hands those
// pages back (madvise) without moving anything; Node has no way to call it.
static napi_value trim_memory(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(napi_get_boolean(env, malloc_trim(0) != 0, &result));
  return result;
}

// Points `fd` at /dev/null in one step (dup3), dropping its reference to the file it named
// (for /dev/fuse, as close would: the kernel aborts the connection once no reference is left).
// Closing instead would free the number while writes the libuv pool has queued on it but not
// started could still run: they would land in whatever file opens next under that number.
// The owner closes `fd` once those writes are done; until then they go to /dev/null.
static napi_value retire_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "fdpoll.retireFd(fd): expected an fd");
    return NULL;
  }
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) {
    napi_throw_error(env, "EIO", strerror(errno));
    return NULL;
  }
  int rc = null_fd == fd ? 0 : dup3(null_fd, fd, O_CLOEXEC);
  int saved = errno;
  if (null_fd != fd) close(null_fd);
  if (rc < 0) {
    napi_throw_error(env, "EBADF", strerror(saved));
    return NULL;
  }
  return NULL;
}

// A caller that issues its next request right after our reply (stat, create or unlink in a
// loop) would otherwise find this thread asleep in epoll; on an idle VM each wake-up of a
// halted vCPU costs more than serving the request (bench/fuse, RESULTS.md). Polling the fd
// for a few microseconds after the replies went out catches that request without the sleep
// and the wake-up. Whether to spin at all is the caller's decision (src/fuse/poll-spin.ts),
// made from involuntarySwitches(): a thread that keeps being preempted is on a contended CPU,
// where spinning would take time others need.
static napi_value spin_readable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd;
  uint32_t spin_us;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &spin_us) != napi_ok) {
    napi_throw_type_error(env, NULL, "fdpoll.spinReadable(fd, us): expected an fd and microseconds");
    return NULL;
  }
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  const int64_t limit_ns = (int64_t)spin_us * 1000;
  struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
  int readable = 0;
  for (;;) {
    int rc = poll(&p, 1, 0);
    if (rc > 0) {
      // POLLERR/POLLHUP too: the caller's read then reports the end of the connection.
      readable = 1;
      break;
    }
    if (rc < 0 && errno != EINTR) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((int64_t)(now.tv_sec - start.tv_sec) * 1000000000 + (now.tv_nsec - start.tv_nsec) >= limit_ns) break;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  CHECK(napi_get_boolean(env, readable, &result));
  return result;
}

// The calling thread's involuntary context switches so far (getrusage RUSAGE_THREAD), -1 if
// unknown.
static napi_value involuntary_switches(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  struct rusage usage;
  CHECK(napi_create_int64(env, getrusage(RUSAGE_THREAD, &usage) == 0 ? usage.ru_nivcsw : -1, &result));
  return result;
}

napi_value furing_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"start", NULL, start, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, stop, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, ref, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, unref, NULL, NULL, NULL, napi_default, NULL},
      {"setNonBlocking", NULL, set_non_blocking, NULL, NULL, NULL, napi_default, NULL},
      {"readInto", NULL, read_into, NULL, NULL, NULL, napi_default, NULL},
      {"writeFrom", NULL, write_from, NULL, NULL, NULL, napi_default, NULL},
      {"writeTwo", NULL, write_two, NULL, NULL, NULL, napi_default, NULL},
      {"trimMemory", NULL, trim_memory, NULL, NULL, NULL, napi_default, NULL},
      {"retireFd", NULL, retire_fd, NULL, NULL, NULL, napi_default, NULL},
      {"spinReadable", NULL, spin_readable, NULL, NULL, NULL, napi_default, NULL},
      {"involuntarySwitches", NULL, involuntary_switches, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return furing_init(env, exports);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
