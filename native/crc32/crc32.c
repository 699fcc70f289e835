// CRC-32 (zlib's: IEEE polynomial, reflected, pre- and post-inverted) with carry-less multiply.
//
// Why: every block is checked with CRC-32 when it is sealed and when it is read, and Node's
// zlib.crc32 (a table method, ~2.7 GB/s here) was 15% of a mount's CPU samples while it streamed
// a cold file (bench/RESULTS.md, Mounted volume, session 19). Folding 64 bytes per step with
// PCLMULQDQ (Gopal et al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
// Instruction", Intel 2009; the constants are those of that paper for this polynomial) runs
// several times faster. `crc32` is exported only where the CPU has PCLMULQDQ and SSE4.1; callers
// keep zlib.crc32 otherwise. Same results bit for bit: tested against zlib.crc32.
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#define ADDON_NAME "crc32"
#include "napi_check.h"

// Filled once per process, whichever thread (the main one, a worker) loads the addon first.
static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
}

// The CRC register over `len` bytes, without the inversions (for short inputs and tails).
static uint32_t crc_bytes(uint32_t crc, const uint8_t* p, size_t len) {
  while (len--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
// The CRC register over `len` bytes, len >= 64 and a multiple of 16, without the inversions.
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_fold(uint32_t crc, const uint8_t* p, size_t len) {
  const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);  // x^(512+32) and x^(512-32) mod P
  const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);  // x^(128+32) and x^(128-32) mod P
  const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);              // x^64 mod P
  const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
  const __m128i poly_mu = _mm_set_epi64x(0x1f7011641, 0x1db710641);  // mu (high), P (low)

  __m128i x1 = _mm_loadu_si128((const __m128i*)p);
  __m128i x2 = _mm_loadu_si128((const __m128i*)(p + 16));
  __m128i x3 = _mm_loadu_si128((const __m128i*)(p + 32));
  __m128i x4 = _mm_loadu_si128((const __m128i*)(p + 48));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
  p += 64;
  len -= 64;

  // Four lanes of 128 bits, each folded 512 bits forward per step.
  while (len >= 64) {
    __m128i h1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
    __m128i h2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
    __m128i h3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
    __m128i h4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
    x1 = _mm_clmulepi64_si128(x1, k1k2, 0x00);
    x2 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
    x3 = _mm_clmulepi64_si128(x3, k1k2, 0x00);
    x4 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, h1), _mm_loadu_si128((const __m128i*)p));
    x2 = _mm_xor_si128(_mm_xor_si128(x2, h2), _mm_loadu_si128((const __m128i*)(p + 16)));
    x3 = _mm_xor_si128(_mm_xor_si128(x3, h3), _mm_loadu_si128((const __m128i*)(p + 32)));
    x4 = _mm_xor_si128(_mm_xor_si128(x4, h4), _mm_loadu_si128((const __m128i*)(p + 48)));
    p += 64;
    len -= 64;
  }

  // The four lanes into one, then the remaining 16-byte pieces, 128 bits forward each.
  __m128i next[3] = {x2, x3, x4};
  for (int i = 0; i < 3; i++) {
    __m128i h = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x00), h), next[i]);
  }
  while (len >= 16) {
    __m128i h = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, h), _mm_loadu_si128((const __m128i*)p));
    p += 16;
    len -= 16;
  }

  // 128 bits to 64 (appending 32 zero bits), then 64 to 32 by Barrett reduction.
  __m128i t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
  t = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00), t);
  t = x1;
  x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly_mu, 0x10);
  x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly_mu, 0x00);
  x1 = _mm_xor_si128(x1, t);
  return (uint32_t)_mm_extract_epi32(x1, 1);
}

static bool cpu_can_fold(void) {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  return (ecx & bit_PCLMUL) && (ecx & bit_SSE4_1);
}
#endif

// crc32(data, value): zlib.crc32(data, value) for a Uint8Array (a Buffer) and a u32 `value`.
static napi_value Crc32(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_typedarray_type type;
  size_t length;
  void* data;
  uint32_t value = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array || (argc > 1 && napi_get_value_uint32(env, argv[1], &value) != napi_ok)) {
    napi_throw_type_error(env, NULL, "crc32(data, value): expected a Uint8Array and a u32");
    return NULL;
  }
  const uint8_t* p = data;
  uint32_t crc = ~value;
#if defined(__x86_64__)
  if (length >= 64) {
    size_t folded = length & ~(size_t)15;
    crc = crc_fold(crc, p, folded);
    p += folded;
    length -= folded;
  }
#endif
  crc = ~crc_bytes(crc, p, length);
  napi_value result;
  CHECK(napi_create_uint32(env, crc, &result));
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  pthread_once(&table_once, make_table);
#if defined(__x86_64__)
  if (cpu_can_fold()) {
    napi_value fn;
    CHECK(napi_create_function(env, "crc32", NAPI_AUTO_LENGTH, Crc32, NULL, &fn));
    CHECK(napi_set_named_property(env, exports, "crc32", fn));
  }
#endif
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
