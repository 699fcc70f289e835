import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { asIno } from '../../src/common/index.js';
import { bodyBytes } from '../../src/data/block-format.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { withRetry, type ObjectInfo, type ObjectStore } from '../../src/object/index.js';
import { nativePut } from '../../src/object/backends/native-put.js';
import { SliceTable } from './meta-standin.js';
import { fileStore, tempDirs } from './helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

const BLOCK = 64 * 1024;
const CHUNK = 16 * BLOCK;

function pattern(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed * 13 + (i >>> 9)) & 255;
  return out;
}

/**
 * A store whose first put does not answer until `release()`, and then writes the bytes its
 * `data` holds at that moment: a request the retry wrapper gave up on that reaches the store
 * late. Later puts pass straight through.
 */
class LatePutStore implements ObjectStore {
  readonly description: string;
  private held = false;
  private releaseHeld: (() => void) | null = null;
  /** Settles once the late put has written. */
  lateWrite: Promise<void> | null = null;

  constructor(
    private readonly inner: ObjectStore,
    /** Whether to say how many puts were abandoned (the inner store's count). */
    private readonly canSay: boolean,
  ) {
    this.description = inner.description;
  }

  get abandonedAttempts(): number | undefined {
    return this.canSay ? this.inner.abandonedAttempts : undefined;
  }

  release(): void {
    this.releaseHeld?.();
  }

  put(key: string, data: Buffer): Promise<void> {
    if (this.held) return this.inner.put(key, data);
    this.held = true;
    this.lateWrite = new Promise<void>((resolve) => (this.releaseHeld = resolve)).then(() =>
      this.inner.put(key, data),
    );
    return this.lateWrite;
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

function dataPath(store: ObjectStore, table: SliceTable, memoryBudgetBytes?: number): DataPath {
  return createDataPath({
    store,
    blockSizeBytes: BLOCK,
    chunkSizeBytes: CHUNK,
    allocateSliceIds: table.allocateSliceIds,
    ...(memoryBudgetBytes === undefined ? {} : { memoryBudgetBytes, gcHeadroomBytes: 0 }),
  });
}

async function writeFile(data: DataPath, table: SliceTable, ino: number, content: Buffer): Promise<void> {
  const writer = data.openWriter(asIno(ino));
  await writer.write(0, content);
  table.commit(await writer.flush(), content.length);
}

describe('block buffer pool', () => {
  it('never reuses a buffer a put attempt given up on may still read; the late write stores the right bytes', async () => {
    const storeDir = await dirs.make();
    const late = new LatePutStore(await fileStore(storeDir), true);
    // Long enough that the retry, a real put, is never given up on too under load.
    const store = withRetry(late, { attemptTimeoutMs: 1000, baseDelayMs: 1, maxDelayMs: 1 });
    const tableA = new SliceTable(CHUNK, BLOCK);
    const data = dataPath(store, tableA);
    const first = pattern(BLOCK, 1);
    let pooledAfterFirst = -1;
    try {
      await writeFile(data, tableA, 1, first);
      assert.equal(store.stats.retries, 1, 'the first put was given up on and retried');
      assert.equal(store.abandonedAttempts, 1);
      pooledAfterFirst = data.stats().bufferPool.buffers;
      // A next stream: had the buffer been pooled, these bytes would fill it.
      const tableB = new SliceTable(CHUNK, BLOCK);
      await writeFile(data, tableB, 2, pattern(4 * BLOCK, 2));
      late.release();
      await late.lateWrite;
    } finally {
      await data.close();
    }
    const cold = dataPath(await fileStore(storeDir), tableA);
    try {
      assert.ok((await cold.read(asIno(1), 0, BLOCK, tableA.chunkSlices, BLOCK)).equals(first));
    } finally {
      await cold.close();
    }
    assert.equal(pooledAfterFirst, 0, 'its buffer was not pooled');
  });

  it('reuses buffers behind a retry wrapper that gave up on nothing, never behind a store that cannot say', async () => {
    for (const canSay of [true, false]) {
      const storeDir = await dirs.make();
      const late = new LatePutStore(await fileStore(storeDir), canSay);
      const store = withRetry(late, { attemptTimeoutMs: 5000 });
      const table = new SliceTable(CHUNK, BLOCK);
      const data = dataPath(store, table);
      try {
        const contents = [pattern(3 * BLOCK, 5), pattern(3 * BLOCK, 6)];
        // The first put is held until release(): let it through at once.
        const firstWrite = writeFile(data, table, 1, contents[0]);
        while (late.lateWrite === null) await new Promise((resolve) => setTimeout(resolve, 1));
        late.release();
        await firstWrite;
        const second = new SliceTable(CHUNK, BLOCK);
        await writeFile(data, second, 2, contents[1]);
        assert.equal(data.stats().bufferPool.reused, canSay ? 3 : 0, `canSay=${canSay}`);
        const back = await data.read(asIno(2), 0, 3 * BLOCK, second.chunkSlices, second.sizeBytes);
        assert.ok(back.equals(contents[1]));
      } finally {
        await data.close();
      }
      const cold = dataPath(await fileStore(storeDir), table);
      try {
        assert.ok(
          (await cold.read(asIno(1), 0, 3 * BLOCK, table.chunkSlices, table.sizeBytes)).equals(
            pattern(3 * BLOCK, 5),
          ),
        );
      } finally {
        await cold.close();
      }
    }
  });

  it('gives pooled buffers back when the budget needs room, and stays within the budget', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const budget = 6 * bodyBytes(BLOCK);
    const data = dataPath(await fileStore(await dirs.make()), table, budget);
    try {
      const content = pattern(4 * BLOCK, 3);
      await writeFile(data, table, 1, content);
      assert.equal(data.stats().bufferPool.buffers, 4);
      // Reading it back fetches 4 blocks into the cache: 8 blocks' worth in a 6-block budget.
      assert.ok(
        (await data.read(asIno(1), 0, 4 * BLOCK, table.chunkSlices, table.sizeBytes)).equals(content),
      );
      const { memory, bufferPool, memoryCache, fetches } = data.stats();
      assert.equal(fetches.blocks, 4);
      assert.ok(bufferPool.buffers <= 2, `the pool gave memory back (${bufferPool.buffers} left)`);
      assert.ok(memory.peakBytes <= memory.limitBytes);
      assert.equal(memory.usedBytes, memoryCache.bytes + bufferPool.bytes);
    } finally {
      await data.close();
    }
    assert.equal(data.stats().memory.usedBytes, 0, 'close gives every charge back');
  });

  it(
    'takes back block buffers of 1 MiB and more, which start inside their memory (for O_DIRECT)',
    { skip: nativePut() ? false : 'native/objput is not built (npm run build)' },
    async () => {
      const big = 1024 * 1024;
      const table = new SliceTable(16 * big, big);
      const data = createDataPath({
        store: await fileStore(await dirs.make()),
        blockSizeBytes: big,
        chunkSizeBytes: 16 * big,
        allocateSliceIds: table.allocateSliceIds,
      });
      try {
        const content = randomBytes(12 * big);
        const writer = data.openWriter(asIno(1));
        // One block at a time, as a stream's 1 MiB writes come: each buffer is back before the next.
        for (let at = 0; at < content.length; at += big) {
          await writer.write(at, content.subarray(at, at + big));
          await writer.flush().then((writes) => table.commit(writes, at + big));
        }
        const { reused } = data.stats().bufferPool;
        assert.ok(reused >= 10, `only ${reused} of 12 block buffers came from the pool`);
        assert.ok(
          (await data.read(asIno(1), 0, content.length, table.chunkSlices, table.sizeBytes)).equals(content),
        );
      } finally {
        await data.close();
      }
    },
  );
});

/** Reads `expected.length` bytes of inode 1 at `offset` under a lease, checked before the lease goes back. */
async function readChecked(
  data: DataPath,
  table: SliceTable,
  offset: number,
  expected: Buffer,
  label: string,
): Promise<void> {
  const lease = data.newReadLease();
  const got = await data.read(
    asIno(1),
    offset,
    expected.length,
    table.chunkSlices,
    table.sizeBytes,
    undefined,
    lease,
  );
  assert.ok(got.equals(expected), label);
  lease.release();
}

describe('block reads into reused memory', () => {
  const BIG_BLOCK = 1024 * 1024;
  const BLOCKS = 16;
  // Random: a pattern could repeat from block to block and hide a block read over another.
  const content = randomBytes(BLOCKS * BLOCK);
  const blockOf = (i: number): Buffer => content.subarray(i * BLOCK, (i + 1) * BLOCK);

  /** A data path that never wrote (an empty pool, an empty cache) over a file of BLOCKS blocks. */
  async function coldReader(): Promise<{ data: DataPath; table: SliceTable }> {
    const storeDir = await dirs.make();
    const table = new SliceTable(CHUNK, BLOCK);
    const writer = dataPath(await fileStore(storeDir), table);
    try {
      await writeFile(writer, table, 1, content);
    } finally {
      await writer.close();
    }
    return { data: dataPath(await fileStore(storeDir), table, 6 * bodyBytes(BLOCK)), table };
  }

  it('reads a block into the memory of the least recently used one once the budget is full', async () => {
    const { data, table } = await coldReader();
    try {
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < BLOCKS; i++) {
          await readChecked(data, table, i * BLOCK, blockOf(i), `pass ${pass} block ${i}`);
        }
      }
      const { memoryCache, fetches, memory } = data.stats();
      assert.equal(
        fetches.blocks,
        2 * BLOCKS,
        'a 6-block budget holds none of a 16-block file for the second pass',
      );
      assert.ok(memoryCache.reusedBuffers >= BLOCKS / 2, `reused ${memoryCache.reusedBuffers} buffers`);
      assert.ok(memory.peakBytes <= memory.limitBytes);
    } finally {
      await data.close();
    }
    assert.equal(data.stats().memory.usedBytes, 0);
  });

  it('never reuses memory a lease still holds, nor memory read without a lease', async () => {
    const { data, table } = await coldReader();
    try {
      const read = (i: number, lease?: ReturnType<DataPath['newReadLease']>): Promise<Buffer> =>
        data.read(asIno(1), i * BLOCK, BLOCK, table.chunkSlices, table.sizeBytes, undefined, lease);
      const stream = async (from: number, to: number): Promise<void> => {
        for (let i = from; i < to; i++) {
          const lease = data.newReadLease();
          assert.ok((await read(i, lease)).equals(blockOf(i)), `block ${i}`);
          lease.release();
        }
      };
      await stream(0, BLOCKS);
      const reusedBefore = data.stats().memoryCache.reusedBuffers;
      assert.ok(reusedBefore > 0, 'a stream through a full budget reuses memory');
      // Blocks 13-15 are cached now: a lease holds one, a read without a lease takes one for
      // good, and one lease holds the last one twice (two views in flight together).
      const held = data.newReadLease();
      const heldView = await read(13, held);
      const keptView = await read(14);
      const twice = data.newReadLease();
      const sameBlock = await Promise.all([read(15, twice), read(15, twice)]);
      // They become the least recently used blocks while more blocks than the budget holds go by.
      for (let pass = 0; pass < 3; pass++) await stream(0, 12);
      assert.ok(data.stats().memoryCache.reusedBuffers > reusedBefore, 'memory was reused meanwhile');
      assert.ok(heldView.equals(blockOf(13)), 'a view under a lease not yet released is intact');
      assert.ok(keptView.equals(blockOf(14)), 'a view read without a lease is intact');
      for (const view of sameBlock) assert.ok(view.equals(blockOf(15)));
      held.release();
      twice.release();
      twice.release();
    } finally {
      await data.close();
    }
  });

  /** A file of 8 random 1 MiB blocks (big enough for segment reads), written by a data path now closed. */
  async function bigBlockFile(): Promise<{
    storeDir: string;
    table: SliceTable;
    file: Buffer;
    options: {
      blockSizeBytes: number;
      chunkSizeBytes: number;
      allocateSliceIds: SliceTable['allocateSliceIds'];
    };
  }> {
    const storeDir = await dirs.make();
    const table = new SliceTable(16 * BIG_BLOCK, BIG_BLOCK);
    const file = randomBytes(8 * BIG_BLOCK);
    const options = {
      blockSizeBytes: BIG_BLOCK,
      chunkSizeBytes: 16 * BIG_BLOCK,
      allocateSliceIds: table.allocateSliceIds,
    };
    const writer = createDataPath({ store: await fileStore(storeDir), ...options });
    try {
      await writeFile(writer, table, 1, file);
    } finally {
      await writer.close();
    }
    return { storeDir, table, file, options };
  }

  it(
    'whole 1 MiB blocks from a file store are read past the page cache, into fresh and reused memory alike',
    {
      skip: !nativePut()
        ? 'native/objput is not built (npm run build)'
        : process.env.STRATA_DIRECT_READS === '0'
          ? 'STRATA_DIRECT_READS=0 turns these reads off'
          : false,
    },
    async () => {
      const { storeDir, table, file, options } = await bigBlockFile();
      const store = await fileStore(storeDir);
      // Room for 5 blocks of the 8: the second pass reads into memory the first one used.
      const data = createDataPath({
        store,
        ...options,
        memoryBudgetBytes: 5 * bodyBytes(BIG_BLOCK),
        gcHeadroomBytes: 0,
      });
      try {
        for (let pass = 0; pass < 2; pass++) {
          for (let i = 0; i < 8; i++) {
            const expected = file.subarray(i * BIG_BLOCK, (i + 1) * BIG_BLOCK);
            await readChecked(data, table, i * BIG_BLOCK, expected, `pass ${pass} block ${i}`);
          }
        }
        const { fetches, memoryCache } = data.stats();
        assert.ok(memoryCache.reusedBuffers > 0, 'memory was reused');
        assert.equal(store.directReads, fetches.blocks, 'every whole block read with O_DIRECT');
      } finally {
        await data.close();
      }
    },
  );

  it('random reads of 64 KiB segments reuse segment memory, and never under a lease or a kept view', async () => {
    const { storeDir, table, file, options } = await bigBlockFile();
    // Room for a few whole blocks: random reads fill it with segments and trailers.
    const data = createDataPath({
      store: await fileStore(storeDir),
      ...options,
      memoryBudgetBytes: 5 * bodyBytes(BIG_BLOCK),
      gcHeadroomBytes: 0,
    });
    const segment = 64 * 1024;
    const read = (
      offset: number,
      length: number,
      lease?: ReturnType<DataPath['newReadLease']>,
    ): Promise<Buffer> =>
      data.read(asIno(1), offset, length, table.chunkSlices, table.sizeBytes, undefined, lease);
    try {
      // Far apart, so none continues a stream: each fetches one segment (and the block's trailer).
      const offsets = Array.from({ length: 8 * 16 }, (_, i) => ((i * 37) % 128) * segment + 512);
      const held = data.newReadLease();
      const heldView = await read(offsets[0], 4096, held);
      const keptView = await read(offsets[1], 4096);
      for (let pass = 0; pass < 2; pass++) {
        for (const offset of offsets.slice(2)) {
          const lease = data.newReadLease();
          const got = await read(offset, 4096, lease);
          assert.ok(got.equals(file.subarray(offset, offset + 4096)), `read at ${offset}`);
          lease.release();
        }
      }
      assert.ok(data.stats().memoryCache.reusedBuffers > 0, 'segment memory was reused');
      assert.ok(heldView.equals(file.subarray(offsets[0], offsets[0] + 4096)), 'held under a lease');
      assert.ok(keptView.equals(file.subarray(offsets[1], offsets[1] + 4096)), 'read without a lease');
      held.release();
    } finally {
      await data.close();
    }
  });

  it('segments whose window goes on to the page cache under a lease are reused; without one, never', async () => {
    const { storeDir, table, file, options } = await bigBlockFile();
    const segment = 64 * 1024;
    const offsets = Array.from({ length: 8 * 16 }, (_, i) => ((i * 37) % 128) * segment + 512);
    for (const pushLeased of [true, false]) {
      const data = createDataPath({
        store: await fileStore(storeDir),
        ...options,
        memoryBudgetBytes: 5 * bodyBytes(BIG_BLOCK),
        gcHeadroomBytes: 0,
      });
      try {
        // As the page cache does after each small read: the aligned window, held until the
        // kernel took it (here: until after the next read).
        let pushed: { lease: ReturnType<DataPath['newReadLease']>; view: Buffer; at: number } | null = null;
        for (let pass = 0; pass < 2; pass++) {
          for (const offset of offsets) {
            await readChecked(data, table, offset, file.subarray(offset, offset + 4096), `read at ${offset}`);
            if (pushed !== null) {
              assert.ok(
                pushed.view.equals(file.subarray(pushed.at, pushed.at + segment)),
                'a window in flight',
              );
              pushed.lease.release();
            }
            const at = offset - (offset % segment);
            const pushLease = data.newReadLease();
            const view = await data.readCached(
              at,
              segment,
              table.chunkSlices,
              table.sizeBytes,
              pushLeased ? pushLease : undefined,
            );
            assert.ok(view !== null && view.equals(file.subarray(at, at + segment)), `window at ${at}`);
            pushed = { lease: pushLease, view, at };
          }
        }
        pushed?.lease.release();
        const { reusedBuffers } = data.stats().memoryCache;
        if (pushLeased) assert.ok(reusedBuffers > 0, 'segment memory was reused');
        else assert.equal(reusedBuffers, 0, 'a window handed out without a lease may be kept: never reused');
      } finally {
        await data.close();
      }
    }
  });

  it('segments read from the disk cache reuse memory even over a store that cannot say, which alone never does', async () => {
    const { storeDir, table, file, options } = await bigBlockFile();
    const segment = 64 * 1024;
    const offsets = Array.from({ length: 8 * 16 }, (_, i) => ((i * 37) % 128) * segment + 100);
    for (const diskCacheDir of [undefined, await dirs.make()]) {
      const data = createDataPath({
        store: new LatePutStore(await fileStore(storeDir), false),
        ...options,
        memoryBudgetBytes: 5 * bodyBytes(BIG_BLOCK),
        gcHeadroomBytes: 0,
        diskCacheDir,
      });
      try {
        for (let pass = 0; pass < 3; pass++) {
          for (const offset of offsets) {
            await readChecked(data, table, offset, file.subarray(offset, offset + 4096), `read at ${offset}`);
          }
          // The reads started a whole-file copy into the disk cache: let it finish.
          while (diskCacheDir !== undefined && data.stats().diskCache.blocks < 8) {
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        }
        const reused = data.stats().memoryCache.reusedBuffers;
        if (diskCacheDir === undefined) assert.equal(reused, 0, 'the store cannot say: nothing reused');
        else assert.ok(reused > 0, 'segments from the disk cache reused memory');
      } finally {
        await data.close();
      }
    }
  });

  it('concurrent leased reads of every size see the right bytes while their memory is reused', async () => {
    const { data, table } = await coldReader();
    const seed = 0x5eed;
    let state = seed;
    const random = (n: number): number => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state % n;
    };
    try {
      const reader = async (): Promise<void> => {
        for (let k = 0; k < 60; k++) {
          const offset = random(content.length);
          const length = 1 + random(3 * BLOCK);
          const lease = data.newReadLease();
          try {
            const got = await data.read(
              asIno(1),
              offset,
              length,
              table.chunkSlices,
              table.sizeBytes,
              undefined,
              lease,
            );
            // Let other readers load (and reuse memory) before this one looks at its bytes.
            await new Promise((resolve) => setImmediate(resolve));
            assert.ok(got.equals(content.subarray(offset, offset + length)), `read ${offset}+${length}`);
          } finally {
            lease.release();
          }
        }
      };
      await Promise.all(Array.from({ length: 6 }, reader));
      assert.ok(data.stats().memoryCache.reusedBuffers > 0);
    } finally {
      await data.close();
    }
  });
});
