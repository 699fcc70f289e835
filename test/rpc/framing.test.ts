import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import {
  MessageType,
  EncodedValue,
  adoptEncodedValue,
  decodePayload,
  encodeFrame,
  encodeResultFrame,
} from '../../src/rpc/codec.js';
import { FrameDecoder, FrameTooLargeError } from '../../src/rpc/frame.js';
import { FsError, Errno } from '../../src/common/index.js';

/** Feeds `stream` to a decoder cut at `cuts` and returns the decoded messages. */
function decodeInChunks(stream: Buffer, cuts: number[], maxFrameBytes = 1 << 20): unknown[] {
  const out: unknown[] = [];
  const decoder = new FrameDecoder(maxFrameBytes, (payload) => out.push(decodePayload(payload)));
  let start = 0;
  for (const cut of [...cuts.sort((a, b) => a - b), stream.length]) {
    if (cut < start) continue;
    decoder.push(stream.subarray(start, cut));
    start = cut;
  }
  return out;
}

test('frames split across arbitrary chunk boundaries decode to the messages sent, in order', () => {
  const value = fc.oneof(
    fc.string(),
    fc.integer(),
    // msgpackr writes -0 as the integer 0 (no file system value depends on the sign of zero).
    fc.double({ noNaN: true }).map((value) => (Object.is(value, -0) ? 0 : value)),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 40_000 }).map((bytes) => Buffer.from(bytes)),
  );
  const seed = Number(process.env.STRATA_TEST_SEED ?? Date.now() % 1_000_000);
  console.log(`framing property seed ${seed}`);
  fc.assert(
    fc.property(
      fc.array(fc.array(value, { maxLength: 6 }), { minLength: 1, maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (messages, rawCuts) => {
        const stream = Buffer.concat(messages.map((message) => Buffer.from(encodeFrame(message))));
        const cuts = rawCuts.map((cut) => cut % (stream.length + 1));
        assert.deepEqual(decodeInChunks(stream, cuts), messages);
      },
    ),
    { seed, numRuns: 300 },
  );
});

test('a stream fed one byte at a time decodes like a whole one', () => {
  const messages = [
    [1, 'a', Buffer.from('xyz')],
    [2, { nested: [1, 2, 3] }],
    [3, 'x'.repeat(70_000)],
  ];
  const stream = Buffer.concat(messages.map((message) => Buffer.from(encodeFrame(message))));
  const cuts = Array.from({ length: stream.length }, (_, i) => i);
  assert.deepEqual(decodeInChunks(stream, cuts), messages);
});

test('a header announcing more than the limit fails before any payload is buffered', () => {
  const decoder = new FrameDecoder(1024, () => assert.fail('no frame expected'));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1025);
  assert.throws(() => decoder.push(header), FrameTooLargeError);
  // Also when the header itself arrives in pieces.
  const split = new FrameDecoder(1024, () => assert.fail('no frame expected'));
  split.push(header.subarray(0, 2));
  assert.throws(() => split.push(header.subarray(2)), /exceeds the 1024-byte limit/);
});

test('binary values decoded from a pooled frame do not change when the pool is reused', () => {
  const kept: Buffer[] = [];
  const decoder = new FrameDecoder(1 << 20, (payload) => kept.push((decodePayload(payload) as Buffer[])[0]));
  const first = encodeFrame([Buffer.alloc(100, 1)]);
  const second = encodeFrame([Buffer.alloc(100, 2)]);
  // Each frame split in two so both are assembled in the decoder's pool.
  decoder.push(first.subarray(0, 50));
  decoder.push(first.subarray(50));
  decoder.push(second.subarray(0, 50));
  decoder.push(second.subarray(50));
  assert.deepEqual(kept, [Buffer.alloc(100, 1), Buffer.alloc(100, 2)]);
});

test('the types of the metadata contract survive the codec', () => {
  const attr = {
    ino: 42,
    mode: 0o100644,
    uid: 1000,
    gid: 1000,
    nlink: 1,
    sizeBytes: 2 ** 40 + 3,
    rdev: 0,
    atime: { sec: 1_700_000_000, nsec: 999_999_999 },
    mtime: { sec: -1, nsec: 0 },
    ctime: { sec: 0, nsec: 1 },
    generation: 7,
  };
  const lock = { type: 'write', start: 0, end: Number.MAX_SAFE_INTEGER, pid: 9 };
  const message = [7, 1, { attr, lock, value: Buffer.from([0, 255, 1]), names: ['user.a', 'é'], none: null }];
  const frame = encodeFrame(message);
  assert.deepEqual(decodePayload(frame.subarray(4)), message);
  const error = new FsError(Errno.ENOENT, 'no entry');
  assert.deepEqual(decodePayload(encodeFrame([8, 1, error.errno, error.message]).subarray(4)), [
    8,
    1,
    Errno.ENOENT,
    'no entry',
  ]);
});

test('a RESULT frame built from bytes packed elsewhere equals the one packed here, for every id size', () => {
  // The engine thread packs a recorded change's reply with its own Packr (call-outcomes.ts).
  const elsewhere = new Packr({ useRecords: false, moreTypes: false });
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 0xffffffff })),
      fc.record({
        ino: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        mode: fc.integer({ min: 0, max: 0xffff }),
        name: fc.string(),
        target: fc.option(fc.string()),
        list: fc.array(
          fc.oneof(
            fc.integer(),
            fc.double({ noNaN: true }).filter((x) => !Object.is(x, -0)),
          ),
        ),
      }),
      (id, generated) => {
        const attr = { ...generated }; // fast-check may build null-prototype objects
        const bytes = Buffer.from(elsewhere.pack(attr));
        const value = adoptEncodedValue(bytes);
        assert.deepEqual(value, attr);
        const frame = encodeResultFrame(id, value);
        assert.deepEqual(frame, encodeFrame([MessageType.RESULT, id, attr]));
        // Bytes passed on undecoded make the same frame.
        assert.deepEqual(encodeResultFrame(id, new EncodedValue(bytes)), frame);
        assert.deepEqual(decodeInChunks(frame, []), [[MessageType.RESULT, id, attr]]);
      },
    ),
    { numRuns: 300 },
  );
  // Values nobody packed before take the ordinary path.
  assert.deepEqual(encodeResultFrame(7, { a: 1 }), encodeFrame([MessageType.RESULT, 7, { a: 1 }]));
});
