// TCP socket options Node.js does not expose. One so far: TCP_QUICKACK.
//
// Why: a server that writes a response's headers and body separately with Nagle's algorithm on
// (Ceph's radosgw does) holds the body until the headers are acknowledged, and Linux delays
// that acknowledgement by up to 40 ms on a socket that looks interactive (request, response,
// request...). Every small GET on a kept-alive connection then took 44 ms on loopback instead
// of 2. TCP_QUICKACK sends the pending acknowledgement at once and leaves the interactive mode
// until the next request is sent, so the caller sets it again for each response.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <node_api.h>
#include <sys/socket.h>

#define ADDON_NAME "tcpopt"
#include "napi_check.h"

// Reads the descriptor argument into *fd; false after throwing a TypeError that names `call`.
static bool fd_argument(napi_env env, napi_callback_info info, const char* call, int32_t* fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_type_error(env, NULL, call);
    return false;
  }
  return true;
}

// quickAck(fd): 0 on success, else the errno of setsockopt (EBADF, ENOTSOCK, EOPNOTSUPP...).
static napi_value QuickAck(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, "tcpopt.quickAck(fd): fd must be a number", &fd)) return NULL;
  int on = 1;
  int error = setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on) == 0 ? 0 : errno;
  napi_value result;
  CHECK(napi_create_int32(env, error, &result));
  return result;
}

// quickAckState(fd): getsockopt(TCP_QUICKACK): 1 while acknowledgements go out at once, 0 while
// Linux delays them (the socket looks interactive), or -errno. For tests.
static napi_value QuickAckState(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, "tcpopt.quickAckState(fd): fd must be a number", &fd)) return NULL;
  int value = 0;
  socklen_t length = sizeof value;
  int state = getsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &value, &length) == 0 ? value : -errno;
  napi_value result;
  CHECK(napi_create_int32(env, state, &result));
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  CHECK(napi_create_function(env, "quickAck", NAPI_AUTO_LENGTH, QuickAck, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "quickAck", fn));
  CHECK(napi_create_function(env, "quickAckState", NAPI_AUTO_LENGTH, QuickAckState, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "quickAckState", fn));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
