// Reads a file's bytes on the calling thread only when they are in the page cache:
// preadv2(RWF_NOWAIT) returns what the cache holds and EAGAIN instead of waiting for a disk.
//
// Why: a small read of a block object (a random read that misses the mount's memory) went to
// libuv's thread pool, and the hop there and back (a futex wake, an eventfd, two context
// switches) cost the mount more CPU than the pread itself while the object was cached anyway.
// The caller reads what this returns and sends only the rest to the pool.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>
#include <node_api.h>

#define ADDON_NAME "cachedread"
#include "napi_check.h"

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

// readCached(fd, buffer, offset): bytes read into buffer from `offset` (fewer than its length
// when the cache holds only part, or at the end of the file), or -errno: -EAGAIN when nothing
// asked for is cached, -EOPNOTSUPP where the file system cannot read without waiting.
static napi_value ReadCached(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t offset;
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array || napi_get_value_int64(env, argv[2], &offset) != napi_ok || offset < 0) {
    napi_throw_type_error(env, NULL, "readCached(fd, buffer, offset): expected an fd, a Uint8Array and an offset >= 0");
    return NULL;
  }
  struct iovec iov = {.iov_base = data, .iov_len = length};
  ssize_t n;
  do {
    n = preadv2(fd, &iov, 1, (off_t)offset, RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  napi_value result;
  CHECK(napi_create_int64(env, n < 0 ? -(int64_t)errno : (int64_t)n, &result));
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  CHECK(napi_create_function(env, "readCached", NAPI_AUTO_LENGTH, ReadCached, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "readCached", fn));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
