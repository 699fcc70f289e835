import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import { afterEach, beforeEach, test } from 'node:test';
import { loadRingAddon, type RingAddon, type RingHandle } from '../../src/fuse/ring.js';

// The io_uring addon (native/fdpoll/furing.c) on its own, without a mount: the ring's
// commands target /dev/null, which refuses them, so every REGISTER completes with an
// error. What is checked is the addon's own bookkeeping: what it accepts from
// JavaScript, and that it cannot be driven into reusing buffers or handles.

const { EALREADY, EBADF, EINVAL } = constants.errno;
const ENTRIES_PER_QUEUE = 2;
const PAYLOAD_BYTES = 8192;

let addon: RingAddon;
let devNull = -1;
let ring: RingHandle | undefined;

beforeEach(() => {
  addon = loadRingAddon();
  devNull = openSync('/dev/null', 'r+');
  ring = addon.create(devNull, 1, ENTRIES_PER_QUEUE, PAYLOAD_BYTES).ring;
});

afterEach(() => {
  if (ring) addon.close(ring);
  ring = undefined;
  closeSync(devNull);
});

function theRing(): RingHandle {
  assert.ok(ring);
  return ring;
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

test('the entries are registered once: a second register would hand the kernel the same buffers twice', async () => {
  const r = theRing();
  const completions: Array<[number, number]> = [];
  const results = new Int32Array(3 * 8);
  let settle: () => void = () => undefined;
  const allFailed = new Promise<void>((resolve) => (settle = resolve));
  addon.start(r, results, (count) => {
    for (let i = 0; i < count; i++) completions.push([results[3 * i], results[3 * i + 1]]);
    if (completions.length >= ENTRIES_PER_QUEUE) settle();
  });
  assert.equal(addon.register(r), ENTRIES_PER_QUEUE);
  assert.equal(addon.register(r), -EALREADY);
  await allFailed;
  // /dev/null has no uring_cmd: each entry comes back once, as a failure naming it.
  assert.deepEqual(
    completions.map(([entry]) => entry).sort(),
    Array.from({ length: ENTRIES_PER_QUEUE }, (_, i) => i),
  );
  for (const [, start] of completions) assert.ok(start < 0, `entry completed with ${start}`);
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
  assert.equal(addon.commitTwo(r, 0, reply.subarray(0, 16), Buffer.alloc(PAYLOAD_BYTES + 1)), -EINVAL);
  assert.throws(() => addon.commit(r, 0, reply, 65), /bad arguments/);
  assert.throws(() => addon.commit(r, 0, reply, 15), /bad arguments/);
  assert.throws(() => addon.commitTwo(r, 0, reply.subarray(0, 8), reply), /bad arguments/);
  assert.throws(() => addon.reregister(r, ENTRIES_PER_QUEUE), /bad entry/);
});
