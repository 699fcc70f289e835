// Property tests of the RPC frame parser and payload decoder (the server-level
// fuzzing of malformed frames lives in test/rpc/fuzz.test.ts): whatever bytes
// arrive, in whatever chunks, the parser yields exactly the frames sent or
// fails with its one documented error, and the payload decoder fails cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameDecoder, FrameTooLargeError } from '../../src/rpc/frame.js';
import { decodePayload, encodeFrame, FRAME_HEADER_BYTES } from '../../src/rpc/codec.js';
import { longProfile } from './tmpfs.js';

const RUNS = longProfile() ? 20_000 : 300;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0x4bc);
const MAX_FRAME_BYTES = 4096;

function framed(payloads: Uint8Array[]): Buffer {
  return Buffer.concat(
    payloads.flatMap((p) => {
      const header = Buffer.alloc(FRAME_HEADER_BYTES);
      header.writeUInt32BE(p.length, 0);
      return [header, Buffer.from(p)];
    }),
  );
}

/** Cuts `stream` at the given (sorted, deduplicated) offsets. */
function chunks(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const point of [...points, stream.length]) {
    out.push(stream.subarray(start, point));
    start = point;
  }
  return out;
}

test('frames cut into arbitrary chunks decode to exactly the payloads sent, in order', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: MAX_FRAME_BYTES }), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (payloads, cuts) => {
        const received: Buffer[] = [];
        // A payload is valid only during the callback: copy it, as a consumer must.
        const decoder = new FrameDecoder(MAX_FRAME_BYTES, (p) => received.push(Buffer.from(p)));
        for (const chunk of chunks(framed(payloads), cuts)) decoder.push(chunk);
        assert.deepEqual(
          received.map((b) => b.toString('hex')),
          payloads.map((p) => Buffer.from(p).toString('hex')),
        );
      },
    ),
    { numRuns: RUNS, seed: SEED },
  );
});

test('arbitrary bytes in arbitrary chunks yield whole frames or FrameTooLargeError, nothing else', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 20_000 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (bytes, cuts) => {
        const stream = Buffer.from(bytes);
        let deliveredBytes = 0;
        const decoder = new FrameDecoder(MAX_FRAME_BYTES, (p) => {
          assert.ok(p.length <= MAX_FRAME_BYTES, `frame of ${p.length} bytes passed the limit`);
          deliveredBytes += FRAME_HEADER_BYTES + p.length;
        });
        try {
          for (const chunk of chunks(stream, cuts)) decoder.push(chunk);
        } catch (error) {
          assert.ok(error instanceof FrameTooLargeError, `unexpected ${String(error)}`);
          assert.ok(error.frameBytes > MAX_FRAME_BYTES);
        }
        assert.ok(deliveredBytes <= stream.length, 'delivered more than arrived');
      },
    ),
    { numRuns: RUNS, seed: SEED },
  );
});

test('a frame of exactly the limit passes and one byte more is refused before buffering', () => {
  const atLimit = framed([new Uint8Array(MAX_FRAME_BYTES)]);
  let frames = 0;
  new FrameDecoder(MAX_FRAME_BYTES, () => frames++).push(atLimit);
  assert.equal(frames, 1);
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
  // Only the header arrives: the refusal must not wait for a body that may never come.
  assert.throws(() => new FrameDecoder(MAX_FRAME_BYTES, () => frames++).push(header), FrameTooLargeError);
});

test('the payload decoder answers arbitrary bytes with a value or an Error, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      try {
        decodePayload(Buffer.from(bytes));
      } catch (error) {
        assert.ok(error instanceof Error, `decoder threw a non-Error: ${String(error)}`);
      }
    }),
    { numRuns: RUNS * 10, seed: SEED },
  );
});

test('a truncated message never decodes to the original', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null)), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.nat(),
      (message, cut) => {
        const payload = encodeFrame(message).subarray(FRAME_HEADER_BYTES);
        const at = cut % payload.length;
        let decoded: unknown;
        try {
          decoded = decodePayload(payload.subarray(0, at));
        } catch (error) {
          assert.ok(error instanceof Error);
          return;
        }
        assert.notDeepEqual(decoded, message, `a ${at}-byte prefix of ${payload.length} decoded whole`);
      },
    ),
    { numRuns: RUNS, seed: SEED },
  );
});

test('a message followed by any extra bytes is refused (exactly one value per frame)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.integer(), fc.string(), fc.constant(null)), { maxLength: 6 }),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      (message, extra) => {
        const payload = Buffer.concat([
          encodeFrame(message).subarray(FRAME_HEADER_BYTES),
          Buffer.from(extra),
        ]);
        assert.throws(() => decodePayload(payload), Error);
      },
    ),
    { numRuns: RUNS, seed: SEED },
  );
});
