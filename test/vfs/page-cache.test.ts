import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { asIno, fsError } from '../../src/common/index.js';
import type { LentBytes } from '../../src/fuse/index.js';
import { PageCache, PUSH_WINDOW_BYTES, type PushSource } from '../../src/vfs/page-cache.js';

const INO = asIno(7);

/** A source lending windows and counting how many it got back. */
class LendingSource implements PushSource {
  given = 0;
  back = 0;
  constructor(private readonly length = PUSH_WINDOW_BYTES) {}
  cachedRange(): Promise<LentBytes | null> {
    this.given++;
    return Promise.resolve({ data: Buffer.alloc(this.length, 1), done: () => void this.back++ });
  }
}

interface HeldStore {
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A kernel whose stores wait until let go, then succeed or fail. */
function heldKernel(): { store: () => Promise<void>; pending: HeldStore[] } {
  const pending: HeldStore[] = [];
  return { pending, store: () => new Promise<void>((resolve, reject) => pending.push({ resolve, reject })) };
}

/** A page cache over a held kernel, its inode served by a lending source. */
function pushing(maxPushesInFlight?: number): {
  kernel: ReturnType<typeof heldKernel>;
  cache: PageCache;
  source: LendingSource;
} {
  const kernel = heldKernel();
  const cache = new PageCache(kernel, () => undefined, maxPushesInFlight);
  const source = new LendingSource();
  cache.attach(INO, source);
  return { kernel, cache, source };
}

async function settleTurns(): Promise<void> {
  for (let i = 0; i < 5; i++) await nextTurn();
}

describe('page cache pushes give back the memory they were lent', () => {
  it('once the kernel took the window, not before', async () => {
    const { kernel, cache, source } = pushing();
    cache.afterRead(INO, cache.capture(INO), 4096, 4096);
    await settleTurns();
    assert.equal(kernel.pending.length, 1);
    assert.equal(source.back, 0, 'kept while the kernel copies it');
    kernel.pending[0].resolve();
    await settleTurns();
    assert.equal(source.back, 1);
    assert.equal(cache.stats.pushes, 1);
  });

  it('when the kernel refused it, when the file changed before it went, and when it was empty', async () => {
    const { kernel, cache, source } = pushing();
    cache.afterRead(INO, cache.capture(INO), 0, 4096);
    await settleTurns();
    kernel.pending[0].reject(fsError.EIO('refused'));
    await settleTurns();
    assert.equal(source.back, 1, 'refused');

    // Read under one generation; the file changes before the push is written.
    const before = cache.capture(INO);
    cache.afterRead(INO, before, 0, 4096);
    cache.changed(INO);
    await settleTurns();
    assert.equal(kernel.pending.length, 1, 'not written');
    assert.equal(source.back, 2, 'dropped');

    const empty = new LendingSource(0);
    cache.attach(INO, empty);
    cache.afterRead(INO, cache.capture(INO), 0, 4096);
    await settleTurns();
    assert.equal(empty.given, 1);
    assert.equal(empty.back, 1, 'empty');
  });

  it('when the queue is full', async () => {
    const { kernel, cache, source } = pushing();
    const generation = cache.capture(INO);
    // Windows arriving in one turn queue up to 8 MiB before any is written; the rest drop.
    const windows = (8 * 1024 * 1024) / PUSH_WINDOW_BYTES + 5;
    for (let i = 0; i < windows; i++) cache.afterRead(INO, generation, i * PUSH_WINDOW_BYTES, 4096);
    await settleTurns();
    assert.equal(source.given, windows);
    assert.equal(source.back, 5, 'the dropped ones at once');
    while (kernel.pending.length > 0) {
      kernel.pending.shift()!.resolve();
      await settleTurns();
    }
    assert.equal(source.back, windows, 'all of them in the end');
  });
});

describe('page cache pushes in flight', () => {
  it('are as many as the owner allows, the rest written in order as the kernel takes them', async () => {
    const { kernel, cache } = pushing(3);
    const generation = cache.capture(INO);
    for (let i = 0; i < 5; i++) cache.afterRead(INO, generation, i * PUSH_WINDOW_BYTES, 4096);
    await settleTurns();
    assert.equal(kernel.pending.length, 3, 'three written at once');
    kernel.pending.shift()!.resolve();
    await settleTurns();
    assert.equal(kernel.pending.length, 3, 'the fourth follows the first taken');
    while (kernel.pending.length > 0) {
      kernel.pending.shift()!.resolve();
      await settleTurns();
    }
    assert.equal(cache.stats.pushes, 5);
    assert.equal(cache.stats.dropped, 0);
  });

  it('are at least one', () => {
    assert.throws(() => new PageCache(heldKernel(), () => undefined, 0), /maxPushesInFlight 0/);
  });
});
