import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ObjectNotFoundError, type ObjectInfo, type ObjectStore } from '../../src/object/index.js';

export interface ConformanceOptions {
  /** Keys written for the paging test; above 1000 crosses an S3 list page. Default 1005. */
  pagingKeys?: number;
}

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

/** Runs `tasks` with at most `limit` at once. */
async function pool(limit: number, tasks: Array<() => Promise<void>>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) await tasks[next++]();
    }),
  );
}

/**
 * The behaviour every ObjectStore backend must show. Each run works under a fresh random
 * prefix and deletes what it wrote, so it can run against a shared bucket.
 */
export function describeObjectStoreConformance(
  name: string,
  open: () => Promise<ObjectStore>,
  options: ConformanceOptions = {},
): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let store: ObjectStore;
    const base = `conformance-${randomBytes(4).toString('hex')}/`;

    before(async () => {
      store = await open();
    });

    after(async () => {
      if (!store) return;
      const keys = (await collect(store.list(base))).map((info) => info.key);
      await pool(
        16,
        keys.map((key) => () => store.delete(key)),
      );
      await store.close();
    });

    it('a put object reads back byte for byte, empty objects included', async () => {
      const data = randomBytes(1024 * 1024 + 13);
      await store.put(`${base}rt/big`, data);
      await store.put(`${base}rt/empty`, Buffer.alloc(0));
      assert.ok((await store.get(`${base}rt/big`)).equals(data));
      assert.equal((await store.get(`${base}rt/empty`)).length, 0);
    });

    it('ranged gets return exactly the requested bytes, clamped at the end', async () => {
      const data = randomBytes(100_000);
      await store.put(`${base}range/x`, data);
      assert.ok((await store.get(`${base}range/x`, 0, 1)).equals(data.subarray(0, 1)));
      assert.ok((await store.get(`${base}range/x`, 4096, 5000)).equals(data.subarray(4096, 9096)));
      assert.ok((await store.get(`${base}range/x`, 99_990, 100)).equals(data.subarray(99_990)));
      assert.ok((await store.get(`${base}range/x`, 50_000)).equals(data.subarray(50_000)));
    });

    it('a get given a buffer to read into returns the right bytes, in that buffer from its start or in memory of its own', async () => {
      const data = Buffer.from('0123456789abcdef');
      await store.put(`${base}into/k`, data);
      for (const [offset, length, expected] of [
        [undefined, undefined, data],
        [4, 6, data.subarray(4, 10)],
        [12, 10, data.subarray(12)],
      ] as const) {
        const into = Buffer.alloc(32, 0xee);
        const got = await store.get(`${base}into/k`, offset, length, into);
        assert.ok(got.equals(expected), `get ${offset}+${length}`);
        if (got.buffer === into.buffer)
          assert.equal(got.byteOffset, into.byteOffset, 'read into the start of the buffer');
      }
      // A buffer too small for the bytes is not overrun.
      const small = Buffer.alloc(4, 0xee);
      assert.ok((await store.get(`${base}into/k`, undefined, undefined, small)).equals(data));
      assert.ok(small.equals(Buffer.alloc(4, 0xee)) || small.equals(data.subarray(0, 4)));
    });

    it('head reports the size of present objects and null for missing ones', async () => {
      await store.put(`${base}head/a`, Buffer.alloc(777, 1));
      const info = await store.head(`${base}head/a`);
      assert.ok(info);
      assert.equal(info.key, `${base}head/a`);
      assert.equal(info.sizeBytes, 777);
      assert.ok(info.modifiedMs > 0);
      assert.equal(await store.head(`${base}head/missing`), null);
    });

    it('get of a missing key fails with ObjectNotFoundError naming the key', async () => {
      await assert.rejects(store.get(`${base}missing/key`), (error: unknown) => {
        assert.ok(error instanceof ObjectNotFoundError);
        assert.equal(error.key, `${base}missing/key`);
        return true;
      });
      await assert.rejects(store.get(`${base}missing/key`, 0, 10), ObjectNotFoundError);
      // A prefix of existing keys is not an object either.
      await store.put(`${base}missing/dir/x`, Buffer.from('x'));
      await assert.rejects(store.get(`${base}missing/dir`), ObjectNotFoundError);
      assert.equal(await store.head(`${base}missing/dir`), null);
    });

    it('delete removes an object and deleting a missing key succeeds', async () => {
      await store.put(`${base}del/a`, Buffer.from('x'));
      await store.delete(`${base}del/a`);
      assert.equal(await store.head(`${base}del/a`), null);
      await assert.rejects(store.get(`${base}del/a`), ObjectNotFoundError);
      await store.delete(`${base}del/a`);
      await store.delete(`${base}del/never-existed`);
    });

    it('list returns keys under a prefix in byte order, "-" before "/"', async () => {
      // No key is also the "directory" of another: the file backend cannot store that, and
      // StrataFS's own keys never need it.
      const keys = ['l/a-b', 'l/a.c', 'l/a/c', 'l/a/d/e', 'l/b', 'l/ba', 'lx/other'].map((key) => base + key);
      for (const key of keys) await store.put(key, Buffer.from(key));
      const listed = (await collect(store.list(`${base}l/`))).map((info) => info.key);
      assert.deepEqual(listed, keys.slice(0, 6).sort());
      const partial = (await collect(store.list(`${base}l/a`))).map((info) => info.key);
      assert.deepEqual(partial, [base + 'l/a-b', base + 'l/a.c', base + 'l/a/c', base + 'l/a/d/e']);
      const sizes = await collect(store.list(`${base}l/b`));
      assert.deepEqual(
        sizes.map((info) => info.sizeBytes),
        [`${base}l/b`.length, `${base}l/ba`.length],
      );
      assert.deepEqual(await collect(store.list(`${base}nothing-here/`)), []);
    });

    it('list pages through many keys and resumes after startAfter', async () => {
      const count = options.pagingKeys ?? 1005;
      const keys = Array.from({ length: count }, (_, i) => `${base}page/${String(i).padStart(5, '0')}`);
      await pool(
        16,
        keys.map((key) => () => store.put(key, Buffer.from([1]))),
      );
      const listed = (await collect(store.list(`${base}page/`))).map((info) => info.key);
      assert.deepEqual(listed, keys);
      const middle = keys[Math.floor(count / 2)];
      const resumed = (await collect(store.list(`${base}page/`, middle))).map((info) => info.key);
      assert.deepEqual(resumed, keys.slice(Math.floor(count / 2) + 1));
      const afterLast = await collect(store.list(`${base}page/`, keys[count - 1]));
      assert.deepEqual(afterLast, []);
    });

    it('a reader during a put sees no object or the whole object, never a part', async () => {
      const data = randomBytes(8 * 1024 * 1024);
      const key = `${base}atomic/obj`;
      let done = false;
      const seen: number[] = [];
      const putting = store.put(key, data).finally(() => {
        done = true;
      });
      while (!done) {
        try {
          const body = await store.get(key);
          seen.push(body.length);
          assert.ok(body.equals(data), `a get during the put returned ${body.length} bytes that differ`);
        } catch (error) {
          if (!(error instanceof ObjectNotFoundError)) throw error;
        }
        const info = await store.head(key);
        if (info) assert.equal(info.sizeBytes, data.length);
      }
      await putting;
      assert.ok((await store.get(key)).equals(data));
    });

    it('concurrent puts of distinct keys all land intact', async () => {
      const items = Array.from({ length: 24 }, (_, i) => ({
        key: `${base}par/${i}`,
        data: randomBytes(10_000 + i),
      }));
      await Promise.all(items.map((item) => store.put(item.key, item.data)));
      for (const item of items) assert.ok((await store.get(item.key)).equals(item.data));
    });
  });
}
