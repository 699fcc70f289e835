import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { asIno, asSliceId } from '../../src/common/index.js';
import { bodyBytes, openBlock, sealBlock } from '../../src/data/block-format.js';
import { createDataPath } from '../../src/data/index.js';
import type { BlockRef } from '../../src/data/layout.js';
import { allocBlockBuffer } from '../../src/data/block-memory.js';
import { BlockSealer } from '../../src/data/sealer.js';
import { SliceTable } from './meta-standin.js';
import { fileStore, tempDirs } from './helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

const MiB = 1024 * 1024;

/** A block buffer as the writer makes one: data, then room for the trailer. */
function blockBuffer(dataLength: number): { buffer: Buffer; data: Buffer } {
  const buffer = Buffer.allocUnsafe(bodyBytes(dataLength));
  const data = randomBytes(dataLength);
  data.copy(buffer);
  return { buffer, data };
}

/** The block every test here seals its data as (the identity is part of the checks). */
function blockOf(dataLength: number): BlockRef {
  return { sliceId: asSliceId(1), blockIndex: 0, blockLengthBytes: dataLength };
}

function expectedBody(data: Buffer): Buffer {
  const copy = Buffer.allocUnsafe(bodyBytes(data.length));
  data.copy(copy);
  return Buffer.from(sealBlock(copy, blockOf(data.length)));
}

describe('block sealer', () => {
  it('seals large blocks on its thread exactly as in place, many at once, each its own', async () => {
    const sealer = new BlockSealer();
    try {
      const lengths = [4 * MiB, 4 * MiB - 1, 300 * 1024, 1 * MiB, 4 * MiB, 2 * MiB + 7];
      const blocks = lengths.map(blockBuffer);
      const bodies = await Promise.all(blocks.map((b, i) => sealer.seal(b.buffer, blockOf(lengths[i]))));
      for (let i = 0; i < blocks.length; i++) {
        // The memory went to the worker and came back: the old view is detached.
        assert.equal(blocks[i].buffer.length, 0, `block ${i} was transferred, not copied`);
        assert.ok(bodies[i].equals(expectedBody(blocks[i].data)), `block ${i} body`);
        assert.ok(openBlock(bodies[i], blockOf(lengths[i])).equals(blocks[i].data));
      }
    } finally {
      await sealer.close();
    }
  });

  it('stops its thread after a while without work and starts one again for the next large block', async () => {
    const sealer = new BlockSealer();
    try {
      const first = blockBuffer(1 * MiB);
      await sealer.seal(first.buffer, blockOf(first.data.length));
      assert.equal(sealer.threadRunning, true);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assert.equal(sealer.threadRunning, false, 'an idle thread is stopped');
      const second = blockBuffer(1 * MiB);
      const body = await sealer.seal(second.buffer, blockOf(second.data.length));
      assert.equal(second.buffer.length, 0, 'sealed on a new thread');
      assert.ok(body.equals(expectedBody(second.data)));
    } finally {
      await sealer.close();
    }
  });

  it('seals small blocks and blocks in shared memory in place, and keeps sealing after close', async () => {
    const sealer = new BlockSealer();
    const small = blockBuffer(64 * 1024);
    const body = await sealer.seal(small.buffer, blockOf(small.data.length));
    assert.equal(body.buffer, small.buffer.buffer, 'same memory, no transfer');
    assert.ok(body.equals(expectedBody(small.data)));
    // A view into a larger allocation cannot be transferred without taking its neighbours along.
    const big = blockBuffer(1 * MiB);
    const outer = Buffer.alloc(big.buffer.length + 16);
    big.buffer.copy(outer, 16);
    const view = outer.subarray(16);
    const viewBody = await sealer.seal(view, blockOf(big.data.length));
    assert.equal(outer.length, big.buffer.length + 16, 'the enclosing memory stayed here');
    assert.ok(viewBody.equals(expectedBody(big.data)));
    await sealer.close();
    const late = blockBuffer(4 * MiB);
    assert.ok((await sealer.seal(late.buffer, blockOf(late.data.length))).equals(expectedBody(late.data)));
  });

  it('block buffers aligned inside their memory go to the thread and come back at the same place, again and again', async () => {
    const sealer = new BlockSealer();
    try {
      const data = randomBytes(4 * MiB);
      let buffer = allocBlockBuffer(bodyBytes(data.length));
      const offset = buffer.byteOffset;
      for (let round = 0; round < 3; round++) {
        data.copy(buffer);
        const body = await sealer.seal(buffer, blockOf(data.length));
        assert.equal(buffer.length, 0, `round ${round}: transferred, not sealed in place`);
        assert.equal(body.byteOffset, offset, `round ${round}: the block where it was in its memory`);
        assert.ok(body.equals(expectedBody(data)), `round ${round}: body`);
        buffer = body;
      }
    } finally {
      await sealer.close();
    }
  });

  it('a 4 MiB-block stream written through the data path reads back whole from a cold data path', async () => {
    const storeDir = await dirs.make();
    const store = await fileStore(storeDir);
    const table = new SliceTable(64 * MiB, 4 * MiB);
    const content = randomBytes(10 * MiB + 12345);
    const writerPath = createDataPath({ store, allocateSliceIds: table.allocateSliceIds });
    try {
      const writer = writerPath.openWriter(asIno(2));
      for (let at = 0; at < content.length; at += MiB) {
        await writer.write(at, content.subarray(at, Math.min(content.length, at + MiB)));
      }
      table.commit(await writer.flush(), content.length);
    } finally {
      await writerPath.close();
    }
    // A fresh data path has nothing cached: every block is fetched and verified.
    const readerPath = createDataPath({
      store: await fileStore(storeDir),
      allocateSliceIds: table.allocateSliceIds,
    });
    try {
      const back = await readerPath.read(asIno(2), 0, content.length, table.chunkSlices, content.length);
      assert.ok(back.equals(content));
    } finally {
      await readerPath.close();
    }
  });
});
