import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { asIno } from '../../src/common/index.js';
import { createDataPath } from '../../src/data/index.js';
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
    const writer = data.openWriter(asIno(1));
    await writer.write(0, Buffer.alloc(CHUNK, 9));
    table.commit(await writer.flush(), CHUNK);
    table.truncate(100);
    table.sizeBytes = CHUNK;
    const before = await data.read(asIno(1), 0, CHUNK, table.chunkSlices, CHUNK);
    const merged = await data.compactChunk(table.chunks.get(0)!, 0);
    assert.deepEqual(
      merged.map((s) => [s.id === 0 ? 'zero' : 'data', s.chunkOffsetBytes, s.lengthBytes]),
      [
        ['zero', 100, CHUNK - 100],
        ['data', 0, 100],
      ],
    );
    table.chunks.set(0, merged);
    assert.ok((await data.read(asIno(1), 0, CHUNK, table.chunkSlices, CHUNK)).equals(before));
  });

  it('compacts a chunk of only zero slices without writing anything', async () => {
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: await fileStore(await dirs.make()),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      allocateSliceIds: table.allocateSliceIds,
    });
    table.sizeBytes = CHUNK;
    table.truncate(10);
    table.truncate(5);
    const merged = await data.compactChunk(table.chunks.get(0)!, 0);
    assert.deepEqual(
      merged.map((s) => [s.id, s.chunkOffsetBytes, s.lengthBytes]),
      [[0, 5, CHUNK - 5]],
    );
    assert.equal(data.stats().uploads.blocks, 0);
  });
});
