import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBudget } from '../../src/data/budget.js';
import { bodyBytes } from '../../src/data/block-format.js';
import { createDataPath } from '../../src/data/index.js';
import { fileStore, tempDirs } from './helpers.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('memory budget', () => {
  it('grants what fits, makes the rest wait in FIFO order, and wakes them on release', async () => {
    const budget = new MemoryBudget(100);
    await budget.acquire(60);
    const order: string[] = [];
    const big = budget.acquire(50).then(() => order.push('big'));
    const small = budget.acquire(10).then(() => order.push('small'));
    await tick();
    assert.deepEqual(order, [], 'a small request must not overtake a waiting big one');
    assert.equal(budget.tryAcquire(1), false, 'tryAcquire never jumps the queue');
    assert.equal(budget.waitingAcquires, 2);
    budget.release(60);
    await Promise.all([big, small]);
    assert.deepEqual(order, ['big', 'small']);
    assert.equal(budget.usedBytes, 60);
    assert.equal(budget.peakBytes, 60);
  });

  it('asks reclaimers for exactly the missing bytes before making anyone wait', async () => {
    const budget = new MemoryBudget(100);
    let cached = 80;
    await budget.acquire(80);
    const asked: number[] = [];
    budget.addReclaimer((bytes) => {
      asked.push(bytes);
      const freed = Math.min(bytes, cached);
      cached -= freed;
      return freed;
    });
    assert.equal(budget.tryAcquire(50), true);
    assert.deepEqual(asked, [30]);
    assert.equal(budget.usedBytes, 100);
    assert.equal(cached, 50);
  });

  it('calls the pressure handler when a waiter cannot be served, and clamps requests to the limit', async () => {
    const budget = new MemoryBudget(100);
    let pressured = 0;
    budget.setPressureHandler(() => pressured++);
    await budget.acquire(100);
    const waiting = budget.acquire(500);
    assert.equal(pressured, 1);
    assert.equal(budget.charged(500), 100);
    budget.release(100);
    await waiting;
    assert.equal(budget.usedBytes, 100);
    assert.ok(budget.peakBytes <= budget.limitBytes);
  });

  it('refuses to release more than was acquired: an accounting bug must not hide', () => {
    const budget = new MemoryBudget(100);
    assert.throws(() => budget.release(1), /released 1 bytes more than acquired/);
  });
});

describe("a data path's share of the mount's budget", () => {
  const MiB = 1024 * 1024;
  const limitOf = async (options: { memoryBudgetBytes: number; sharedBytes?: number }): Promise<number> => {
    const dirs = tempDirs();
    try {
      const data = createDataPath({
        store: await fileStore(await dirs.make()),
        blockSizeBytes: 4 * MiB,
        chunkSizeBytes: 64 * MiB,
        allocateSliceIds: () => Promise.reject(new Error('no writes here')),
        gcHeadroomBytes: 0,
        ...options,
      });
      const limit = data.stats().memory.limitBytes;
      await data.close();
      return limit;
    } finally {
      await dirs.cleanup();
    }
  };

  it('leaves what the rest of the process holds (an engine beside the mount) out of the budget', async () => {
    const alone = await limitOf({ memoryBudgetBytes: 512 * MiB });
    assert.equal(await limitOf({ memoryBudgetBytes: 512 * MiB, sharedBytes: 48 * MiB }), alone - 48 * MiB);
  });

  it('keeps four blocks whatever is shared, and refuses a share that is not a byte count', async () => {
    const small = bodyBytes(4 * MiB) * 4 + MiB;
    assert.equal(await limitOf({ memoryBudgetBytes: small, sharedBytes: 48 * MiB }), small);
    await assert.rejects(limitOf({ memoryBudgetBytes: 512 * MiB, sharedBytes: -1 }), /sharedBytes -1/);
  });
});
