import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Errno, asIno, isFsError } from '../../src/common/index.js';
import { bodyBytes } from '../../src/data/block-format.js';
import { createDataPath } from '../../src/data/index.js';
import type { ObjectInfo, ObjectStore } from '../../src/object/index.js';
import { withFaults } from '../../src/object/index.js';
import { SliceTable } from './meta-standin.js';
import { fileStore, tempDirs } from './helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

const BLOCK = 4096;
const CHUNK = 4 * BLOCK;
/** The smallest budget the data path accepts for 4 KiB blocks (4 blocks with trailers). */
const MIN_BUDGET = 4 * bodyBytes(BLOCK);

/** Wraps a real store; puts wait while the gate is closed (a store that stopped answering). */
class GatedStore implements ObjectStore {
  readonly description = 'gated';
  private opened: (() => void) | null = null;
  private gate: Promise<void> | null = null;
  puts = 0;
  constructor(private readonly inner: ObjectStore) {}
  close_(): void {
    this.gate = new Promise((resolve) => (this.opened = resolve));
  }
  open(): void {
    this.opened?.();
    this.gate = null;
  }
  async put(key: string, data: Buffer): Promise<void> {
    if (this.gate) await this.gate;
    this.puts++;
    await this.inner.put(key, data);
  }
  get(key: string, offset?: number, length?: number): Promise<Buffer> {
    return this.inner.get(key, offset, length);
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

function pattern(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7) & 255;
  return out;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.ok(condition(), `timed out waiting for ${what}`);
}

describe('writer', () => {
  it('splits a write at the chunk boundary: a slice never crosses chunks', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(2));
    await writer.write(CHUNK - 100, pattern(200, 1));
    assert.equal(writer.pendingBytes, 200);
    assert.equal(writer.pendingEndBytes, CHUNK + 100);
    const writes = await writer.flush();
    assert.deepEqual(
      writes.map((w) => [
        w.chunkIndex,
        w.slice.chunkOffsetBytes,
        w.slice.lengthBytes,
        w.slice.sliceOffsetBytes,
      ]),
      [
        [0, CHUNK - 100, 100, 0],
        [1, 0, 100, 0],
      ],
    );
    assert.equal(writer.pendingBytes, 0);
    table.commit(writes, CHUNK + 100);
    const got = await data.read(asIno(2), CHUNK - 150, 300, table.chunkSlices, table.sizeBytes);
    assert.ok(got.subarray(0, 50).equals(Buffer.alloc(50)), 'bytes before the write are a hole: zeros');
    assert.ok(got.subarray(50).equals(pattern(200, 1)));
  });

  it('extends the last segment on contiguous writes and starts a new one in the same slice otherwise, in order', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(3));
    await writer.write(0, pattern(5000, 1));
    await writer.write(5000, pattern(3000, 2));
    await writer.write(100, pattern(10, 3));
    await writer.write(110, pattern(20, 4));
    const writes = await writer.flush();
    assert.deepEqual(
      writes.map((w) => [
        w.slice.chunkOffsetBytes,
        w.slice.sliceOffsetBytes,
        w.slice.lengthBytes,
        w.slice.sliceSizeBytes,
        w.slice.blockSizeBytes,
      ]),
      [
        [0, 0, 8000, 8030, BLOCK],
        [100, 8000, 30, 8030, BLOCK],
      ],
    );
    assert.equal(writes[0].slice.id, writes[1].slice.id);
    table.commit(writes, 8000);
    const want = Buffer.concat([pattern(5000, 1), pattern(3000, 2)]);
    Buffer.concat([pattern(10, 3), pattern(20, 4)]).copy(want, 100);
    assert.ok((await data.read(asIno(3), 0, 9000, table.chunkSlices, table.sizeBytes)).equals(want));
  });

  it('packs scattered small writes into shared block objects; later writes win where they overlap', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const store = new GatedStore(await fileStore(await dirs.make()));
    const data = createDataPath({
      store,
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(4));
    // 64 writes of 100 bytes, backwards then overlapping, over two chunks: 6,400 bytes in all.
    const want = Buffer.alloc(2 * CHUNK);
    const writesDone: Array<[number, number]> = [];
    for (let i = 0; i < 64; i++) {
      const offset = i < 32 ? (31 - i) * 500 : (i - 32) * 1000 + 50;
      writesDone.push([offset, i]);
      await writer.write(offset, pattern(100, i));
      pattern(100, i).copy(want, offset);
    }
    const writes = await writer.flush();
    // One object per filled block, not one per write: 6,400 bytes in 4 KiB blocks, two chunks.
    assert.ok(store.puts <= 4, `${store.puts} objects for 64 small writes`);
    const ids = new Set(writes.map((w) => w.slice.id));
    assert.ok(ids.size <= 2, `${ids.size} slices`);
    const end = Math.max(...writesDone.map(([offset]) => offset + 100));
    table.commit(writes, end);
    const got = await data.read(asIno(4), 0, end, table.chunkSlices, table.sizeBytes);
    assert.ok(got.equals(want.subarray(0, end)));
  });

  it('keeps uploaded partial blocks in the memory cache; full blocks go back to the pool for the next block', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(8));
    await writer.write(0, pattern(3 * BLOCK + 100, 3));
    await writer.write(5 * BLOCK, pattern(10, 4));
    table.commit(await writer.flush(), 5 * BLOCK + 10);
    const want = Buffer.alloc(5 * BLOCK + 10);
    pattern(3 * BLOCK + 100, 3).copy(want);
    pattern(10, 4).copy(want, 5 * BLOCK);
    let stats = data.stats();
    assert.equal(stats.memoryCache.blocks, 2, 'the two partial blocks');
    // The 10-byte block sits in a right-sized copy, not in its 64 KiB write buffer.
    assert.ok(stats.memoryCache.bytes < 2 * BLOCK + 200, `cache holds ${stats.memoryCache.bytes} bytes`);
    assert.equal(stats.bufferPool.buffers, 3, 'the three full blocks, for reuse');
    assert.equal(stats.memory.usedBytes, stats.memoryCache.bytes + stats.bufferPool.bytes);

    // The next stream fills the pooled buffers instead of new ones, and its blocks are its own.
    const next = data.openWriter(asIno(9));
    const nextTable = new SliceTable(CHUNK, BLOCK);
    await next.write(0, pattern(2 * BLOCK, 9));
    nextTable.commit(await next.flush(), 2 * BLOCK);
    stats = data.stats();
    assert.equal(stats.bufferPool.reused, 2);
    assert.ok((await data.read(asIno(8), 0, want.length, table.chunkSlices, table.sizeBytes)).equals(want));
    assert.equal(data.stats().fetches.blocks, 3, 'only the full blocks are fetched back');
    const back = await data.read(asIno(9), 0, 2 * BLOCK, nextTable.chunkSlices, nextTable.sizeBytes);
    assert.ok(back.equals(pattern(2 * BLOCK, 9)));
    // Block reads took the idle pooled buffers (the first memory the budget would reclaim).
    assert.equal(data.stats().bufferPool.reused, 2 + 3);
    await data.close();
  });

  it('copies what it keeps: the caller may reuse its buffer at once', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(4));
    const reused = pattern(1000, 5);
    await writer.write(0, reused);
    reused.fill(0xee);
    table.commit(await writer.flush(), 1000);
    assert.ok((await data.read(asIno(4), 0, 1000, table.chunkSlices, 1000)).equals(pattern(1000, 5)));
  });

  it('reports a failed upload as EIO from flush, once, with the cause attached', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const faulty = withFaults(await fileStore(await dirs.make()), { operations: ['put'] });
    const data = createDataPath({
      store: faulty,
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(5));
    faulty.failNext(1);
    await writer.write(0, pattern(BLOCK, 1));
    await assert.rejects(writer.flush(), (error: unknown) => {
      assert.ok(isFsError(error));
      assert.equal(error.errno, Errno.EIO);
      assert.match(error.message, /inode 5.*uploading data to .* failed.*injected failure/);
      assert.ok(error.cause instanceof Error);
      return true;
    });
    assert.equal(data.stats().uploads.errors, 1);
    await writer.write(0, pattern(100, 2));
    const writes = await writer.flush();
    assert.equal(writes.length, 1);
    table.commit(writes, 100);
    assert.ok((await data.read(asIno(5), 0, 100, table.chunkSlices, 100)).equals(pattern(100, 2)));
  });

  it('makes writers wait when the budget is full and lets them go as uploads finish', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const gated = new GatedStore(await fileStore(await dirs.make()));
    const data = createDataPath({
      store: gated,
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      memoryBudgetBytes: MIN_BUDGET,
      gcHeadroomBytes: 0,
      maxInFlightUploads: 2,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(6));
    gated.close_();
    for (let i = 0; i < 4; i++) await writer.write(i * BLOCK, pattern(BLOCK, i));
    let fifthDone = false;
    const fifth = writer.write(4 * BLOCK, pattern(BLOCK, 4)).then(() => (fifthDone = true));
    await until(() => data.stats().memory.waitingAcquires === 1, 'the fifth write to wait for memory');
    assert.equal(fifthDone, false, 'a write beyond the budget must wait');
    assert.equal(data.stats().memory.usedBytes, MIN_BUDGET);
    gated.open();
    await fifth;
    for (let i = 5; i < 12; i++) await writer.write(i * BLOCK, pattern(BLOCK, i));
    table.commit(await writer.flush(), 12 * BLOCK);
    const want = Buffer.concat(Array.from({ length: 12 }, (_, i) => pattern(BLOCK, i)));
    assert.ok((await data.read(asIno(6), 0, 12 * BLOCK, table.chunkSlices, table.sizeBytes)).equals(want));
    const { memory } = data.stats();
    assert.ok(
      memory.peakBytes <= memory.limitBytes,
      `peak ${memory.peakBytes} over the budget ${memory.limitBytes}`,
    );
  });

  it(
    'forces partial blocks out under pressure so many small writers never deadlock',
    { timeout: 30_000 },
    async () => {
      const table = new SliceTable(CHUNK, BLOCK);
      const data = createDataPath({
        store: withFaults(await fileStore(await dirs.make()), { latencyMs: 2 }),
        blockSizeBytes: BLOCK,
        chunkSizeBytes: CHUNK,
        memoryBudgetBytes: MIN_BUDGET,
        gcHeadroomBytes: 0,
        allocateSliceIds: table.allocateSliceIds,
      });
      // 8 files each hold a partial block: twice what the budget holds, and no full block to upload.
      const writers = Array.from({ length: 8 }, (_, i) => data.openWriter(asIno(100 + i)));
      await Promise.all(writers.map((writer, i) => writer.write(0, pattern(3000, i))));
      await Promise.all(writers.map((writer, i) => writer.write(3000, pattern(3000, i + 50))));
      const tables = writers.map(() => new SliceTable(CHUNK, BLOCK));
      for (const [i, writer] of writers.entries()) tables[i].commit(await writer.flush(), 6000);
      for (const [i, t] of tables.entries()) {
        const got = await data.read(asIno(100 + i), 0, 6000, t.chunkSlices, t.sizeBytes);
        assert.ok(got.equals(Buffer.concat([pattern(3000, i), pattern(3000, i + 50)])), `file ${i} differs`);
      }
      const { memory } = data.stats();
      assert.ok(memory.peakBytes <= memory.limitBytes);
      assert.equal(
        memory.usedBytes,
        data.stats().memoryCache.bytes,
        'only the cache holds memory once all is flushed',
      );
    },
  );

  it('refuses writes past 2^53-1 bytes with EFBIG (offsets are not exact there), bad offsets with EINVAL', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(9));
    const errnoOf = (offset: number, length: number): Promise<number | string> =>
      writer.write(offset, Buffer.alloc(length, 1)).then(
        () => 'accepted',
        (err: unknown) => (isFsError(err) ? err.errno : String(err)),
      );
    // What the kernel's u64 offsets 2^53+, 2^62 and 2^63-2 (fio, dd seek=) read as.
    assert.equal(await errnoOf(Number.MAX_SAFE_INTEGER - 4, 8), Errno.EFBIG);
    assert.equal(await errnoOf(2 ** 62, 2), Errno.EFBIG);
    assert.equal(await errnoOf(2 ** 63, 2), Errno.EFBIG);
    assert.equal(await errnoOf(-1, 2), Errno.EINVAL);
    assert.equal(await errnoOf(1.5, 2), Errno.EINVAL);
    // Up to the last exact byte is fine.
    assert.equal(await errnoOf(Number.MAX_SAFE_INTEGER - 8, 8), 'accepted');
    assert.equal(writer.pendingEndBytes, Number.MAX_SAFE_INTEGER);
    await writer.abort();
  });

  it('abort drops buffered data and gives its memory back', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(9));
    await writer.write(0, pattern(BLOCK + 10, 1));
    await writer.abort();
    assert.equal(writer.pendingBytes, 0);
    // The full first block was uploaded before the abort: only the pool (or cache) holds it now.
    const { memory, memoryCache, bufferPool } = data.stats();
    assert.equal(memory.usedBytes, memoryCache.bytes + bufferPool.bytes);
    assert.deepEqual(await writer.flush(), []);
  });

  it('holds a small file of a 4 MiB-block volume in one page until it grows, doubling', async () => {
    const MiB = 1024 * 1024;
    const table = new SliceTable(64 * MiB, 4 * MiB);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: 4 * MiB,
      chunkSizeBytes: 64 * MiB,
      memoryBudgetBytes: 64 * MiB,
      gcHeadroomBytes: 0,
      allocateSliceIds: table.allocateSliceIds,
    });
    const writer = data.openWriter(asIno(11));
    // Every small file's buffer is memory outside the JavaScript heap: 64 KiB each made V8 run
    // full collections instead of scavenges (bench/RESULTS.md, Mounted volume, session 22).
    await writer.write(0, pattern(4096, 1));
    assert.equal(data.stats().memory.usedBytes, bodyBytes(4096));
    await writer.write(4096, pattern(100, 2));
    assert.equal(data.stats().memory.usedBytes, bodyBytes(8192));
    await writer.write(4196, pattern(20_000, 3));
    assert.equal(data.stats().memory.usedBytes, bodyBytes(32_768));
    table.commit(await writer.flush(), 24_196);
    const got = await data.read(asIno(11), 0, 24_196, table.chunkSlices, table.sizeBytes);
    assert.ok(got.equals(Buffer.concat([pattern(4096, 1), pattern(100, 2), pattern(20_000, 3)])));
  });
  it('holds back part of the budget for uncollected garbage, 64 MiB at most', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const store = await fileStore(await dirs.make());
    const open = (memoryBudgetBytes: number) =>
      createDataPath({
        store,
        blockSizeBytes: BLOCK,
        chunkSizeBytes: CHUNK,
        memoryBudgetBytes,
        allocateSliceIds: table.allocateSliceIds,
      });
    assert.equal(open(80_000).stats().memory.limitBytes, 70_000);
    assert.equal(open(1024 * 1024 * 1024).stats().memory.limitBytes, 960 * 1024 * 1024);
  });

  it('rejects a budget too small for its block size, saying what is needed', () => {
    const table = new SliceTable(CHUNK, BLOCK);
    assert.throws(
      () =>
        createDataPath({
          store: {} as ObjectStore,
          blockSizeBytes: BLOCK,
          chunkSizeBytes: CHUNK,
          memoryBudgetBytes: BLOCK,
          allocateSliceIds: table.allocateSliceIds,
        }),
      new RegExp(`memory budget 4096 bytes is too small .* at least ${MIN_BUDGET} bytes`),
    );
    assert.throws(
      () =>
        createDataPath({
          store: {} as ObjectStore,
          blockSizeBytes: 3000,
          chunkSizeBytes: CHUNK,
          allocateSliceIds: table.allocateSliceIds,
        }),
      /multiple of the block size/,
    );
  });
});
