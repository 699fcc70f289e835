import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { Errno, asIno, asSliceId, isFsError } from '../../src/common/index.js';
import {
  bodyBytes,
  CorruptBlockError,
  openBlock,
  SEGMENT_BYTES,
  sealBlock,
  trailerBytes,
  verifySegments,
} from '../../src/data/block-format.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { blockKey, type BlockRef } from '../../src/data/layout.js';
import type { ObjectStore } from '../../src/object/index.js';
import { SliceTable } from './meta-standin.js';
import { fileStore, tempDirs, testSeed } from './helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The sealer of format SFB2 exactly as it was written until session 6 (src/data/block-format.ts
 * at c4912b4): blocks of volumes written before then look like this, and must read forever.
 */
function sealSfb2(buffer: Buffer, dataLength: number): Buffer {
  const segments = Math.max(1, Math.ceil(dataLength / SEGMENT_BYTES));
  const body = buffer.subarray(0, dataLength + segments * 16 + 12);
  for (let s = 0; s < segments; s++) {
    const start = s * SEGMENT_BYTES;
    createHash('sha256')
      .update(buffer.subarray(start, Math.min(dataLength, start + SEGMENT_BYTES)))
      .digest()
      .copy(body, dataLength + s * 16, 0, 16);
  }
  const footer = dataLength + segments * 16;
  body.writeUInt32LE(0x32424653, footer);
  body.writeUInt32LE(dataLength, footer + 4);
  body.writeUInt32LE(SEGMENT_BYTES, footer + 8);
  return body;
}

function ref(dataLength: number, sliceId = 7, blockIndex = 3): BlockRef {
  return { sliceId: asSliceId(sliceId), blockIndex, blockLengthBytes: dataLength };
}

type Format = 'SFB2' | 'SFB3';

/** A sealed body of `data` in `format`, as block `block`. */
function sealed(format: Format, data: Buffer, block: BlockRef): Buffer {
  const buffer = Buffer.alloc(bodyBytes(data.length));
  data.copy(buffer);
  return format === 'SFB2' ? sealSfb2(buffer, data.length) : sealBlock(buffer, block);
}

function magicOf(body: Buffer): string {
  return body.subarray(body.length - 12, body.length - 8).toString('latin1');
}

const corrupt = (error: unknown): boolean => error instanceof CorruptBlockError;

describe('block format', () => {
  it('writes SFB3, whose trailer has the size SFB2 has, so the trailer is found from the length alone', () => {
    for (const length of [1, SEGMENT_BYTES - 1, SEGMENT_BYTES, SEGMENT_BYTES + 1, 4 * MiB]) {
      const data = randomBytes(length);
      const block = ref(length);
      const body = sealed('SFB3', data, block);
      assert.equal(magicOf(body), 'SFB3');
      assert.equal(body.length, sealed('SFB2', data, block).length);
      assert.equal(body.length - length, trailerBytes(length));
      assert.ok(openBlock(body, block).equals(data), `length ${length}`);
    }
  });

  for (const format of ['SFB2', 'SFB3'] as const) {
    it(`${format}: whole bodies and single segments verify against the trailer`, () => {
      const length = 5 * SEGMENT_BYTES + 999;
      const data = randomBytes(length);
      const block = ref(length);
      const body = sealed(format, data, block);
      assert.equal(magicOf(body), format);
      assert.ok(openBlock(body, block).equals(data));
      const trailer = body.subarray(length);
      for (let first = 0; first < 6; first++) {
        const end = Math.min(length, (first + 2) * SEGMENT_BYTES);
        verifySegments(data.subarray(first * SEGMENT_BYTES, end), first, trailer, block);
      }
    });

    it(`${format}: a changed byte anywhere, a short body or a damaged footer is a CorruptBlockError`, () => {
      const seed = testSeed(`${format} corruption`);
      const length = 3 * SEGMENT_BYTES + 100;
      const data = randomBytes(length);
      const block = ref(length);
      const body = sealed(format, data, block);
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: body.length - 1 }),
          fc.integer({ min: 1, max: 255 }),
          (at, mask) => {
            const damaged = Buffer.from(body);
            damaged[at] ^= mask;
            assert.throws(() => openBlock(damaged, block), corrupt, `byte ${at} ^ ${mask}`);
          },
        ),
        { seed, numRuns: 300 },
      );
      assert.throws(() => openBlock(body.subarray(0, body.length - 1), block), /truncated or wrong object/);
      assert.throws(() => openBlock(Buffer.concat([body, Buffer.alloc(1)]), block), corrupt);
      // A segment shorter than the trailer says (the last one cut short) fails too.
      assert.throws(
        () => verifySegments(data.subarray(3 * SEGMENT_BYTES, length - 1), 3, body.subarray(length), block),
        /segment 3 has 99 bytes, expected 100/,
      );
    });
  }

  it('SFB3: a block opened as another block, or segments out of place, fail verification', () => {
    const length = 2 * SEGMENT_BYTES;
    const data = randomBytes(length);
    const body = sealed('SFB3', data, ref(length, 7, 3));
    for (const other of [ref(length, 8, 3), ref(length, 7, 2), ref(length, 7 + 2 ** 32, 3)]) {
      assert.throws(() => openBlock(body, other), /checksum mismatch in segment 0/);
    }
    // The two segments swapped together with their slots: each slot still matches its bytes.
    const swapped = (body: Buffer): Buffer =>
      Buffer.concat([
        body.subarray(SEGMENT_BYTES, length),
        body.subarray(0, SEGMENT_BYTES),
        body.subarray(length + 16, length + 32),
        body.subarray(length, length + 16),
        body.subarray(length + 32),
      ]);
    assert.throws(() => openBlock(swapped(body), ref(length, 7, 3)), /checksum mismatch in segment 0/);
    // What SFB2 could not see: its checks name neither the block nor the segment's place.
    const old = sealed('SFB2', data, ref(length));
    assert.ok(openBlock(old, ref(length, 8, 3)).equals(data));
    assert.ok(
      openBlock(swapped(old), ref(length)).equals(
        Buffer.concat([data.subarray(SEGMENT_BYTES), data.subarray(0, SEGMENT_BYTES)]),
      ),
    );
  });

  it('an unknown format magic is damage, not a format to guess at', () => {
    const body = sealed('SFB3', randomBytes(1000), ref(1000));
    body.write('SFB4', body.length - 12, 'latin1');
    assert.throws(() => openBlock(body, ref(1000)), /block trailer is damaged/);
  });
});

describe('blocks written in SFB2 (before session 6) on a volume', () => {
  const BLOCK = 1 * MiB;
  const CHUNK = 4 * BLOCK;

  function dataPath(store: ObjectStore, extra: Partial<Parameters<typeof createDataPath>[0]> = {}): DataPath {
    return createDataPath({
      store,
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: async () => {
        throw new Error('this test only reads');
      },
      ...extra,
    });
  }

  /**
   * Writes `content` through today's data path, then rewrites every block object in the store as
   * the SFB2 sealer would have written it: the state of a volume written before session 6.
   */
  async function oldVolume(storeDir: string, content: Buffer): Promise<SliceTable> {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(storeDir),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    try {
      const writer = data.openWriter(asIno(1));
      await writer.write(0, content);
      table.commit(await writer.flush(), content.length);
    } finally {
      await data.close();
    }
    for (const path of await walk(join(storeDir, 'chunks'))) {
      const length = Number(/_(\d+)$/.exec(path)?.[1]);
      const body = await readFile(path);
      assert.equal(magicOf(body), 'SFB3', `${relative(storeDir, path)} was written as SFB3`);
      await writeFile(path, sealSfb2(body, length));
      assert.equal(magicOf(await readFile(path)), 'SFB2');
    }
    return table;
  }

  async function walk(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) out.push(...(await walk(path)));
      else out.push(path);
    }
    return out;
  }

  function content(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = (i * 29 + (i >>> 11)) & 255;
    return out;
  }

  it('read back whole, by segments and through the disk cache', async () => {
    const storeDir = await dirs.make();
    const file = content(2 * BLOCK + 3 * SEGMENT_BYTES + 17);
    const table = await oldVolume(storeDir, file);
    const whole = dataPath(await fileStore(storeDir));
    try {
      assert.ok((await whole.read(asIno(1), 0, file.length, table.chunkSlices, file.length)).equals(file));
    } finally {
      await whole.close();
    }
    const cacheDir = await dirs.make();
    const random = dataPath(await fileStore(storeDir), { diskCacheDir: cacheDir });
    try {
      // Reads far apart, each from its own inode: random reads, fetched as segments + trailer.
      for (let i = 0; i < 12; i++) {
        const offset = (i % 2 === 0 ? 8 * KiB : BLOCK + 700 * KiB) + i * 10 * KiB;
        const got = await random.read(asIno(100 + i), offset, 4 * KiB, table.chunkSlices, file.length);
        assert.ok(got.equals(file.subarray(offset, offset + 4 * KiB)), `read at ${offset}`);
      }
      assert.ok(random.stats().fetches.bytes < file.length, 'segments were fetched, not whole blocks');
      assert.equal(random.stats().fetches.corrupt, 0);
    } finally {
      await random.close();
    }
    // SFB2 bodies in the disk cache (kept there before session 6) read without the store.
    const slice = table.chunks.get(0)![0];
    const oldCacheDir = await dirs.make();
    for (const blockIndex of [0, 1]) {
      const key = blockKey({ sliceId: slice.id, blockIndex, blockLengthBytes: BLOCK });
      await mkdir(dirname(join(oldCacheDir, key)), { recursive: true });
      await writeFile(join(oldCacheDir, key), await readFile(join(storeDir, key)));
    }
    const cached = dataPath(await fileStore(await dirs.make()), { diskCacheDir: oldCacheDir });
    try {
      while (cached.stats().diskCache.blocks < 2) await new Promise((resolve) => setTimeout(resolve, 5));
      const offset = BLOCK + 300 * KiB;
      const part = await cached.read(asIno(2), offset, 4 * KiB, table.chunkSlices, file.length);
      assert.ok(part.equals(file.subarray(offset, offset + 4 * KiB)));
      const first = await cached.read(asIno(3), 0, BLOCK, table.chunkSlices, file.length);
      assert.ok(first.equals(file.subarray(0, BLOCK)));
      assert.equal(cached.stats().fetches.corrupt, 0);
      assert.ok(cached.stats().diskCache.hits >= 2, 'both reads came from the disk cache');
    } finally {
      await cached.close();
    }
  });

  it('a damaged SFB2 block in the store is EIO naming the segment; a damaged disk-cache copy is refetched', async () => {
    const storeDir = await dirs.make();
    const file = content(2 * BLOCK);
    const table = await oldVolume(storeDir, file);
    const slice = table.chunks.get(0)![0];
    const key = blockKey({ sliceId: slice.id, blockIndex: 1, blockLengthBytes: BLOCK });

    // A whole-block copy in the disk cache, damaged in segment 4; the store's copy is sound.
    const cacheDir = await dirs.make();
    const sound = await readFile(join(storeDir, key));
    const damaged = Buffer.from(sound);
    damaged[4 * SEGMENT_BYTES + 9] ^= 0x40;
    await mkdir(dirname(join(cacheDir, key)), { recursive: true });
    await writeFile(join(cacheDir, key), damaged);
    const fromCache = dataPath(await fileStore(storeDir), { diskCacheDir: cacheDir });
    try {
      while (fromCache.stats().diskCache.blocks === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      const offset = BLOCK + 4 * SEGMENT_BYTES;
      const got = await fromCache.read(asIno(1), offset, 8 * KiB, table.chunkSlices, file.length);
      assert.ok(got.equals(file.subarray(offset, offset + 8 * KiB)));
      assert.equal(fromCache.stats().diskCache.corrupt, 1, 'the cache copy failed its SFB2 check');
    } finally {
      await fromCache.close();
    }

    await writeFile(join(storeDir, key), damaged);
    const fromStore = dataPath(await fileStore(storeDir));
    try {
      await assert.rejects(
        fromStore.read(asIno(1), BLOCK, BLOCK, table.chunkSlices, file.length),
        (error: unknown) => {
          assert.ok(isFsError(error));
          assert.equal(error.errno, Errno.EIO);
          assert.match(error.message, /block checksum mismatch in segment 4/);
          return true;
        },
      );
    } finally {
      await fromStore.close();
    }
  });

  it('a file with SFB2 blocks overwritten in part today reads as one file of both formats', async () => {
    const storeDir = await dirs.make();
    const file = content(3 * BLOCK);
    const table = await oldVolume(storeDir, file);
    const patch = randomBytes(BLOCK + 5000);
    const patchAt = BLOCK - 2000;
    const writing = createDataPath({
      store: await fileStore(storeDir),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    try {
      const writer = writing.openWriter(asIno(1));
      await writer.write(patchAt, patch);
      table.commit(await writer.flush(), file.length);
    } finally {
      await writing.close();
    }
    patch.copy(file, patchAt);
    const formats = new Set<string>();
    for (const path of await walk(join(storeDir, 'chunks'))) formats.add(magicOf(await readFile(path)));
    assert.deepEqual([...formats].sort(), ['SFB2', 'SFB3']);
    const reading = dataPath(await fileStore(storeDir));
    try {
      assert.ok((await reading.read(asIno(1), 0, file.length, table.chunkSlices, file.length)).equals(file));
    } finally {
      await reading.close();
    }
  });
});
