// CHECK(call) for the N-API addons: a failed N-API call throws "ADDON_NAME: N-API call failed:
// call" in JavaScript and returns NULL from the calling function, which has `env` in scope.
// Define ADDON_NAME (a string literal) before including this file.
#ifndef STRATA_NAPI_CHECK_H
#define STRATA_NAPI_CHECK_H

#include <node_api.h>

#ifndef ADDON_NAME
#error "define ADDON_NAME before including napi_check.h"
#endif

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, ADDON_NAME ": N-API call failed: " #call);                       \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

#endif
