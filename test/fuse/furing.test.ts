import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import { afterEach, beforeEach, test } from 'node:test';
import { loadRingAddon, type RingAddon, type RingHandle } from '../../src/fuse/ring.js';

// The io_uring addon (native/fdpoll/furing.c) on its own, without a mount. The ring's
// commands target either a regular file, which has no uring_cmd (every command fails with
// EOPNOTSUPP), or /dev/null, whose uring_cmd does nothing and succeeds (the entry then
// completes holding no request). What is checked is the addon's own bookkeeping: what it
// accepts from JavaScript, and that it cannot be driven into reusing buffers or handles.

const { EALREADY, EBADF, EINVAL, EOPNOTSUPP, EPROTO } = constants.errno;
const ENTRIES_PER_QUEUE = 2;
const PAYLOAD_BYTES = 8192;

let addon: RingAddon;
let devNull = -1;
let regularFile = -1;
let ring: RingHandle | undefined;

beforeEach(() => {
  addon = loadRingAddon();
  devNull = openSync('/dev/null', 'r+');
  regularFile = openSync(process.execPath, 'r');
  ring = addon.create(devNull, 1, ENTRIES_PER_QUEUE, PAYLOAD_BYTES).ring;
});

afterEach(() => {
  if (ring) addon.close(ring);
  ring = undefined;
  closeSync(devNull);
  closeSync(regularFile);
});

function theRing(): RingHandle {
  assert.ok(ring);
  return ring;
}

/** Starts `r` and resolves with the first [entry, start] pair of each entry. */
function firstCompletions(r: RingHandle): Promise<Array<[number, number]>> {
  const results = new Int32Array(3 * 8);
  const seen: Array<[number, number]> = [];
  return new Promise((resolve) => {
    addon.start(r, results, (count) => {
      for (let i = 0; i < count && seen.length < ENTRIES_PER_QUEUE; i++)
        seen.push([results[3 * i], results[3 * i + 1]]);
      if (seen.length === ENTRIES_PER_QUEUE) resolve(seen.sort((a, b) => a[0] - b[0]));
    });
  });
}

test('create lays out one page of header and the page-rounded payload per entry, and refuses absurd sizes', () => {
  const setup = addon.create(devNull, 2, 3, PAYLOAD_BYTES + 1);
  try {
    assert.equal(setup.payloadOffset, 4096);
    assert.equal(setup.strideBytes, 4096 + 12288);
    assert.equal(setup.memory.byteLength, 6 * setup.strideBytes);
  } finally {
    addon.close(setup.ring);
  }
  assert.throws(() => addon.create(devNull, 0, 1, PAYLOAD_BYTES), /out of range/);
  assert.throws(() => addon.create(devNull, 1, 257, PAYLOAD_BYTES), /out of range/);
  assert.throws(() => addon.create(devNull, 1, 1, 4096), /out of range/);
});

test('the entries are registered once, and only an entry whose command failed is registered again', async () => {
  const setup = addon.create(regularFile, 1, ENTRIES_PER_QUEUE, PAYLOAD_BYTES);
  try {
    const r = setup.ring;
    const completed = firstCompletions(r);
    assert.equal(addon.register(r), ENTRIES_PER_QUEUE);
    assert.equal(addon.register(r), -EALREADY);
    // The kernel holds the entries now: neither a reply nor a second REGISTER may touch them.
    assert.equal(addon.commit(r, 0, Buffer.alloc(16), 16), -EINVAL);
    assert.equal(addon.reregister(r, 0), -EINVAL);
    assert.deepEqual(await completed, [
      [0, -EOPNOTSUPP],
      [1, -EOPNOTSUPP],
    ]);
    // A failed entry is held by nobody: it may be registered again, once, but not answered.
    assert.equal(addon.commit(r, 1, Buffer.alloc(16), 16), -EINVAL);
    assert.equal(addon.reregister(r, 1), 0);
    assert.equal(addon.reregister(r, 1), -EINVAL);
  } finally {
    addon.close(setup.ring);
  }
});

test('an entry that completes without a well-formed request is answered in C and reported as EPROTO', async () => {
  const r = theRing();
  const completed = firstCompletions(r);
  assert.equal(addon.register(r), ENTRIES_PER_QUEUE);
  // /dev/null completes each REGISTER at once, leaving the entry empty (a 0-byte request).
  assert.deepEqual(await completed, [
    [0, -EPROTO],
    [1, -EPROTO],
  ]);
  // The addon answered it (EIO) itself, so the entry went back to the kernel: JavaScript
  // may neither answer it again nor register it twice.
  assert.equal(addon.commit(r, 0, Buffer.alloc(16), 16), -EINVAL);
  assert.equal(addon.reregister(r, 0), -EINVAL);
});

test('a closed ring answers EBADF and cannot be started again while its poll handle closes', () => {
  const r = theRing();
  addon.start(r, new Int32Array(3), () => undefined);
  addon.close(r);
  ring = undefined;
  // libuv finishes closing the poll handle on a later loop turn: starting now would
  // initialise a handle that is still being closed.
  assert.throws(() => addon.start(r, new Int32Array(3), () => undefined), /closed/);
  assert.equal(addon.register(r), -EBADF);
  assert.equal(addon.reregister(r, 0), -EBADF);
  const reply = Buffer.alloc(16);
  assert.equal(addon.commit(r, 0, reply, 16), -EBADF);
  assert.equal(addon.flush(r), 0);
  addon.close(r); // idempotent
});

test('commit checks the entry and the lengths JavaScript passes', () => {
  const r = theRing();
  const reply = Buffer.alloc(64);
  assert.equal(addon.commit(r, ENTRIES_PER_QUEUE, reply, 16), -EINVAL);
  // No request ever arrived in entry 0: there is nothing to answer.
  assert.equal(addon.commit(r, 0, reply, 16), -EINVAL);
  assert.equal(addon.commitTwo(r, 0, reply.subarray(0, 16), Buffer.alloc(PAYLOAD_BYTES + 1)), -EINVAL);
  assert.throws(() => addon.commit(r, 0, reply, 65), /bad arguments/);
  assert.throws(() => addon.commit(r, 0, reply, 15), /bad arguments/);
  assert.throws(() => addon.commitTwo(r, 0, reply.subarray(0, 8), reply), /bad arguments/);
  assert.throws(() => addon.reregister(r, ENTRIES_PER_QUEUE), /bad entry/);
});
