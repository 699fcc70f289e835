// The S3 backend against a real S3 server (radosgw from scripts/radosgw/start.sh): signatures,
// ranges, multipart and paging are checked by the server itself, not by an imitation.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FsError, Errno } from '../../src/common/index.js';
import {
  ObjectNotFoundError,
  TransientStoreError,
  type ObjectInfo,
  type ObjectStore,
} from '../../src/object/store.js';
import { openS3Store, type S3ObjectStore } from '../../src/object/backends/s3.js';
import { S3Transport } from '../../src/object/backends/s3-http.js';
import { resolveAwsSettings } from '../../src/object/backends/s3-credentials.js';
import { EMPTY_SHA256, sha256Hex } from '../../src/object/backends/s3-sigv4.js';
import { SKIP_REASON, S3_TEST_URL, resolveToLoopback, testUrl, uniquePrefix } from './s3-helpers.js';

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

async function runLimited<T>(
  items: T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

describe('S3 backend against radosgw', { skip: SKIP_REASON }, () => {
  const prefix = uniquePrefix('s3');
  let store: S3ObjectStore;

  before(async () => {
    store = await openS3Store(
      testUrl(prefix, { list_page_size: '100', multipart_threshold: '6M', part_size: '5M' }),
    );
  });

  after(async () => {
    // Leave the shared bucket as we found it, even when a test failed half-way.
    const cleaner = await openS3Store(testUrl(prefix));
    const keys = (await collect(cleaner.list(''))).map((info) => info.key);
    await runLimited(keys, 16, (key) => cleaner.delete(key));
    await cleaner.close();
    await store?.close();
  });

  it('puts, gets, heads, lists and deletes an object whose key needs escaping', async () => {
    const key = 'dir one/ü+x&y=z?#%41 (copy)';
    const data = randomBytes(70_001);
    await store.put(key, data);
    assert.deepEqual(await store.get(key), data);
    const info = await store.head(key);
    assert.equal(info?.key, key);
    assert.equal(info?.sizeBytes, data.length);
    assert.ok(Math.abs((info?.modifiedMs ?? 0) - Date.now()) < 10 * 60_000, 'modification time is about now');
    const listed = await collect(store.list('dir one/'));
    assert.deepEqual(
      listed.map((i) => [i.key, i.sizeBytes]),
      [[key, data.length]],
    );
    await store.delete(key);
    assert.equal(await store.head(key), null);
    await assert.rejects(store.get(key), ObjectNotFoundError);
  });

  it('stores and returns an empty object', async () => {
    await store.put('empty', Buffer.alloc(0));
    assert.equal((await store.get('empty')).length, 0);
    assert.equal((await store.head('empty'))?.sizeBytes, 0);
    assert.equal((await store.get('empty', 0, 10)).length, 0);
  });

  it('reads byte ranges, clipped at the end of the object', async () => {
    const data = randomBytes(10_000);
    await store.put('ranged', data);
    for (const [offset, length] of [
      [0, 1],
      [1, 9_998],
      [4_095, 4_097],
      [9_999, 1],
      [9_000, 5_000],
      [0, 10_000],
    ]) {
      assert.deepEqual(
        await store.get('ranged', offset, length),
        data.subarray(offset, offset + length),
        `${offset}+${length}`,
      );
    }
    assert.deepEqual(
      await store.get('ranged', 7_000),
      data.subarray(7_000),
      'offset without length reads to the end',
    );
    assert.equal((await store.get('ranged', 10_000, 10)).length, 0, 'a range starting at the end is empty');
    assert.equal((await store.get('ranged', 50_000, 10)).length, 0, 'a range past the end is empty');
    assert.equal((await store.get('ranged', 5, 0)).length, 0);
    await assert.rejects(store.get('ranged', -1, 5), (err: FsError) => err.errno === Errno.EINVAL);
  });

  it('reports missing keys as missing for every operation', async () => {
    await assert.rejects(store.get('missing'), ObjectNotFoundError);
    await assert.rejects(store.get('missing', 10, 20), ObjectNotFoundError);
    await assert.rejects(store.get('missing', 0, 0), ObjectNotFoundError);
    assert.equal(await store.head('missing'), null);
    await store.delete('missing'); // not an error
    assert.deepEqual(await collect(store.list('missing')), []);
  });

  it('lists more than 1000 keys in key order across pages, honouring prefix and startAfter', async () => {
    const keys = Array.from({ length: 1_050 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    await runLimited(keys, 32, (key) => store.put(key, Buffer.from(key)));
    await store.put('manyother', Buffer.from('x')); // shares the prefix "many" but not "many/"
    const listed = await collect(store.list('many/'));
    assert.deepEqual(
      listed.map((i) => i.key),
      keys,
    );
    assert.ok(listed.every((i) => i.sizeBytes === 10));
    const after = await collect(store.list('many/', 'many/00949'));
    assert.deepEqual(
      after.map((i) => i.key),
      keys.slice(950),
    );
    assert.equal((await collect(store.list('many'))).length, 1_051);
  });

  it('uploads objects above the threshold as multipart and reads them back whole and across part boundaries', async () => {
    const data = randomBytes(13 * 1024 * 1024 + 17);
    await store.put('big/multipart', data);
    assert.deepEqual(await store.get('big/multipart'), data);
    const boundary = 5 * 1024 * 1024;
    assert.deepEqual(
      await store.get('big/multipart', boundary - 100, 200),
      data.subarray(boundary - 100, boundary + 100),
    );
    assert.equal((await store.head('big/multipart'))?.sizeBytes, data.length);
    // The server's ETag of a multipart object ends in "-<parts>": proof it went up in 3 parts.
    const settings = resolveAwsSettings();
    const raw = new S3Transport(store.location, settings.credentials, 'us-east-1');
    try {
      const res = await raw.send({
        method: 'HEAD',
        key: `${prefix}/big/multipart`,
        payloadSha256: EMPTY_SHA256,
      });
      assert.match(String(res.headers.etag), /-3"$/);
    } finally {
      raw.close();
    }
  });

  it('moves many objects concurrently through a small in-flight limit without mixing them up', async () => {
    const small = await openS3Store(testUrl(prefix, { max_in_flight: '4' }));
    try {
      const blobs = Array.from({ length: 48 }, (_, i) => ({
        key: `conc/${i}`,
        data: randomBytes(64 * 1024 + i),
      }));
      await Promise.all(blobs.map((b) => small.put(b.key, b.data)));
      const back = await Promise.all(blobs.map((b) => small.get(b.key, 1000, 50_000)));
      back.forEach((buf, i) => assert.deepEqual(buf, blobs[i].data.subarray(1000, 51_000)));
    } finally {
      await small.close();
    }
  });

  it('has a body damaged in transit rejected by the server, as a transient error, and not stored', async () => {
    const raw = new S3Transport(store.location, resolveAwsSettings().credentials, 'us-east-1');
    try {
      const sent = Buffer.from('what arrives');
      const key = `${prefix}/damaged`;
      // The signed hash is of other bytes: what the server sees when bytes flip on the way.
      await assert.rejects(
        raw.send({ method: 'PUT', key, body: sent, payloadSha256: sha256Hex('what was sent') }),
        (err: Error) =>
          err instanceof TransientStoreError && /XAmzContentSHA256Mismatch \(400\)/.test(err.message),
      );
      assert.equal(await store.head('damaged'), null);
    } finally {
      raw.close();
    }
  });

  it('fails with EACCES and a clear message for a wrong secret, checked by the server, never echoing it', async () => {
    const secret = 'wrongSecretValue1234567890';
    const bad = await openS3Store(testUrl(prefix), {
      accessKeyId: resolveAwsSettings().credentials.accessKeyId,
      secretAccessKey: secret,
    });
    try {
      await assert.rejects(bad.put('nope', Buffer.from('x')), (err: FsError) => {
        assert.equal(err.errno, Errno.EACCES);
        assert.match(err.message, /SignatureDoesNotMatch \(403\)/);
        assert.match(err.message, /secret access key does not match/);
        assert.ok(!err.message.includes(secret));
        return true;
      });
      assert.ok(!bad.description.includes(secret));
    } finally {
      await bad.close();
    }
    const unknown = await openS3Store(testUrl(prefix), {
      accessKeyId: 'NOSUCHKEYID',
      secretAccessKey: secret,
    });
    try {
      await assert.rejects(unknown.head('x'), (err: FsError) => err.errno === Errno.EACCES);
      await assert.rejects(unknown.get('x'), /InvalidAccessKeyId \(403\)/);
    } finally {
      await unknown.close();
    }
  });

  it('names a missing bucket instead of calling every key missing', async () => {
    const base = S3_TEST_URL ?? '';
    const other = await openS3Store(base.replace(/^s3:\/\/[^/?]+/, 's3://strata-no-such-bucket'));
    try {
      await assert.rejects(other.get('k'), /NoSuchBucket.*create it or fix the URL/);
      await assert.rejects(other.put('k', Buffer.from('x')), /NoSuchBucket/);
    } finally {
      await other.close();
    }
  });

  it('speaks virtual-host style (bucket in the Host header) to the same server', async (t) => {
    const endpoint = new URL(
      new URLSearchParams((S3_TEST_URL ?? '').split('?')[1] ?? '').get('endpoint') ?? 'http://x',
    );
    if (endpoint.hostname !== '127.0.0.1') {
      t.skip('needs the local radosgw (rgw_dns_name = localhost)');
      return;
    }
    const vhost: ObjectStore = await openS3Store(
      testUrl(prefix, { endpoint: `http://localhost:${endpoint.port}`, path_style: '0' }),
      { lookup: resolveToLoopback },
    );
    try {
      await vhost.put('vhost/one', Buffer.from('virtual'));
      assert.equal(
        (await store.get('vhost/one')).toString(),
        'virtual',
        'the path-style client sees the same object',
      );
      assert.deepEqual(
        (await collect(vhost.list('vhost/'))).map((i) => i.key),
        ['vhost/one'],
      );
    } finally {
      await vhost.close();
    }
  });
});
