// furing: the io_uring transport of a FUSE connection (kernel FUSE_OVER_IO_URING, 6.14+).
// Each ring entry is a header buffer (struct fuse_uring_req_header) and a payload buffer
// registered with the kernel once; a request then arrives as a completion with its
// bytes already in the entry, and the reply plus the fetch of the next request is one
// SQE. All replies of one event-loop turn go out in one io_uring_enter. The protocol
// (decoding, dispatch, replies) stays in TypeScript: this file moves bytes only.
//
//   create(devFd, queues, perQueue, payloadBytes) -> { ring, memory, ringFd, strideBytes, payloadOffset }
//   register(ring)                       // REGISTER every entry: SQEs submitted, or -errno
//   reregister(ring, entry)              // REGISTER one entry again after a failed commit
//   start(ring, results, onCompletions)  // poll the ring fd from the event loop; see on_poll
//   commit(ring, entry, buffer, length)  // reply buffer[0, length) (out header first): 0 or -errno
//   commitTwo(ring, entry, header, data) // reply header (16 bytes) then data
//   flush(ring)                          // submit queued commits now: count, or -errno
//   close(ring)                          // stop polling and close the ring (entries are cancelled)
//
// Memory: one anonymous mapping, entry i at i * strideBytes: header at 0, payload at
// payloadOffset (one page in). A request is handed to JavaScript as one contiguous
// message, exactly as read(2) on /dev/fuse returns it: the kernel puts the in-header
// and the opcode's fixed in-struct in the header buffer and the rest in the payload,
// so reaping copies those two (at most 168 bytes) right in front of the payload.
#include <errno.h>
#include <linux/io_uring.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

// include/uapi/linux/fuse.h (7.42+); Debian 12's headers predate them.
#define FUSE_IO_URING_CMD_REGISTER 1
#define FUSE_IO_URING_CMD_COMMIT_AND_FETCH 2
#define IN_OUT_OFFSET 0
#define OP_IN_OFFSET 128
#define OP_IN_MAX_BYTES 128
#define ENT_IN_OUT_OFFSET 256
#define ENT_PAYLOAD_SZ_OFFSET (ENT_IN_OUT_OFFSET + 16)
#define REQ_HEADER_BYTES 288
#define IN_HEADER_BYTES 40
#define OUT_HEADER_BYTES 16
#define PAGE_BYTES 4096
#define HELD_BY_KERNEL 0
#define HELD_BY_JS 1
#define HELD_BY_NOBODY 2

struct fuse_uring_cmd_req {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};

typedef struct {
  int ring_fd;
  int dev_fd;
  unsigned per_queue;
  unsigned entries;
  size_t stride;
  size_t payload_bytes;
  uint8_t* mem;
  size_t mem_len;
  // Holds the ArrayBuffer over `mem` until the ring fd is closed: the kernel writes
  // requests into `mem`, so it must not be unmapped (and its addresses reused) first.
  napi_ref memory_ref;
  struct iovec* iov;
  // Who holds each entry: the kernel (waiting for a request), JavaScript (a request to
  // answer) or nobody (its last command failed). A commit is accepted only for an entry
  // JavaScript holds, a reregister only for one nobody holds: anything else would write
  // into a buffer the kernel may be filling, or hand it one entry twice.
  uint8_t* holder;
  // submission queue
  void* sq_map;
  size_t sq_map_len;
  unsigned* sq_tail;
  unsigned* sq_mask;
  unsigned* sq_array;
  struct io_uring_sqe* sqes;  // 128 bytes each (IORING_SETUP_SQE128)
  size_t sqes_len;
  unsigned sq_entries;
  unsigned sq_local_tail;
  unsigned pending;
  // completion queue
  void* cq_map;
  size_t cq_map_len;
  unsigned* cq_head;
  unsigned* cq_tail;
  unsigned* cq_mask;
  struct io_uring_cqe* cqes;
  // event loop
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_ref resource;
  napi_ref results_ref;
  napi_async_context async_context;
  int32_t* results;
  unsigned results_cap;  // completions that fit in `results` (3 int32 each)
  int polling;
  int in_dispatch;
  int registered;
  int closed;
} ring_t;

#define ADDON_NAME "furing"
#include "napi_check.h"

static int sys_setup(unsigned entries, struct io_uring_params* p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

static napi_value int_value(napi_env env, int32_t n) {
  napi_value v;
  if (napi_create_int32(env, n, &v) != napi_ok) return NULL;
  return v;
}

static void unmap_memory(napi_env env, void* data, void* hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static void ring_release(ring_t* r) {
  if (r->ring_fd >= 0) close(r->ring_fd);
  r->ring_fd = -1;
  if (r->sq_map) munmap(r->sq_map, r->sq_map_len);
  if (r->cq_map && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_map_len);
  if (r->sqes) munmap(r->sqes, r->sqes_len);
  r->sq_map = r->cq_map = NULL;
  r->sqes = NULL;
  free(r->iov);
  r->iov = NULL;
  free(r->holder);
  r->holder = NULL;
  // The kernel's commands died with the ring fd: the memory may go with its last view.
  if (r->memory_ref) napi_delete_reference(r->env, r->memory_ref);
  r->memory_ref = NULL;
}

static ring_t* unwrap(napi_env env, napi_value value) {
  void* data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "furing: expected a ring returned by create()");
    return NULL;
  }
  return (ring_t*)data;
}

// The ring a method is called on (its first argument), with all `want` arguments in argv;
// NULL when there are fewer (or, with a TypeError pending, when the first is no ring).
static ring_t* ring_call(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "furing: N-API call failed: napi_get_cb_info");
    return NULL;
  }
  return argc < want ? NULL : unwrap(env, argv[0]);
}

// Callers check `pending < sq_entries` first: a queued SQE the kernel has not taken yet
// must never be overwritten.
static struct io_uring_sqe* next_sqe(ring_t* r) {
  unsigned index = r->sq_local_tail & *r->sq_mask;
  struct io_uring_sqe* sqe = (struct io_uring_sqe*)((uint8_t*)r->sqes + (size_t)index * 128);
  memset(sqe, 0, 128);
  r->sq_array[index] = index;
  r->sq_local_tail++;
  r->pending++;
  return sqe;
}

static void prep_cmd(ring_t* r, struct io_uring_sqe* sqe, unsigned entry, uint32_t cmd_op,
                     uint64_t commit_id) {
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = r->dev_fd;
  sqe->cmd_op = cmd_op;
  sqe->user_data = entry;
  struct fuse_uring_cmd_req* req = (struct fuse_uring_cmd_req*)sqe->cmd;
  req->commit_id = commit_id;
  req->qid = (uint16_t)(entry / r->per_queue);
}

// Publishes the queued SQEs and submits them; the kernel may take fewer on EAGAIN/EBUSY,
// the rest stay queued for the next flush.
static int flush_ring(ring_t* r) {
  if (r->pending == 0 || r->ring_fd < 0) return 0;
  __atomic_store_n(r->sq_tail, r->sq_local_tail, __ATOMIC_RELEASE);
  int n;
  do {
    n = sys_enter(r->ring_fd, r->pending, 0, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  r->pending -= (unsigned)n;
  return n;
}

static int32_t queue_commit(ring_t* r, uint32_t entry, const uint8_t* header, const uint8_t* body,
                            size_t body_bytes);

// Turns completions into [entry, start, length] triples in `results`: start is where the
// contiguous request begins inside the entry; a failed command gives [entry, -errno, 0].
static unsigned reap(ring_t* r) {
  unsigned head = *r->cq_head;
  unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
  unsigned n = 0;
  const size_t payload_offset = PAGE_BYTES;
  while (head != tail && n < r->results_cap) {
    struct io_uring_cqe* cqe = &r->cqes[head & *r->cq_mask];
    unsigned entry = (unsigned)cqe->user_data;
    int32_t* out = r->results + 3 * n;
    out[0] = (int32_t)entry;
    if (cqe->res < 0 || entry >= r->entries) {
      out[1] = cqe->res < 0 ? cqe->res : -EINVAL;
      out[2] = 0;
      if (entry < r->entries) r->holder[entry] = HELD_BY_NOBODY;
    } else {
      uint8_t* base = r->mem + (size_t)entry * r->stride;
      uint32_t length, payload_sz;
      memcpy(&length, base + IN_OUT_OFFSET, 4);
      memcpy(&payload_sz, base + ENT_PAYLOAD_SZ_OFFSET, 4);
      int64_t op_in = (int64_t)length - IN_HEADER_BYTES - payload_sz;
      if (op_in < 0 || op_in > OP_IN_MAX_BYTES || payload_sz > r->payload_bytes) {
        // Cannot be laid out as one message: answer EIO here (which also re-arms the
        // entry) and tell JavaScript, which logs it.
        uint8_t reply[OUT_HEADER_BYTES];
        uint32_t reply_len = OUT_HEADER_BYTES;
        int32_t error = -EIO;
        memcpy(reply, &reply_len, 4);
        memcpy(reply + 4, &error, 4);
        memcpy(reply + 8, base + IN_OUT_OFFSET + 8, 8);  // fuse_in_header.unique
        r->holder[entry] = HELD_BY_NOBODY;  // until the answer is queued
        queue_commit(r, entry, reply, NULL, 0);
        out[1] = -EPROTO;
        out[2] = (int32_t)length;
      } else {
        size_t start = payload_offset - IN_HEADER_BYTES - (size_t)op_in;
        memcpy(base + start, base + IN_OUT_OFFSET, IN_HEADER_BYTES);
        memcpy(base + start + IN_HEADER_BYTES, base + OP_IN_OFFSET, (size_t)op_in);
        out[1] = (int32_t)start;
        out[2] = (int32_t)length;
        r->holder[entry] = HELD_BY_JS;
      }
    }
    head++;
    n++;
  }
  __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
  return n;
}

static napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result, value;
  int32_t dev_fd;
  uint32_t queues, per_queue, payload_bytes;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || napi_get_value_int32(env, argv[0], &dev_fd) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &queues) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &per_queue) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &payload_bytes) != napi_ok || queues == 0 ||
      queues > 1024 || per_queue == 0 || per_queue > 256 || payload_bytes < 8192 ||
      payload_bytes > (1u << 26)) {
    napi_throw_type_error(env, NULL,
                          "furing.create(devFd, queues, perQueue, payloadBytes): arguments out of range");
    return NULL;
  }
  unsigned entries = queues * per_queue;
  unsigned sq_size = 1;
  while (sq_size < entries) sq_size <<= 1;

  ring_t* r = calloc(1, sizeof(ring_t));
  if (r == NULL) {
    napi_throw_error(env, "ENOMEM", "furing: out of memory");
    return NULL;
  }
  r->ring_fd = -1;
  r->env = env;
  r->dev_fd = dev_fd;
  r->per_queue = per_queue;
  r->entries = entries;
  r->payload_bytes = ((size_t)payload_bytes + PAGE_BYTES - 1) & ~(size_t)(PAGE_BYTES - 1);
  r->stride = PAGE_BYTES + r->payload_bytes;

  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  // SQE128: the FUSE command lives in the SQE's 80-byte tail. COOP_TASKRUN: the kernel
  // copies requests into our buffers as task work when we next enter the kernel (or are
  // woken from epoll), instead of interrupting the thread with an IPI.
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  int fd = sys_setup(sq_size, &p);
  if (fd < 0) {
    int err = errno;
    free(r);
    napi_throw_error(env, "EIO", err == ENOSYS || err == EPERM
                                     ? "furing: io_uring is not available (io_uring_setup refused)"
                                     : strerror(err));
    return NULL;
  }
  r->ring_fd = fd;
  r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    if (r->cq_map_len > r->sq_map_len) r->sq_map_len = r->cq_map_len;
    r->cq_map_len = r->sq_map_len;
  }
  r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                   IORING_OFF_SQ_RING);
  if (r->sq_map == MAP_FAILED) r->sq_map = NULL;
  r->cq_map = (p.features & IORING_FEAT_SINGLE_MMAP) ? r->sq_map
                                                     : mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE,
                                                            MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
  if (r->cq_map == MAP_FAILED) r->cq_map = NULL;
  r->sqes_len = (size_t)p.sq_entries * 128;
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) r->sqes = NULL;
  r->mem_len = (size_t)entries * r->stride;
  r->mem = mmap(NULL, r->mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r->mem == MAP_FAILED) r->mem = NULL;
  r->iov = calloc((size_t)entries * 2, sizeof(struct iovec));
  r->holder = calloc(entries, 1);  // HELD_BY_KERNEL once registered
  if (r->sq_map == NULL || r->cq_map == NULL || r->sqes == NULL || r->mem == NULL || r->iov == NULL ||
      r->holder == NULL) {
    int err = errno;
    if (r->mem) munmap(r->mem, r->mem_len);
    ring_release(r);
    free(r);
    napi_throw_error(env, "ENOMEM", strerror(err));
    return NULL;
  }
  uint8_t* sq = r->sq_map;
  uint8_t* cq = r->cq_map;
  r->sq_tail = (unsigned*)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned*)(sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned*)(sq + p.sq_off.array);
  r->sq_entries = p.sq_entries;
  r->sq_local_tail = *r->sq_tail;
  r->cq_head = (unsigned*)(cq + p.cq_off.head);
  r->cq_tail = (unsigned*)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned*)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe*)(cq + p.cq_off.cqes);
  for (unsigned i = 0; i < entries; i++) {
    uint8_t* base = r->mem + (size_t)i * r->stride;
    r->iov[2 * i].iov_base = base;
    r->iov[2 * i].iov_len = REQ_HEADER_BYTES;
    r->iov[2 * i + 1].iov_base = base + PAGE_BYTES;
    r->iov[2 * i + 1].iov_len = r->payload_bytes;
  }

  // The memory outlives the ring: JavaScript may still hold views of it after close(),
  // so it is unmapped only when the ArrayBuffer is collected.
  napi_value memory, ring;
  if (napi_create_external_arraybuffer(env, r->mem, r->mem_len, unmap_memory,
                                       (void*)(uintptr_t)r->mem_len, &memory) != napi_ok) {
    munmap(r->mem, r->mem_len);
    ring_release(r);
    free(r);
    napi_throw_error(env, NULL, "furing: cannot wrap the ring memory in an ArrayBuffer");
    return NULL;
  }
  // From here the ArrayBuffer owns `mem`; a failure only has to close the ring (the
  // external that names `r` has no finalizer and is unreachable once we return NULL).
  if (napi_create_reference(env, memory, 1, &r->memory_ref) != napi_ok ||
      napi_create_external(env, r, NULL, NULL, &ring) != napi_ok ||
      napi_create_object(env, &result) != napi_ok ||
      napi_set_named_property(env, result, "ring", ring) != napi_ok ||
      napi_set_named_property(env, result, "memory", memory) != napi_ok ||
      napi_create_int32(env, fd, &value) != napi_ok ||
      napi_set_named_property(env, result, "ringFd", value) != napi_ok ||
      napi_create_double(env, (double)r->stride, &value) != napi_ok ||
      napi_set_named_property(env, result, "strideBytes", value) != napi_ok ||
      napi_create_int32(env, PAGE_BYTES, &value) != napi_ok ||
      napi_set_named_property(env, result, "payloadOffset", value) != napi_ok) {
    ring_release(r);
    free(r);
    napi_throw_error(env, NULL, "furing: N-API call failed while returning the ring");
    return NULL;
  }
  return result;
}

static void prep_register(ring_t* r, unsigned entry) {
  struct io_uring_sqe* sqe = next_sqe(r);
  prep_cmd(r, sqe, entry, FUSE_IO_URING_CMD_REGISTER, 0);
  sqe->addr = (uint64_t)(uintptr_t)&r->iov[2 * entry];
  sqe->len = 2;
}

// After a failed COMMIT_AND_FETCH the kernel no longer counts the entry as available:
// registering its buffers again gives the queue its entry back.
static napi_value reregister(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t entry;
  ring_t* r = ring_call(env, info, 2, argv);
  if (r == NULL) return NULL;
  if (napi_get_value_uint32(env, argv[1], &entry) != napi_ok || entry >= r->entries) {
    napi_throw_type_error(env, NULL, "furing.reregister(ring, entry): bad entry");
    return NULL;
  }
  if (r->ring_fd < 0 || r->closed) return int_value(env, -EBADF);
  if (r->holder[entry] != HELD_BY_NOBODY) return int_value(env, -EINVAL);
  if (r->pending >= r->sq_entries) return int_value(env, -EBUSY);
  prep_register(r, entry);
  r->holder[entry] = HELD_BY_KERNEL;
  return int_value(env, r->in_dispatch ? 0 : flush_ring(r));
}

static napi_value register_entries(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t* r = ring_call(env, info, 1, argv);
  if (r == NULL) return NULL;
  if (r->ring_fd < 0 || r->closed) return int_value(env, -EBADF);
  // A second REGISTER of the same buffers would give the kernel two entries writing
  // into one memory; and every SQE must fit beside those still queued.
  if (r->registered) return int_value(env, -EALREADY);
  if (r->entries > r->sq_entries - r->pending) return int_value(env, -EBUSY);
  r->registered = 1;
  for (unsigned i = 0; i < r->entries; i++) prep_register(r, i);
  return int_value(env, flush_ring(r));
}

static int dispatch(ring_t* r, unsigned n, int status) {
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return -1;
  napi_value callback, resource, argv[2], result;
  int ok = napi_get_reference_value(env, r->callback, &callback) == napi_ok && callback != NULL &&
           napi_get_reference_value(env, r->resource, &resource) == napi_ok && resource != NULL &&
           napi_create_int32(env, (int32_t)n, &argv[0]) == napi_ok &&
           napi_create_int32(env, status, &argv[1]) == napi_ok;
  if (ok) {
    // napi_make_callback drains the microtask queue before returning, so the replies of
    // requests whose handlers finished without real waiting are already queued here.
    r->in_dispatch = 1;
    napi_status s = napi_make_callback(env, r->async_context, resource, callback, 2, argv, &result);
    r->in_dispatch = 0;
    if (s == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
  return ok ? 0 : -1;
}

// Requests that completed while we were submitting (the kernel runs the task work that
// fills our entries on the way out of io_uring_enter) are served in the same wake-up:
// looking costs a memory read, not a syscall. The bound keeps other I/O from starving.
#define MAX_ROUNDS_PER_WAKE 16

static void on_poll(uv_poll_t* poll, int status, int events) {
  (void)events;
  ring_t* r = (ring_t*)poll->data;
  if (!r->polling) return;
  if (status < 0) {
    dispatch(r, 0, status);
    return;
  }
  for (int round = 0; round < MAX_ROUNDS_PER_WAKE; round++) {
    unsigned n = reap(r);
    if (n == 0) break;
    if (dispatch(r, n, 0) != 0 || r->closed) return;
    // One io_uring_enter submits every reply of this round.
    flush_ring(r);
  }
}

static napi_value start(napi_env env, napi_callback_info info) {
  napi_value argv[3], name, resource;
  napi_valuetype type;
  napi_typedarray_type array_type;
  size_t array_length;
  void* array_data;
  ring_t* r = ring_call(env, info, 3, argv);
  if (r == NULL) return NULL;
  if (napi_get_typedarray_info(env, argv[1], &array_type, &array_length, &array_data, NULL, NULL) !=
          napi_ok ||
      array_type != napi_int32_array || array_length < 3 || napi_typeof(env, argv[2], &type) != napi_ok ||
      type != napi_function) {
    napi_throw_type_error(env, NULL, "furing.start(ring, results: Int32Array, onCompletions): bad arguments");
    return NULL;
  }
  // After close() the poll handle may still be closing (uv_close): never init it again.
  if (r->polling || r->ring_fd < 0 || r->closed) {
    napi_throw_error(env, NULL, "furing.start: already started or closed");
    return NULL;
  }
  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int rc = uv_poll_init(loop, &r->poll, r->ring_fd);
  if (rc != 0) {
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  // From here close() must uv_close the handle, even if a step below fails.
  r->polling = 1;
  r->poll.data = r;
  r->results = array_data;
  r->results_cap = (unsigned)(array_length / 3);
  CHECK(napi_create_reference(env, argv[1], 1, &r->results_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &r->callback));
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_reference(env, resource, 1, &r->resource));
  CHECK(napi_create_string_utf8(env, "FuseRing", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &r->async_context));
  rc = uv_poll_start(&r->poll, UV_READABLE, on_poll);
  if (rc != 0) {
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  return NULL;
}

// Both commit functions fill the entry and queue its COMMIT_AND_FETCH; inside a
// completion callback the submission waits for the end of it (one syscall for all).
static int32_t queue_commit(ring_t* r, uint32_t entry, const uint8_t* header, const uint8_t* body,
                            size_t body_bytes) {
  if (r->ring_fd < 0 || r->closed) return -EBADF;
  if (entry >= r->entries || body_bytes > r->payload_bytes) return -EINVAL;
  uint8_t* base = r->mem + (size_t)entry * r->stride;
  uint64_t unique;
  memcpy(&unique, header + 8, 8);
  memcpy(base + IN_OUT_OFFSET, header, OUT_HEADER_BYTES);
  if (body_bytes > 0) memmove(base + PAGE_BYTES, body, body_bytes);
  uint32_t payload_sz = (uint32_t)body_bytes;
  memcpy(base + ENT_PAYLOAD_SZ_OFFSET, &payload_sz, 4);
  if (r->pending >= r->sq_entries) {
    int flushed = flush_ring(r);
    if (flushed < 0) return flushed;
    if (r->pending >= r->sq_entries) return -EBUSY;
  }
  prep_cmd(r, next_sqe(r), entry, FUSE_IO_URING_CMD_COMMIT_AND_FETCH, unique);
  r->holder[entry] = HELD_BY_KERNEL;
  if (!r->in_dispatch) {
    int flushed = flush_ring(r);
    if (flushed < 0) return flushed;
  }
  return 0;
}

// A reply from JavaScript: only for an entry whose request JavaScript holds.
static int32_t commit_from_js(ring_t* r, uint32_t entry, const uint8_t* header, const uint8_t* body,
                              size_t body_bytes) {
  if (r->ring_fd < 0 || r->closed) return -EBADF;
  if (entry >= r->entries || r->holder[entry] != HELD_BY_JS) return -EINVAL;
  return queue_commit(r, entry, header, body, body_bytes);
}

static napi_value commit(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint32_t entry, length;
  void* data;
  size_t capacity;
  ring_t* r = ring_call(env, info, 4, argv);
  if (r == NULL) return NULL;
  if (napi_get_value_uint32(env, argv[1], &entry) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &data, &capacity) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &length) != napi_ok || length > capacity ||
      length < OUT_HEADER_BYTES) {
    napi_throw_type_error(env, NULL, "furing.commit(ring, entry, buffer, length): bad arguments");
    return NULL;
  }
  const uint8_t* bytes = data;
  return int_value(env, commit_from_js(r, entry, bytes, bytes + OUT_HEADER_BYTES, length - OUT_HEADER_BYTES));
}

static napi_value commit_two(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint32_t entry;
  void *header, *data;
  size_t header_bytes, data_bytes;
  ring_t* r = ring_call(env, info, 4, argv);
  if (r == NULL) return NULL;
  if (napi_get_value_uint32(env, argv[1], &entry) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &header, &header_bytes) != napi_ok ||
      napi_get_buffer_info(env, argv[3], &data, &data_bytes) != napi_ok || header_bytes < OUT_HEADER_BYTES) {
    napi_throw_type_error(env, NULL, "furing.commitTwo(ring, entry, header, data): bad arguments");
    return NULL;
  }
  return int_value(env, commit_from_js(r, entry, header, data, data_bytes));
}

static napi_value flush(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t* r = ring_call(env, info, 1, argv);
  if (r == NULL) return NULL;
  return int_value(env, flush_ring(r));
}

// The ring_t itself is never freed: the external that names it may still be reachable
// from JavaScript, and a closed ring answers every call with -EBADF (a few bytes per session).
static void on_poll_closed(uv_handle_t* handle) { ring_release((ring_t*)handle->data); }

static napi_value close_ring(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ring_t* r = ring_call(env, info, 1, argv);
  if (r == NULL || r->closed) return NULL;
  r->closed = 1;
  r->pending = 0;
  if (r->polling) {
    r->polling = 0;
    uv_poll_stop(&r->poll);
    if (r->callback) napi_delete_reference(env, r->callback);
    if (r->resource) napi_delete_reference(env, r->resource);
    if (r->results_ref) napi_delete_reference(env, r->results_ref);
    if (r->async_context) napi_async_destroy(env, r->async_context);
    r->callback = r->resource = r->results_ref = NULL;
    r->async_context = NULL;
    // Closing the ring fd cancels the entries the kernel holds; the struct goes once
    // libuv is done with the poll handle. The ring external must not be used again.
    uv_close((uv_handle_t*)&r->poll, on_poll_closed);
  } else {
    ring_release(r);
  }
  return NULL;
}

napi_value furing_init(napi_env env, napi_value exports) {
  napi_value ns;
  napi_property_descriptor props[] = {
      {"create", NULL, create, NULL, NULL, NULL, napi_default, NULL},
      {"register", NULL, register_entries, NULL, NULL, NULL, napi_default, NULL},
      {"reregister", NULL, reregister, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, start, NULL, NULL, NULL, napi_default, NULL},
      {"commit", NULL, commit, NULL, NULL, NULL, napi_default, NULL},
      {"commitTwo", NULL, commit_two, NULL, NULL, NULL, napi_default, NULL},
      {"flush", NULL, flush, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_ring, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_create_object(env, &ns) != napi_ok) return NULL;
  if (napi_define_properties(env, ns, 8, props) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "ring", ns) != napi_ok) return NULL;
  return exports;
}
