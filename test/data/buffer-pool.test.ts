import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { asIno } from '../../src/common/index.js';
import { bodyBytes } from '../../src/data/block-format.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { withRetry, type ObjectInfo, type ObjectStore } from '../../src/object/index.js';
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

  get abandonedPutAttempts(): number | undefined {
    return this.canSay ? this.inner.abandonedPutAttempts : undefined;
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
      assert.equal(store.abandonedPutAttempts, 1);
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
});
