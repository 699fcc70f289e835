import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Errno, asIno, asSliceId, isFsError, type SliceRef } from '../../src/common/index.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { bodyBytes, SEGMENT_BYTES, trailerBytes } from '../../src/data/block-format.js';
import { blockKey } from '../../src/data/layout.js';
import { withFaults, type ObjectInfo, type ObjectStore } from '../../src/object/index.js';
import { SliceTable } from './meta-standin.js';
import { fileStore, tempDirs } from './helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

const BLOCK = 4096;
const CHUNK = 8 * BLOCK;

function pattern(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 13 + seed * 101) & 255;
  return out;
}

/** Counts gets in flight at once on a real store. */
class CountingStore implements ObjectStore {
  readonly description: string;
  inFlight = 0;
  maxInFlight = 0;
  gets = 0;
  constructor(private readonly inner: ObjectStore) {
    this.description = inner.description;
  }
  async get(key: string, offset?: number, length?: number): Promise<Buffer> {
    this.gets++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      return await this.inner.get(key, offset, length);
    } finally {
      this.inFlight--;
    }
  }
  put(key: string, data: Buffer): Promise<void> {
    return this.inner.put(key, data);
  }
  head(key: string): Promise<ObjectInfo | null> {
    return this.inner.head(key);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  list(prefix: string, startAfter?: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, startAfter);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Writes `content` as one file through a data path on `storeDir` and returns its slice table. */
async function writeFileData(storeDir: string, content: Buffer): Promise<SliceTable> {
  const table = new SliceTable(CHUNK, BLOCK);
  const data = createDataPath({
    store: await fileStore(storeDir),
    blockSizeBytes: BLOCK,
    chunkSizeBytes: CHUNK,
    allocateSliceIds: table.allocateSliceIds,
  });
  const writer = data.openWriter(asIno(1));
  await writer.write(0, content);
  table.commit(await writer.flush(), content.length);
  await data.close();
  return table;
}

function reader(store: ObjectStore, extra: Partial<Parameters<typeof createDataPath>[0]> = {}): DataPath {
  return createDataPath({
    store,
    blockSizeBytes: BLOCK,
    chunkSizeBytes: CHUNK,
    allocateSliceIds: async () => {
      throw new Error('a reader allocates no slice ids');
    },
    ...extra,
  });
}

describe('reader', () => {
  it('reads holes and bytes past the end of the slices as zeros, and nothing past the file size', async () => {
    const storeDir = await dirs.make();
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(storeDir),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(1));
    await writer.write(3 * CHUNK + 10, pattern(100, 1));
    table.commit(await writer.flush(), 3 * CHUNK + 110);
    table.sizeBytes = 5 * CHUNK;
    const all = await data.read(asIno(1), 0, 10 * CHUNK, table.chunkSlices, table.sizeBytes);
    assert.equal(all.length, 5 * CHUNK);
    const want = Buffer.alloc(5 * CHUNK);
    pattern(100, 1).copy(want, 3 * CHUNK + 10);
    assert.ok(all.equals(want));
    assert.equal((await data.read(asIno(1), 5 * CHUNK, 100, table.chunkSlices, table.sizeBytes)).length, 0);
  });

  it('fetches the blocks of one read in parallel', async () => {
    const storeDir = await dirs.make();
    const content = pattern(16 * BLOCK, 2);
    const table = await writeFileData(storeDir, content);
    const counting = new CountingStore(withFaults(await fileStore(storeDir), { latencyMs: 5 }));
    const data = reader(counting);
    assert.ok(
      (await data.read(asIno(1), 0, content.length, table.chunkSlices, table.sizeBytes)).equals(content),
    );
    assert.equal(counting.gets, 16);
    assert.ok(counting.maxInFlight > 1, `gets ran one at a time (max ${counting.maxInFlight} in flight)`);
  });

  it('reads ahead on sequential reads, growing the window, and not on random ones', async () => {
    const storeDir = await dirs.make();
    const content = pattern(32 * BLOCK, 3);
    const table = await writeFileData(storeDir, content);
    const sequential = reader(await fileStore(storeDir), { maxReadaheadBytes: 8 * BLOCK });
    for (let offset = 0; offset < content.length; offset += 1024) {
      const got = await sequential.read(asIno(1), offset, 1024, table.chunkSlices, table.sizeBytes);
      assert.ok(got.equals(content.subarray(offset, offset + 1024)));
    }
    const seqStats = sequential.stats();
    assert.ok(
      seqStats.fetches.readaheadBlocks > 16,
      `only ${seqStats.fetches.readaheadBlocks} blocks read ahead`,
    );
    assert.equal(seqStats.fetches.blocks, 32, 'each block fetched once');

    const random = reader(await fileStore(storeDir), { maxReadaheadBytes: 8 * BLOCK });
    for (let block = 31; block >= 0; block -= 3) {
      await random.read(asIno(1), block * BLOCK, 100, table.chunkSlices, table.sizeBytes);
    }
    assert.equal(random.stats().fetches.readaheadBlocks, 0);
  });

  it('deepens readahead past 8 blocks while a stream waits on a slow store, up to its ceiling', async () => {
    const storeDir = await dirs.make();
    const content = pattern(64 * BLOCK, 5);
    const table = await writeFileData(storeDir, content);
    async function streamOnce(ceilingBytes?: number): Promise<number> {
      const counting = new CountingStore(withFaults(await fileStore(storeDir), { latencyMs: 20 }));
      const data = reader(counting, ceilingBytes === undefined ? {} : { maxReadaheadBytes: ceilingBytes });
      for (let offset = 0; offset < content.length; offset += 1024) {
        const got = await data.read(asIno(1), offset, 1024, table.chunkSlices, table.sizeBytes);
        assert.ok(got.equals(content.subarray(offset, offset + 1024)), `wrong bytes at ${offset}`);
      }
      assert.equal(data.stats().fetches.blocks, 64, 'each block fetched once');
      return counting.maxInFlight;
    }
    // Blocks take 20 ms and reads take microseconds: the stream keeps catching up with its
    // readahead, so the window grows until bandwidth x latency is in flight.
    const deep = await streamOnce();
    assert.ok(deep > 12, `at most ${deep} gets in flight: the window did not grow past 8 blocks`);
    const capped = await streamOnce(8 * BLOCK);
    assert.ok(capped <= 9, `${capped} gets in flight despite an 8-block ceiling`);
  });

  it('reads a reference copy (non-zero sliceOffsetBytes into a multi-block slice) right', async () => {
    const storeDir = await dirs.make();
    const content = pattern(3 * BLOCK, 4);
    const table = await writeFileData(storeDir, content);
    const source = table.chunks.get(0)![0];
    const copy: SliceRef = {
      ...source,
      chunkOffsetBytes: 100,
      sliceOffsetBytes: BLOCK - 50,
      lengthBytes: BLOCK + 100,
    };
    const data = reader(await fileStore(storeDir));
    const got = await data.read(
      asIno(2),
      0,
      2 * BLOCK,
      async (chunk) => (chunk === 0 ? [copy] : []),
      2 * BLOCK,
    );
    const want = Buffer.alloc(2 * BLOCK);
    content.copy(want, 100, BLOCK - 50, 2 * BLOCK + 50);
    assert.ok(got.equals(want));
  });

  it('uses a zero slice (id 0) as a hole over older data', async () => {
    const storeDir = await dirs.make();
    const content = pattern(BLOCK, 5);
    const table = await writeFileData(storeDir, content);
    table.chunks.get(0)!.push({
      id: asSliceId(0),
      sliceSizeBytes: 100,
      chunkOffsetBytes: 50,
      sliceOffsetBytes: 0,
      lengthBytes: 100,
      blockSizeBytes: BLOCK,
    });
    const got = await reader(await fileStore(storeDir)).read(asIno(1), 0, BLOCK, table.chunkSlices, BLOCK);
    const want = Buffer.from(content);
    want.fill(0, 50, 150);
    assert.ok(got.equals(want));
  });
});

describe('integrity', () => {
  it('retries a block that arrives corrupted or truncated and returns the right data', async () => {
    const storeDir = await dirs.make();
    const content = pattern(12 * BLOCK, 6);
    const table = await writeFileData(storeDir, content);
    const faulty = withFaults(await fileStore(storeDir), { seed: 11, corruptRate: 0.3, truncateRate: 0.2 });
    const data = reader(faulty, { corruptRetries: 20, maxReadaheadBytes: 0 });
    for (let block = 0; block < 12; block++) {
      const got = await data.read(asIno(1), block * BLOCK, BLOCK, table.chunkSlices, table.sizeBytes);
      assert.ok(got.equals(content.subarray(block * BLOCK, (block + 1) * BLOCK)), `block ${block} differs`);
    }
    assert.ok(faulty.stats.corrupted + faulty.stats.truncated > 0, 'the seed injected no damage');
    assert.equal(data.stats().fetches.corrupt, faulty.stats.corrupted + faulty.stats.truncated);
  });

  it('reports a block damaged in the store as EIO after the retries, never its bytes', async () => {
    const storeDir = await dirs.make();
    const content = pattern(2 * BLOCK, 7);
    const table = await writeFileData(storeDir, content);
    const slice = table.chunks.get(0)![0];
    const path = join(storeDir, blockKey({ sliceId: slice.id, blockIndex: 1, blockLengthBytes: BLOCK }));
    const body = await readFile(path);
    body[123] ^= 0x04;
    await writeFile(path, body);
    const data = reader(await fileStore(storeDir), { corruptRetries: 3 });
    assert.ok(
      (await data.read(asIno(1), 0, BLOCK, table.chunkSlices, table.sizeBytes)).equals(
        content.subarray(0, BLOCK),
      ),
    );
    await assert.rejects(
      data.read(asIno(1), BLOCK, BLOCK, table.chunkSlices, table.sizeBytes),
      (error: unknown) => {
        assert.ok(isFsError(error));
        assert.equal(error.errno, Errno.EIO);
        assert.match(error.message, /failed verification 3 times \(block checksum mismatch in segment 0\)/);
        return true;
      },
    );
    assert.equal(data.stats().fetches.corrupt, 3);
  });

  it('reports a block missing from the store as EIO saying to reopen, or that data was lost', async () => {
    const storeDir = await dirs.make();
    const table = await writeFileData(storeDir, pattern(100, 8));
    const slice = table.chunks.get(0)![0];
    const store = await fileStore(storeDir);
    await store.delete(blockKey({ sliceId: slice.id, blockIndex: 0, blockLengthBytes: 100 }));
    await assert.rejects(
      reader(store).read(asIno(1), 0, 100, table.chunkSlices, 100),
      /is missing from .*reopen the file.*data was lost/,
    );
  });

  it('detects a corrupted disk-cache file, drops it and refetches the block', async () => {
    const storeDir = await dirs.make();
    const cacheDir = await dirs.make();
    const content = pattern(4 * BLOCK, 9);
    const table = await writeFileData(storeDir, content);
    const first = reader(await fileStore(storeDir), { diskCacheDir: cacheDir });
    assert.ok(
      (await first.read(asIno(1), 0, content.length, table.chunkSlices, table.sizeBytes)).equals(content),
    );
    await first.close();
    assert.equal(first.stats().diskCache.blocks, 4);

    const slice = table.chunks.get(0)![0];
    const cached = join(cacheDir, blockKey({ sliceId: slice.id, blockIndex: 2, blockLengthBytes: BLOCK }));
    const body = await readFile(cached);
    body[7] ^= 0xff;
    await writeFile(cached, body);

    const second = reader(await fileStore(storeDir), { diskCacheDir: cacheDir });
    assert.ok(
      (await second.read(asIno(1), 0, content.length, table.chunkSlices, table.sizeBytes)).equals(content),
    );
    const stats = second.stats();
    assert.equal(stats.diskCache.corrupt, 1);
    assert.equal(stats.diskCache.hits, 4);
    assert.equal(stats.fetches.blocks, 1, 'only the damaged block came from the store');
    await second.close();
    assert.ok(
      (await readFile(cached)).equals(
        await (
          await fileStore(storeDir)
        ).get(blockKey({ sliceId: slice.id, blockIndex: 2, blockLengthBytes: BLOCK })),
      ),
    );
  });
});

describe('partial (segment) fetches of random reads', () => {
  const BIG_BLOCK = 1024 * 1024;
  const BIG_CHUNK = 4 * BIG_BLOCK;
  const KiB = 1024;

  async function bigFile(storeDir: string, blocks = 2): Promise<{ table: SliceTable; content: Buffer }> {
    const content = pattern(blocks * BIG_BLOCK, 12);
    const table = new SliceTable(BIG_CHUNK, BIG_BLOCK);
    const data = createDataPath({
      store: await fileStore(storeDir),
      blockSizeBytes: BIG_BLOCK,
      chunkSizeBytes: BIG_CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(1));
    await writer.write(0, content);
    table.commit(await writer.flush(), content.length);
    return { table, content };
  }

  function bigReader(
    store: ObjectStore,
    extra: Partial<Parameters<typeof createDataPath>[0]> = {},
  ): DataPath {
    return reader(store, { blockSizeBytes: BIG_BLOCK, chunkSizeBytes: BIG_CHUNK, ...extra });
  }

  /** Reads of file 1 checked against its content. */
  function checkedReads(data: DataPath, table: SliceTable, content: Buffer) {
    return async (offset: number, length: number): Promise<void> => {
      const got = await data.read(asIno(1), offset, length, table.chunkSlices, table.sizeBytes);
      assert.ok(got.equals(content.subarray(offset, offset + length)), `read ${offset}+${length} differs`);
    };
  }

  async function readaheadLanded(data: DataPath): Promise<boolean> {
    for (let i = 0; i < 200 && data.stats().fetches.readaheadBlocks === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return data.stats().fetches.readaheadBlocks > 0;
  }

  it('in a file larger than the memory budget, takes a small read next to the last one for a stream only when the next continues it too', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir, 6);
    const data = bigReader(await fileStore(storeDir), { memoryBudgetBytes: 5 * BIG_BLOCK });
    const read = checkedReads(data, table, content);
    // Random 4 KiB reads, one of them landing just past the one before (as 1 in ~500 do on a
    // 1 GiB file): segments only, nothing read ahead.
    await read(BIG_BLOCK + 316 * KiB, 4 * KiB);
    await read(BIG_BLOCK + 320 * KiB, 4 * KiB);
    await read(3 * BIG_BLOCK + 40 * KiB, 4 * KiB);
    await new Promise((resolve) => setTimeout(resolve, 100)); // any readahead would land meanwhile
    const { fetches } = data.stats();
    assert.equal(fetches.readaheadBlocks, 0, 'nothing read ahead');
    assert.equal(fetches.bytes, 3 * SEGMENT_BYTES + 2 * trailerBytes(BIG_BLOCK), 'segments, not blocks');
    // Three small reads in a row: a stream from the third on, read ahead.
    await read(2 * BIG_BLOCK, 4 * KiB);
    await read(2 * BIG_BLOCK + 4 * KiB, 4 * KiB);
    await read(2 * BIG_BLOCK + 8 * KiB, 4 * KiB);
    assert.ok(await readaheadLanded(data), 'a stream reads ahead');
  });

  it('in a file that fits the memory budget, takes a small read next to the last one for a stream at once', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir, 4);
    const data = bigReader(await fileStore(storeDir));
    const read = checkedReads(data, table, content);
    // The whole blocks such a coincidence brings stay cached for the random reads that follow.
    await read(BIG_BLOCK + 316 * KiB, 4 * KiB);
    await read(BIG_BLOCK + 320 * KiB, 4 * KiB);
    assert.ok(await readaheadLanded(data), 'read ahead from the second read');
  });

  it('fetches only the needed segments plus the trailer, and reuses both', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir);
    const data = bigReader(await fileStore(storeDir));
    const trailer = trailerBytes(BIG_BLOCK);
    // Each read comes from its own inode: none continues a stream, so all are random reads.
    const readAt = async (ino: number, offset: number, length: number) => {
      const got = await data.read(asIno(ino), offset, length, table.chunkSlices, table.sizeBytes);
      assert.ok(got.equals(content.subarray(offset, offset + length)), `read ${offset}+${length} differs`);
      return data.stats().fetches.bytes;
    };
    assert.equal(await readAt(101, 300 * KiB, 4 * KiB), SEGMENT_BYTES + trailer);
    assert.equal(await readAt(102, 310 * KiB, 4 * KiB), SEGMENT_BYTES + trailer, 'same segment: no fetch');
    assert.equal(
      await readAt(103, 380 * KiB, 8 * KiB),
      3 * SEGMENT_BYTES + trailer,
      'two new segments, cached trailer',
    );
    assert.equal(
      await readAt(104, 316 * KiB, 80 * KiB),
      3 * SEGMENT_BYTES + trailer,
      'assembled from cached segments',
    );
    const before = data.stats().fetches.bytes;
    assert.equal(
      await readAt(105, BIG_BLOCK + 200 * KiB, 600 * KiB),
      before + bodyBytes(BIG_BLOCK),
      'a big read takes the whole block',
    );
  });

  it('shares one segment fetch between parallel reads of neighbouring pages', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir);
    const data = bigReader(await fileStore(storeDir));
    const offsets = [640 * KiB, 644 * KiB, 648 * KiB, 652 * KiB];
    const got = await Promise.all(
      offsets.map((offset, i) =>
        data.read(asIno(400 + i), offset, 4 * KiB, table.chunkSlices, table.sizeBytes),
      ),
    );
    offsets.forEach((offset, i) => assert.ok(got[i].equals(content.subarray(offset, offset + 4 * KiB))));
    assert.equal(data.stats().fetches.bytes, SEGMENT_BYTES + trailerBytes(BIG_BLOCK));
  });

  it('verifies each segment alone: damage elsewhere in the block does not fail a clean read', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir);
    const slice = table.chunks.get(0)![0];
    const path = join(storeDir, blockKey({ sliceId: slice.id, blockIndex: 0, blockLengthBytes: BIG_BLOCK }));
    const body = await readFile(path);
    body[9 * SEGMENT_BYTES + 5] ^= 0x10;
    await writeFile(path, body);
    const data = bigReader(await fileStore(storeDir));
    const clean = await data.read(asIno(1), 2 * SEGMENT_BYTES, 4 * KiB, table.chunkSlices, table.sizeBytes);
    assert.ok(clean.equals(content.subarray(2 * SEGMENT_BYTES, 2 * SEGMENT_BYTES + 4 * KiB)));
    await assert.rejects(
      data.read(asIno(2), 9 * SEGMENT_BYTES, 4 * KiB, table.chunkSlices, table.sizeBytes),
      (error: unknown) => {
        assert.ok(isFsError(error));
        assert.equal(error.errno, Errno.EIO);
        assert.match(error.message, /failed verification 3 times \(block checksum mismatch in segment 9\)/);
        return true;
      },
    );
  });

  /**
   * Offsets of a random read pattern over the two blocks: each more than a block (the sequential
   * slack) away from where the previous read ended.
   */
  const randomOffset = (i: number) =>
    i % 2 === 0 ? 8 * KiB + i * 20 * KiB : BIG_BLOCK + 700 * KiB + i * 10 * KiB;

  /** Waits (without a deadline of its own: the test runner's timeout is the limit) for `done`. */
  async function until(done: () => boolean): Promise<void> {
    while (!done()) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  it('copies a file read at random into the disk cache, then reads it without the store', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir);
    const store = new CountingStore(await fileStore(storeDir));
    const data = bigReader(store, { diskCacheDir: await dirs.make() });
    const readAt = async (offset: number) => {
      const got = await data.read(asIno(7), offset, 4 * KiB, table.chunkSlices, table.sizeBytes);
      assert.ok(got.equals(content.subarray(offset, offset + 4 * KiB)), `read at ${offset} differs`);
    };
    // Seven random reads: segment fetches only, no copy yet.
    for (let i = 1; i <= 7; i++) await readAt(randomOffset(i));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(data.stats().diskCache.blocks, 0);
    await readAt(randomOffset(8));
    await until(() => data.stats().diskCache.blocks === 2);
    assert.equal(data.stats().fetches.diskFillBlocks, 2, 'both blocks came through the whole-file copy');
    const getsBefore = store.gets;
    const hitsBefore = data.stats().diskCache.hits;
    for (let i = 9; i < 28; i++) await readAt(randomOffset(i) + 3);
    assert.equal(store.gets, getsBefore, 'every random read came from the disk copy');
    assert.ok(data.stats().diskCache.hits > hitsBefore);
    await data.close();
  });

  it('a copy started by a read with a fill listener hands on every block verified, where it shows', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir);
    const data = bigReader(await fileStore(storeDir), { diskCacheDir: await dirs.make() });
    const handed: { offset: number; bytes: Buffer }[] = [];
    let fills = 0;
    const listener = {
      startFill: () => {
        fills++;
        return async (offset: number, bytes: Buffer) =>
          void handed.push({ offset, bytes: Buffer.from(bytes) });
      },
    };
    for (let i = 1; i <= 8; i++) {
      await data.read(asIno(7), randomOffset(i), 4 * KiB, table.chunkSlices, table.sizeBytes, listener);
    }
    await until(() => data.stats().diskCache.blocks === 2);
    assert.equal(fills, 1, 'one copy, started by the eighth random read');
    handed.sort((x, y) => x.offset - y.offset);
    assert.deepEqual(
      handed.map((h) => [h.offset, h.bytes.length]),
      [
        [0, BIG_BLOCK],
        [BIG_BLOCK, BIG_BLOCK],
      ],
    );
    for (const h of handed) assert.ok(h.bytes.equals(content.subarray(h.offset, h.offset + h.bytes.length)));
    await data.close();
  });

  it('readCached serves only verified bytes already in memory, and never fetches', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir);
    const store = new CountingStore(await fileStore(storeDir));
    const data = bigReader(store);
    const window = [3 * SEGMENT_BYTES, SEGMENT_BYTES] as const;
    assert.equal(await data.readCached(...window, table.chunkSlices, table.sizeBytes), null);
    assert.equal(store.gets, 0, 'readCached fetched');
    await data.read(asIno(3), 3 * SEGMENT_BYTES + 8 * KiB, 4 * KiB, table.chunkSlices, table.sizeBytes);
    const gets = store.gets;
    const cached = await data.readCached(...window, table.chunkSlices, table.sizeBytes);
    assert.ok(cached?.equals(content.subarray(window[0], window[0] + window[1])));
    // The segment after it was never read: not served, not fetched.
    assert.equal(
      await data.readCached(4 * SEGMENT_BYTES, SEGMENT_BYTES, table.chunkSlices, table.sizeBytes),
      null,
    );
    assert.equal(store.gets, gets);
    await data.close();
  });

  it('close() stops a whole-file copy: no GET starts after it, none is left in flight', async () => {
    const storeDir = await dirs.make();
    // Twelve 1 MiB blocks behind a 20 ms store: the copy (8 GETs at a time) outlives the reads.
    const { table } = await bigFile(storeDir, 12);
    const store = new CountingStore(withFaults(await fileStore(storeDir), { latencyMs: 20 }));
    const data = bigReader(store, { diskCacheDir: await dirs.make() });
    for (let i = 1; i <= 8; i++) {
      await data.read(asIno(7), randomOffset(i), 4 * KiB, table.chunkSlices, table.sizeBytes);
    }
    await until(() => store.inFlight > 0);
    await data.close();
    assert.equal(store.inFlight, 0, 'close() returned with GETs of the copy still in flight');
    const getsAtClose = store.gets;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(store.gets, getsAtClose, 'the copy went on fetching after close()');
    assert.ok(data.stats().diskCache.blocks < 12, 'the copy was stopped before it finished');
  });

  it('does not copy a file larger than half the disk cache, nor one read in sequence', async () => {
    const storeDir = await dirs.make();
    const { table } = await bigFile(storeDir);
    const small = bigReader(await fileStore(storeDir), {
      diskCacheDir: await dirs.make(),
      diskCacheBytes: 3 * BIG_BLOCK,
    });
    for (let i = 1; i <= 12; i++) {
      await small.read(asIno(7), randomOffset(i), 4 * KiB, table.chunkSlices, table.sizeBytes);
    }
    const sequential = bigReader(await fileStore(storeDir), { diskCacheDir: await dirs.make() });
    for (let offset = 0; offset < 2 * BIG_BLOCK; offset += 128 * KiB) {
      await sequential.read(asIno(7), offset, 128 * KiB, table.chunkSlices, table.sizeBytes);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(small.stats().diskCache.blocks, 0);
    // Sequential reads fetch whole blocks and keep them (put() in the background): blocks, yes,
    // but no whole-body GET beyond the two blocks the reads themselves needed.
    assert.equal(sequential.stats().fetches.blocks, 2);
    await small.close();
    await sequential.close();
  });

  it('drops a disk-cache copy whose segment is damaged and reads the store instead', async () => {
    const storeDir = await dirs.make();
    const cacheDir = await dirs.make();
    const { table, content } = await bigFile(storeDir);
    const first = bigReader(await fileStore(storeDir), { diskCacheDir: cacheDir });
    for (let i = 1; i <= 8; i++) {
      await first.read(asIno(7), randomOffset(i), 4 * KiB, table.chunkSlices, table.sizeBytes);
    }
    await until(() => first.stats().diskCache.blocks === 2);
    await first.close();
    const slice = table.chunks.get(0)![0];
    const key = blockKey({ sliceId: slice.id, blockIndex: 0, blockLengthBytes: BIG_BLOCK });
    const body = await readFile(join(cacheDir, key));
    body[5 * SEGMENT_BYTES + 100] ^= 0x01;
    await writeFile(join(cacheDir, key), body);

    const store = new CountingStore(await fileStore(storeDir));
    const second = bigReader(store, { diskCacheDir: cacheDir });
    await until(() => second.stats().diskCache.blocks === 2); // the cache's index, loaded from its directory
    const offset = 5 * SEGMENT_BYTES + 64;
    const got = await second.read(asIno(9), offset, 4 * KiB, table.chunkSlices, table.sizeBytes);
    assert.ok(got.equals(content.subarray(offset, offset + 4 * KiB)));
    assert.equal(second.stats().diskCache.corrupt, 1);
    assert.ok(store.gets > 0, 'the damaged segment came from the store');
    await second.close();
  });

  it('retries segments or trailers that arrive damaged and returns the right bytes', async () => {
    const storeDir = await dirs.make();
    const { table, content } = await bigFile(storeDir);
    const faulty = withFaults(await fileStore(storeDir), { seed: 5, corruptRate: 0.25, truncateRate: 0.25 });
    const data = bigReader(faulty, { corruptRetries: 30 });
    for (let i = 0; i < 24; i++) {
      const offset = ((i * 7919 * KiB) % (2 * BIG_BLOCK - 8 * KiB)) + 1;
      const got = await data.read(asIno(300 + i), offset, 5 * KiB, table.chunkSlices, table.sizeBytes);
      assert.ok(got.equals(content.subarray(offset, offset + 5 * KiB)), `read at ${offset} differs`);
    }
    assert.ok(faulty.stats.corrupted + faulty.stats.truncated > 0, 'the seed injected no damage');
    assert.ok(data.stats().fetches.corrupt > 0);
  });
});
