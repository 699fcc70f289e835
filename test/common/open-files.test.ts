import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenFileCache } from '../../src/common/index.js';

/** A stand-in for files: counts opens and closes, and can be told to fail. */
function fakeFiles(): {
  cache: OpenFileCache<{ key: string; serial: number }>;
  opens: string[];
  closes: number[];
  failing: Set<string>;
} {
  const opens: string[] = [];
  const closes: number[] = [];
  const failing = new Set<string>();
  const cache = new OpenFileCache<{ key: string; serial: number }>(
    2,
    async (key) => {
      if (failing.has(key)) throw Object.assign(new Error(`ENOENT: ${key}`), { code: 'ENOENT' });
      opens.push(key);
      return { key, serial: opens.length };
    },
    async ({ serial }) => {
      closes.push(serial);
    },
  );
  return { cache, opens, closes, failing };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('OpenFileCache', () => {
  it('opens a file once for many reads, and closes the least recently used beyond its bound', async () => {
    const { cache, opens, closes } = fakeFiles();
    for (let i = 0; i < 3; i++) assert.equal(await cache.use('a', async (f) => f.key), 'a');
    await cache.use('b', async () => undefined);
    await cache.use('a', async () => undefined); // a is now the most recent
    await cache.use('c', async () => undefined); // evicts b
    await settle();
    assert.deepEqual(opens, ['a', 'b', 'c']);
    assert.deepEqual(closes, [2]);
    assert.equal(cache.size, 2);
    await cache.use('b', async () => undefined); // reopened, evicts a
    await settle();
    assert.deepEqual(opens, ['a', 'b', 'c', 'b']);
    assert.deepEqual(closes, [2, 1]);
  });

  it('closes a retired file only when the reads using it end', async () => {
    const { cache, closes } = fakeFiles();
    let finish!: () => void;
    const reading = cache.use('a', () => new Promise<void>((resolve) => (finish = resolve)));
    await settle();
    cache.retire('a');
    await settle();
    assert.deepEqual(closes, [], 'still in use');
    finish();
    await reading;
    await settle();
    assert.deepEqual(closes, [1]);
    assert.equal(cache.size, 0);
  });

  it('retires a file whose read or open failed: the next use opens it afresh', async () => {
    const { cache, opens, closes, failing } = fakeFiles();
    await assert.rejects(
      cache.use('a', async () => {
        throw new Error('EIO');
      }),
      /EIO/,
    );
    await settle();
    assert.deepEqual(closes, [1]);
    await cache.use('a', async () => undefined);
    assert.deepEqual(opens, ['a', 'a']);
    failing.add('b');
    await assert.rejects(
      cache.use('b', async () => undefined),
      /ENOENT/,
    );
    failing.delete('b');
    await cache.use('b', async () => undefined);
    assert.deepEqual(opens, ['a', 'a', 'b']);
  });

  it('retireAll closes every file', async () => {
    const { cache, closes } = fakeFiles();
    await cache.use('a', async () => undefined);
    await cache.use('b', async () => undefined);
    cache.retireAll();
    await settle();
    assert.deepEqual(closes.sort(), [1, 2]);
    assert.equal(cache.size, 0);
  });
});
