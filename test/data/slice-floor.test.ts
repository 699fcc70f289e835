import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { asIno, asSliceId, type SliceId } from '../../src/common/index.js';
import { bodyBytes } from '../../src/data/block-format.js';
import { createDataPath } from '../../src/data/index.js';
import { NOTHING_HELD, SliceIdPool } from '../../src/data/uploader.js';
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

/** What the pool (or data path) reports, through a heartbeat stand-in that answers at once. */
async function reported(report: (send: (floor: SliceId) => Promise<void>) => Promise<void>): Promise<number> {
  let floor = -1;
  await report(async (f) => {
    floor = f;
  });
  return floor;
}

describe('slice floor: the lowest slice id a mount may still commit', () => {
  it('is the least id taken and not released; with none held, NOTHING_HELD, and the next ids come from a new batch', async () => {
    const a = allocator(100);
    const pool = new SliceIdPool(a.allocate, 4);
    const floor = () => reported((send) => pool.reportFloor(send));
    assert.equal(await floor(), NOTHING_HELD, 'before any write');
    assert.deepEqual(a.calls, [], 'reporting takes no ids');
    const ids = [await pool.take(), await pool.take(), await pool.take()];
    assert.deepEqual(ids, [100, 101, 102]);
    assert.equal(await floor(), 100);
    pool.release([ids[0]]);
    assert.equal(await floor(), 101);
    pool.release([ids[2]]);
    assert.equal(await floor(), 101, 'an older id still held keeps it down');
    pool.release([ids[1]]);
    assert.equal(await floor(), NOTHING_HELD);
    // The rest of the batch (103) was given up with that report: the service recorded its
    // allocator's next id (104), so the next id must come from a batch taken after it.
    assert.equal(await pool.take(), 104);
    assert.deepEqual(a.calls, [4, 4]);
    assert.equal(await floor(), 104);
  });

  it('takes no new batch while a NOTHING_HELD report is unanswered', async () => {
    const a = allocator(1);
    const pool = new SliceIdPool(a.allocate, 4);
    let answer: () => void = () => undefined;
    const report = pool.reportFloor(() => new Promise<void>((resolve) => (answer = resolve)));
    let taken: SliceId | undefined;
    const take = pool.take().then((id) => (taken = id));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(taken, undefined);
    assert.deepEqual(a.calls, [], 'no batch asked for before the service recorded the report');
    answer();
    await report;
    await take;
    assert.equal(taken, 1);
    // A batch on its way is waited for: its ids may lie below what NOTHING_HELD would record.
    const slow = allocator(10);
    let allocated: () => void = () => undefined;
    const gated = new SliceIdPool(async (count) => {
      await new Promise<void>((resolve) => (allocated = resolve));
      return slow.allocate(count);
    }, 4);
    const first = gated.take();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const floor = reported((send) => gated.reportFloor(send));
    allocated();
    assert.equal(await first, 10);
    assert.equal(await floor, 10, 'the id that batch brought is held');
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
    const floor = () => reported((send) => data.reportSliceFloor(send));
    try {
      const writer = data.openWriter(asIno(5));
      await writer.write(0, Buffer.alloc(3 * BLOCK, 7));
      const writes = await writer.flush();
      assert.equal(writes.length, 1);
      const id = writes[0].slice.id;
      assert.equal(await floor(), id, 'flushed, not committed: still held');
      table.commit(writes, 3 * BLOCK);
      data.releaseSlices(writes.map((w) => w.slice.id));
      assert.equal(await floor(), NOTHING_HELD);

      // A flush whose upload failed gives its slice up: it no longer holds the floor.
      faulty.failNext(1);
      await writer.write(0, Buffer.alloc(BLOCK, 9)); // a full block: uploads now, takes an id
      const during = await floor();
      assert.ok(during > id, `the new slice ${during} is held while it uploads`);
      await assert.rejects(writer.flush());
      assert.equal(await floor(), NOTHING_HELD, 'the lost slice no longer holds it down');
      // So does data an abort drops (its full blocks were uploading already).
      await writer.write(0, Buffer.alloc(2 * BLOCK, 1));
      assert.notEqual(await floor(), NOTHING_HELD);
      await writer.abort();
      assert.equal(await floor(), NOTHING_HELD);
    } finally {
      await data.close();
      await faulty.close();
    }
  });
});
