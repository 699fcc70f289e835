// A real outage: radosgw is stopped while puts run through the retry wrapper, then started again.
// Every put that was acknowledged must read back intact; puts in flight must wait out the outage
// rather than fail. Runs only against the cluster of scripts/radosgw (it stops that radosgw).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { openObjectStore, type ObjectStore, type RetryingObjectStore } from '../../src/object/index.js';
import { S3_TEST_URL, localRadosgwPid, repoRoot, testUrl, uniquePrefix } from './s3-helpers.js';

const LONG = process.env.STRATA_TEST_PROFILE === 'long';
const OUTAGE_MS = LONG ? 20_000 : 5_000;

function runScript(name: string, args: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot(), 'scripts', 'radosgw', name), args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${name} ${args.join(' ')} exited with ${code}: ${stderr.slice(-2000)}`));
    });
  });
}

async function inParallel<T>(
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const digest = (data: Buffer) => createHash('sha256').update(data).digest('hex');

const skip = !S3_TEST_URL
  ? 'STRATA_S3_TEST_URL is unset: run eval "$(scripts/radosgw/start.sh)" first'
  : localRadosgwPid() === undefined
    ? 'the S3 under test is not the radosgw of scripts/radosgw/start.sh, which this test stops and starts'
    : false;

describe('S3 backend through a radosgw outage', { skip }, () => {
  it(
    `loses no acknowledged put when radosgw is down for ${OUTAGE_MS / 1000} s`,
    { timeout: 300_000 },
    async () => {
      const prefix = uniquePrefix('outage');
      // A budget longer than the outage: the application blocks instead of seeing EIO.
      const store = (await openObjectStore(testUrl(prefix, { timeout: '3s' }), {
        retry: { maxAttempts: 10_000, maxElapsedMs: 150_000, baseDelayMs: 50, maxDelayMs: 1_000 },
      })) as RetryingObjectStore;
      const acknowledged = new Map<string, string>();
      const failures: Error[] = [];
      let writing = true;
      let stopped = false;
      const writer = async (worker: number) => {
        for (let n = 0; writing; n++) {
          const key = `w${worker}/${String(n).padStart(6, '0')}`;
          const data = randomBytes(16 * 1024 + ((worker * 7919 + n) % 50_000));
          try {
            await store.put(key, data);
            acknowledged.set(key, digest(data));
          } catch (err) {
            failures.push(err as Error);
            return;
          }
        }
      };
      try {
        const t0 = Date.now();
        const writers = Array.from({ length: 4 }, (_, worker) => writer(worker));
        await sleep(1_000);
        const beforeOutage = acknowledged.size;
        await runScript('stop.sh', ['--rgw-only']);
        stopped = true;
        await sleep(OUTAGE_MS);
        const duringOutage = acknowledged.size;
        await runScript('start.sh');
        stopped = false;
        await sleep(1_000);
        writing = false;
        await Promise.all(writers);

        assert.deepEqual(failures, [], 'no put failed: they waited out the outage');
        assert.ok(beforeOutage > 0, 'puts were acknowledged before the outage');
        assert.ok(acknowledged.size > duringOutage, 'puts were acknowledged after the restart');
        assert.ok(store.stats.retries > 0, 'the outage was seen and retried');
        console.log(
          `# ${acknowledged.size} puts acknowledged, ${store.stats.retries} retries, t=${Date.now() - t0} ms`,
        );
        const plain: ObjectStore = await openObjectStore(testUrl(prefix), { retry: false });
        try {
          await inParallel([...acknowledged], 16, async ([key, sha]) => {
            assert.equal(digest(await plain.get(key)), sha, `acknowledged object ${key} reads back intact`);
          });
        } finally {
          await plain.close();
        }
      } finally {
        writing = false;
        if (stopped || localRadosgwPid() === undefined) await runScript('start.sh');
        const keys: string[] = [];
        for await (const info of store.list('')) keys.push(info.key);
        await inParallel(keys, 16, (key) => store.delete(key));
        await store.close();
      }
    },
  );
});
