import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { asIno, asSliceId, type SliceRef } from '../../src/common/index.js';
import { createDataPath } from '../../src/data/index.js';
import { COMPACT_MIN_SLICES, compactionLimits, planCompaction } from '../../src/data/compact.js';
import { SliceTable } from './meta-standin.js';
import { fileStore, tempDirs } from './helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

const BLOCK = 4096;
const CHUNK = 8 * BLOCK;

describe('compaction', () => {
  it('merges a fragmented chunk into one slice with the same content, leaving old objects', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const store = await fileStore(await dirs.make());
    const data = createDataPath({
      store,
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    // 20 overlapping small writes at scattered offsets of chunk 1, each its own slice.
    for (let i = 0; i < 20; i++) {
      const writer = data.openWriter(asIno(1));
      const offset = CHUNK + ((i * 7919) % (CHUNK - 3000));
      await writer.write(offset, Buffer.alloc(1000 + i * 50, i + 1));
      table.commit(await writer.flush(), offset + 1000 + i * 50);
    }
    const slices = table.chunks.get(1)!;
    assert.ok(data.shouldCompact(slices));
    const before = await data.read(asIno(1), 0, 2 * CHUNK, table.chunkSlices, table.sizeBytes);
    let objectsBefore = 0;
    for await (const _ of store.list('chunks/')) objectsBefore++;

    const merged = await data.compactChunk(slices, 1);
    assert.equal(merged.length, 1);
    assert.ok(!data.shouldCompact(merged));
    table.chunks.set(1, merged);
    const after_ = await data.read(asIno(1), 0, 2 * CHUNK, table.chunkSlices, table.sizeBytes);
    assert.ok(after_.equals(before));
    let objectsAfter = 0;
    for await (const _ of store.list('chunks/')) objectsAfter++;
    assert.ok(objectsAfter > objectsBefore, 'compaction writes new objects and deletes none');
  });

  it('keeps zero slices outside the data as zero slices instead of storing zeros', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    for (let i = 0; i < 3; i++) {
      const writer = data.openWriter(asIno(1));
      await writer.write(i * 1000, Buffer.alloc(1000, 9));
      table.commit(await writer.flush(), (i + 1) * 1000);
    }
    table.truncate(100);
    table.sizeBytes = 3000;
    const before = await data.read(asIno(1), 0, CHUNK, table.chunkSlices, 3000);
    const merged = await data.compactChunk(table.chunks.get(0)!, 0);
    assert.deepEqual(
      merged.map((s) => [s.id === 0 ? 'zero' : 'data', s.chunkOffsetBytes, s.lengthBytes]),
      [
        ['zero', 100, 2900],
        ['data', 0, 100],
      ],
    );
    table.chunks.set(0, merged);
    assert.ok((await data.read(asIno(1), 0, CHUNK, table.chunkSlices, 3000)).equals(before));
  });

  it('compacts a chunk of only zero slices without writing anything', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    table.sizeBytes = 6000;
    table.truncate(10);
    table.truncate(5);
    const merged = await data.compactChunk(table.chunks.get(0)!, 0);
    assert.deepEqual(
      merged.map((s) => [s.id, s.chunkOffsetBytes, s.lengthBytes]),
      [[0, 5, 5995]],
    );
    assert.equal(data.stats().uploads.blocks, 0);
  });

  it('rewrites only the small slices appended over a large one, which stays (a WAL segment)', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    // The segment written whole first (zeros, as PostgreSQL does), then small commits appended
    // from its middle on, each page rewritten once more by the next commit.
    const base = data.openWriter(asIno(1));
    await base.write(0, Buffer.alloc(CHUNK));
    table.commit(await base.flush(), CHUNK);
    const appendStart = CHUNK / 2;
    for (let i = 0; i < 20; i++) {
      const writer = data.openWriter(asIno(1));
      const offset = appendStart + Math.max(0, i - 1) * 256;
      await writer.write(offset, Buffer.alloc(512, i + 1));
      table.commit(await writer.flush(), CHUNK);
    }
    const slices = table.chunks.get(0)!;
    assert.ok(data.shouldCompact(slices));
    const before = await data.read(asIno(1), 0, CHUNK, table.chunkSlices, CHUNK);
    const uploadedBefore = data.stats().uploads.bytes;

    const merged = await data.compactChunk(slices, 0);
    const appendEnd = appendStart + 18 * 256 + 512;
    assert.deepEqual(
      merged.map((s) => [s.id, s.chunkOffsetBytes, s.lengthBytes]),
      [
        [slices[0].id, 0, CHUNK],
        [merged[1].id, appendStart, appendEnd - appendStart],
      ],
    );
    // Only the appended range was read and stored again (plus block trailers), not the chunk.
    assert.ok(data.stats().uploads.bytes - uploadedBefore < appendEnd - appendStart + 1024);
    assert.ok(!data.shouldCompact(merged));
    table.chunks.set(0, merged);
    assert.ok((await data.read(asIno(1), 0, CHUNK, table.chunkSlices, CHUNK)).equals(before));
  });

  for (const [what, spacing] of [
    ['further apart than the gap limit', (gap: number) => gap + 200],
    ['within the gap limit but sparse', (gap: number) => gap - 1],
  ] as const) {
    it(`leaves small slices ${what} alone: merging them would rewrite the bytes between`, async () => {
      const wideChunk = 16 * BLOCK;
      const table = new SliceTable(wideChunk, BLOCK);
      const data = createDataPath({
        store: await fileStore(await dirs.make()),
        blockSizeBytes: BLOCK,
        chunkSizeBytes: wideChunk,
        allocateSliceIds: table.allocateSliceIds,
      });
      const step = spacing(compactionLimits(wideChunk).maxGapBytes);
      for (let i = 0; i < COMPACT_MIN_SLICES; i++) {
        const writer = data.openWriter(asIno(1));
        await writer.write(i * step, Buffer.alloc(100, i + 1));
        table.commit(await writer.flush(), wideChunk);
      }
      const slices = table.chunks.get(0)!;
      assert.equal(slices.length, COMPACT_MIN_SLICES);
      assert.equal(data.shouldCompact(slices), false);
      const uploadedBefore = data.stats().uploads.blocks;
      assert.deepEqual(await data.compactChunk(slices, 0), slices);
      assert.equal(data.stats().uploads.blocks, uploadedBefore);
    });
  }

  it('rewrites sparse small slices once the list is long enough that its length costs more', () => {
    const chunk = 64 * 1024 * 1024;
    const sparse = (count: number): SliceRef[] =>
      Array.from({ length: count }, (_, i) => ({
        id: asSliceId(i + 2),
        sliceSizeBytes: 4096,
        chunkOffsetBytes: i * 64 * 1024,
        sliceOffsetBytes: 0,
        lengthBytes: 4096,
        blockSizeBytes: 4 * 1024 * 1024,
      }));
    const base: SliceRef = { ...sparse(1)[0], id: asSliceId(1), sliceSizeBytes: chunk, lengthBytes: chunk };
    // 64 KiB apart, 4 KiB each: a rewrite of 16 bytes per byte absorbed, paid at 1,024 slices.
    assert.equal(planCompaction([base, ...sparse(1000)], chunk), null);
    const plan = planCompaction([base, ...sparse(1023)], chunk);
    assert.ok(plan !== null);
    assert.deepEqual(plan.keep, [base]);
    assert.deepEqual(
      plan.ranges.map((range) => range.dataSpan),
      [{ start: 0, end: 1022 * 64 * 1024 + 4096 }],
    );
  });

  it('drops slices overwritten whole, large ones too, without rewriting anything', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    // The chunk rewritten whole 20 times (a file rewritten in place): only the last one shows.
    for (let i = 0; i < 20; i++) {
      const writer = data.openWriter(asIno(1));
      await writer.write(0, Buffer.alloc(CHUNK, i + 1));
      table.commit(await writer.flush(), CHUNK);
    }
    const slices = table.chunks.get(0)!;
    assert.ok(data.shouldCompact(slices));
    const uploadedBefore = data.stats().uploads.blocks;
    const merged = await data.compactChunk(slices, 0);
    assert.deepEqual(merged, [slices[slices.length - 1]]);
    assert.equal(data.stats().uploads.blocks, uploadedBefore);
    table.chunks.set(0, merged);
    assert.ok(
      (await data.read(asIno(1), 0, CHUNK, table.chunkSlices, CHUNK)).equals(Buffer.alloc(CHUNK, 20)),
    );
  });

  it('merges a long list of large slices that each still show a little (a record rewritten at small steps)', () => {
    const chunk = 64 * 1024 * 1024;
    const { settledSliceBytes } = compactionLimits(chunk);
    const stride = 16 * 1024;
    const slices: SliceRef[] = [];
    // Each 2 MiB slice is covered by the next but for its first 16 KiB: none hidden, none small.
    for (let i = 0; i < 129; i++) {
      const lengthBytes = 2 * settledSliceBytes;
      slices.push({
        id: asSliceId(i + 1),
        sliceSizeBytes: lengthBytes,
        chunkOffsetBytes: i * stride,
        sliceOffsetBytes: 0,
        lengthBytes,
        blockSizeBytes: 4 * 1024 * 1024,
      });
    }
    assert.equal(
      planCompaction(slices.slice(0, 128), chunk),
      null,
      'twice what the chunk holds stay as they are',
    );
    const plan = planCompaction(slices, chunk);
    assert.ok(plan !== null, 'past the bound they are merged');
    assert.deepEqual(plan.keep, []);
    assert.deepEqual(
      plan.ranges.map((range) => range.dataSpan),
      [{ start: 0, end: 128 * stride + 2 * settledSliceBytes }],
    );
  });
});
