import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { asIno, asSliceId, type SliceId } from '../../src/common/index.js';
import { bodyBytes } from '../../src/data/block-format.js';
import { createDataPath } from '../../src/data/index.js';
import { SliceIdPool } from '../../src/data/uploader.js';
import { withFaults } from '../../src/object/index.js';
import { fileStore, tempDirs } from './helpers.js';
import { SliceTable } from './meta-standin.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

const BLOCK = 4096;
const CHUNK = 4 * BLOCK;

/** An allocator handing out batches from `start`, like the metadata service's (increasing). */
function allocator(start: number): { allocate: (count: number) => Promise<SliceId>; calls: number[] } {
  let next = start;
  const calls: number[] = [];
  return {
    calls,
    allocate: async (count) => {
      calls.push(count);
      const first = next;
      next += count;
      return asSliceId(first);
    },
  };
}

describe('slice floor: the lowest slice id a mount may still commit', () => {
  it('is the least id taken and not released, else the next id of the batch; a first call takes a batch', async () => {
    const a = allocator(100);
    const pool = new SliceIdPool(a.allocate, 4);
    assert.equal(await pool.floor(), 100, 'before any write: the start of a batch it took');
    assert.deepEqual(a.calls, [4]);
    const ids = [await pool.take(), await pool.take(), await pool.take()];
    assert.deepEqual(ids, [100, 101, 102]);
    assert.equal(await pool.floor(), 100);
    pool.release([ids[0]]);
    assert.equal(await pool.floor(), 101);
    pool.release([ids[2]]);
    assert.equal(await pool.floor(), 101, 'an older id still held keeps it down');
    pool.release([ids[1]]);
    assert.equal(await pool.floor(), 103, 'nothing held: the next id of the batch');
    await pool.take(); // 103: the batch is used up
    pool.release([asSliceId(103)]);
    assert.equal(await pool.floor(), 104, 'every later batch starts at or above the end of this one');
    assert.equal(await pool.take(), 104);
    assert.deepEqual(a.calls, [4, 4]);
    assert.equal(await pool.floor(), 104);
  });

  it('the data path holds a flushed slice until it is released, and lets go of data a failed flush lost', async () => {
    const dir = await dirs.make();
    const faulty = withFaults(await fileStore(dir), { operations: ['put'] });
    const table = new SliceTable(CHUNK, BLOCK);
    const data = createDataPath({
      store: faulty,
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      memoryBudgetBytes: 16 * bodyBytes(BLOCK),
      allocateSliceIds: table.allocateSliceIds,
    });
    try {
      const start = await data.sliceFloor();
      const writer = data.openWriter(asIno(5));
      await writer.write(0, Buffer.alloc(3 * BLOCK, 7));
      const writes = await writer.flush();
      assert.equal(writes.length, 1);
      const id = writes[0].slice.id;
      assert.equal(await data.sliceFloor(), id, 'flushed, not committed: still held');
      table.commit(writes, 3 * BLOCK);
      data.releaseSlices(writes.map((w) => w.slice.id));
      const afterCommit = await data.sliceFloor();
      assert.ok(afterCommit > id && afterCommit >= start, `floor ${afterCommit} moved past ${id}`);

      // A flush whose upload failed gives its slice up: it no longer holds the floor.
      assert.equal(afterCommit, id + 1);
      faulty.failNext(1);
      await writer.write(0, Buffer.alloc(BLOCK, 9)); // a full block: uploads now, takes id + 1
      await assert.rejects(writer.flush());
      assert.equal(await data.sliceFloor(), id + 2, 'the lost slice no longer holds it down');
      // So does data an abort drops (its full blocks were uploading already).
      await writer.write(0, Buffer.alloc(2 * BLOCK, 1));
      await writer.abort();
      assert.equal(await data.sliceFloor(), id + 3);
    } finally {
      await data.close();
      await faulty.close();
    }
  });
});
