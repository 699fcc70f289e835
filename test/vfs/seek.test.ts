import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { asSliceId, Errno, isFsError, type Ino, type SliceRef } from '../../src/common/index.js';
import { SeekWhence } from '../../src/fuse/index.js';
import { chunkDataRanges, seekFile } from '../../src/vfs/seek.js';

const INO = 7 as Ino;

function slice(id: number, chunkOffsetBytes: number, lengthBytes: number): SliceRef {
  return {
    id: asSliceId(id),
    sliceSizeBytes: lengthBytes,
    chunkOffsetBytes,
    sliceOffsetBytes: 0,
    lengthBytes,
    blockSizeBytes: 4096,
  };
}

/** What lseek answers, or the errno name it fails with. */
async function answer(
  chunks: Map<number, SliceRef[]>,
  sizeBytes: number,
  chunkSizeBytes: number,
  offset: number,
  whence: number,
): Promise<number | string> {
  try {
    return await seekFile(INO, sizeBytes, chunkSizeBytes, offset, whence, async (first, last) => {
      const out = new Map<number, SliceRef[]>();
      for (const [idx, slices] of chunks) if (idx >= first && idx <= last) out.set(idx, slices);
      return out;
    });
  } catch (err) {
    if (isFsError(err) && err.errno === Errno.ENXIO) return 'ENXIO';
    throw err;
  }
}

/** The reference: which bytes hold data, by painting the slices in order. */
function dataBytes(chunks: Map<number, SliceRef[]>, sizeBytes: number, chunkSizeBytes: number): boolean[] {
  const bytes = new Array<boolean>(sizeBytes).fill(false);
  for (const [idx, slices] of chunks) {
    for (const s of slices) {
      for (let i = 0; i < s.lengthBytes; i++) {
        const at = idx * chunkSizeBytes + s.chunkOffsetBytes + i;
        if (at < sizeBytes) bytes[at] = (s.id as number) !== 0;
      }
    }
  }
  return bytes;
}

function expected(bytes: boolean[], offset: number, whence: number): number | string {
  if (offset >= bytes.length) return 'ENXIO';
  for (let i = offset; i < bytes.length; i++) if (bytes[i] === (whence === SeekWhence.SEEK_DATA)) return i;
  return whence === SeekWhence.SEEK_DATA ? 'ENXIO' : bytes.length;
}

test('a zero slice on top of data makes a hole; data over a zero slice is data again', () => {
  assert.deepEqual(chunkDataRanges([slice(1, 0, 100), slice(0, 20, 30), slice(2, 40, 5)]), [
    { startBytes: 0, endBytes: 20 },
    { startBytes: 40, endBytes: 45 },
    { startBytes: 50, endBytes: 100 },
  ]);
  assert.deepEqual(chunkDataRanges([slice(0, 0, 10)]), []);
});

test('SEEK_DATA and SEEK_HOLE match a byte-by-byte overlay of the data map (property)', async () => {
  const chunkSizeBytes = 16;
  const sliceArb = fc
    .record({ id: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 })), a: fc.nat(15), b: fc.nat(15) })
    .map(({ id, a, b }) => slice(id, Math.min(a, b), Math.abs(a - b) + 1));
  const fileArb = fc.record({
    sizeBytes: fc.integer({ min: 1, max: 80 }),
    chunks: fc.array(fc.tuple(fc.nat(5), fc.array(sliceArb, { maxLength: 5 })), { maxLength: 5 }),
  });
  await fc.assert(
    fc.asyncProperty(fileArb, async ({ sizeBytes, chunks }) => {
      const map = new Map(chunks);
      const bytes = dataBytes(map, sizeBytes, chunkSizeBytes);
      for (let offset = 0; offset <= sizeBytes + 1; offset++) {
        for (const whence of [SeekWhence.SEEK_DATA, SeekWhence.SEEK_HOLE]) {
          const got = await answer(map, sizeBytes, chunkSizeBytes, offset, whence);
          assert.equal(got, expected(bytes, offset, whence), `offset ${offset} whence ${whence}`);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('a file of many empty chunks is scanned in batches and ends in the hole at end of file', async () => {
  const chunkSizeBytes = 1024;
  const sizeBytes = 1000 * chunkSizeBytes;
  const map = new Map([[700, [slice(3, 100, 50)]]]);
  assert.equal(await answer(map, sizeBytes, chunkSizeBytes, 0, SeekWhence.SEEK_DATA), 700 * 1024 + 100);
  assert.equal(
    await answer(map, sizeBytes, chunkSizeBytes, 700 * 1024 + 120, SeekWhence.SEEK_HOLE),
    700 * 1024 + 150,
  );
  assert.equal(await answer(map, sizeBytes, chunkSizeBytes, 700 * 1024 + 150, SeekWhence.SEEK_DATA), 'ENXIO');
  assert.equal(await answer(map, sizeBytes, chunkSizeBytes, 5, SeekWhence.SEEK_HOLE), 5);
});

test('SEEK_SET and SEEK_END are answered; SEEK_CUR is refused with EINVAL', async () => {
  const map = new Map<number, SliceRef[]>();
  assert.equal(await answer(map, 100, 16, 30, SeekWhence.SEEK_SET), 30);
  assert.equal(await answer(map, 100, 16, 30, SeekWhence.SEEK_END), 130);
  await assert.rejects(
    answer(map, 100, 16, 30, SeekWhence.SEEK_CUR),
    (err) => isFsError(err) && err.errno === Errno.EINVAL,
  );
});
