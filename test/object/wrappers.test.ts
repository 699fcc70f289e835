import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Errno, isFsError } from '../../src/common/index.js';
import { FileObjectStore } from '../../src/object/backends/file.js';
import { ObjectNotFoundError, TransientStoreError, withFaults, withRetry } from '../../src/object/index.js';

const dirs: string[] = [];
async function store(): Promise<FileObjectStore> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-data-wrap-'));
  dirs.push(dir);
  return new FileObjectStore(dir);
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Records the backoff delays instead of sleeping them. */
function recordingSleep(): { delays: number[]; sleep: (ms: number) => Promise<void> } {
  const delays: number[] = [];
  return { delays, sleep: async (ms) => void delays.push(ms) };
}

describe('retry wrapper', () => {
  it('recovers from transient failures with growing, jittered, capped backoff', async () => {
    const faulty = withFaults(await store());
    const { delays, sleep } = recordingSleep();
    const retrying = withRetry(faulty, { baseDelayMs: 10, maxDelayMs: 40, random: () => 0.999, sleep });
    await faulty.inner.put('a/b', Buffer.from('hello'));
    faulty.failNext(4);
    assert.equal((await retrying.get('a/b')).toString(), 'hello');
    assert.equal(retrying.stats.retries, 4);
    assert.deepEqual(delays, [9, 19, 39, 39]);
  });

  it('gives up after the attempt budget with EIO naming the operation, store and cause', async () => {
    const faulty = withFaults(await store());
    const retrying = withRetry(faulty, { maxAttempts: 3, sleep: async () => undefined });
    faulty.failNext(10);
    await assert.rejects(retrying.put('x/y', Buffer.from('z')), (error: unknown) => {
      assert.ok(isFsError(error));
      assert.equal(error.errno, Errno.EIO);
      assert.match(error.message, /put "x\/y" on file:\/\/.* failed after 3 attempts/);
      assert.match(error.message, /injected failure of put/);
      assert.ok(error.cause instanceof TransientStoreError);
      return true;
    });
    assert.equal(faulty.stats.errors, 3);
    assert.equal(retrying.stats.gaveUp, 1);
  });

  it('gives up once the time budget is spent, whatever the attempts left', async () => {
    const faulty = withFaults(await store());
    const retrying = withRetry(faulty, {
      maxAttempts: 1000,
      maxElapsedMs: 30,
      baseDelayMs: 20,
      maxDelayMs: 20,
      random: () => 0.99,
    });
    faulty.failNext(1000);
    await assert.rejects(retrying.head('k'), /failed after \d+ attempts/);
    assert.ok(faulty.stats.errors < 1000);
  });

  it('abandons an attempt that never answers and retries it', async () => {
    const faulty = withFaults(await store());
    await faulty.inner.put('k', Buffer.from('v'));
    // Long enough that the real read after the two hung ones is never abandoned too.
    const retrying = withRetry(faulty, { attemptTimeoutMs: 1000, sleep: async () => undefined });
    faulty.hangNext(2);
    assert.equal((await retrying.get('k')).toString(), 'v');
    assert.equal(faulty.stats.hangs, 2);
    assert.equal(retrying.stats.retries, 2);
    faulty.hangNext(5);
    const giveUp = withRetry(faulty, { attemptTimeoutMs: 10, maxAttempts: 2, sleep: async () => undefined });
    await assert.rejects(giveUp.head('k'), /failed after 2 attempts .*got no answer within 10 ms/);
  });

  it('counts the attempts it gave up on that may still use caller memory: puts, and gets into a buffer', async () => {
    const faulty = withFaults(await store());
    // Long enough that a real put on a loaded disk is never abandoned too (20 ms was not: 3 !== 2).
    const retrying = withRetry(faulty, { attemptTimeoutMs: 1000, sleep: async () => undefined });
    assert.equal(retrying.abandonedAttempts, 0, 'the file store and the fault wrapper can say');
    await faulty.inner.put('k', Buffer.from('v'));
    faulty.hangNext(1);
    await retrying.get('k');
    assert.equal(retrying.abandonedAttempts, 0, 'an abandoned get without `into` writes no caller memory');
    faulty.hangNext(1);
    const into = Buffer.alloc(8);
    assert.equal((await retrying.get('k', undefined, undefined, into)).toString(), 'v');
    assert.equal(retrying.abandonedAttempts, 1, 'an abandoned get into a buffer may still write there');
    faulty.hangNext(2);
    await retrying.put('p', Buffer.from('data'));
    assert.equal(retrying.abandonedAttempts, 3);
    assert.equal((await retrying.get('p')).toString(), 'data');
    // Over a store that cannot say, neither can the wrapper.
    const silent = withRetry({
      description: 'silent',
      put: (key: string, data: Buffer) => faulty.put(key, data),
      get: (key: string) => faulty.get(key),
      head: (key: string) => faulty.head(key),
      delete: (key: string) => faulty.delete(key),
      list: (prefix: string) => faulty.list(prefix),
      close: () => faulty.close(),
    });
    assert.equal(silent.abandonedAttempts, undefined);
  });

  it('does not retry a missing object or a permanent error', async () => {
    const faulty = withFaults(await store());
    const retrying = withRetry(faulty, { sleep: async () => undefined });
    await assert.rejects(retrying.get('missing'), ObjectNotFoundError);
    await assert.rejects(retrying.put('../bad', Buffer.alloc(1)), /invalid object key/);
    assert.equal(retrying.stats.retries, 0);
  });

  /** A clock that only moves when the wrapper sleeps, so minutes of backoff take no time. */
  function fakeClock(): { now: () => number; sleep: (ms: number) => Promise<void> } {
    let nowMs = 0;
    return { now: () => nowMs, sleep: async (ms) => void (nowMs += ms) };
  }

  it('by default waits out a 20 s outage instead of failing', async () => {
    const base = await store();
    await base.put('k', Buffer.from('v'));
    const clock = fakeClock();
    const lines: string[] = [];
    const down = Object.assign(Object.create(base) as FileObjectStore, {
      get: (key: string) =>
        clock.now() < 20_000
          ? Promise.reject(new TransientStoreError('connect ECONNREFUSED 127.0.0.1:7480'))
          : base.get(key),
    });
    const retrying = withRetry(down, { ...clock, random: () => 0.5, log: (line) => lines.push(line) });
    const results = await Promise.all([retrying.get('k'), retrying.get('k'), retrying.get('k')]);
    assert.deepEqual(
      results.map((body) => body.toString()),
      ['v', 'v', 'v'],
    );
    // The old default (8 attempts) gave up after ~6 s of backoff; time is the budget now.
    assert.ok(retrying.stats.retries > 3 * 8, `only ${retrying.stats.retries} retries`);
    assert.equal(retrying.stats.gaveUp, 0);
    // One line when the outage starts and one when it ends, not one per operation or attempt.
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0], /is failing .*ECONNREFUSED.*retrying each operation for up to 60 s/);
    assert.match(lines[1], /answers again after \d+ ms/);
  });

  it('fails with EIO once the time budget is spent, not before', async () => {
    const base = await store();
    const clock = fakeClock();
    const dead = Object.assign(Object.create(base) as FileObjectStore, {
      put: () => Promise.reject(new TransientStoreError('503 Service Unavailable')),
    });
    const retrying = withRetry(dead, { ...clock, maxElapsedMs: 30_000 });
    await assert.rejects(retrying.put('x', Buffer.from('y')), (error: unknown) => {
      assert.ok(isFsError(error) && error.errno === Errno.EIO);
      assert.match(error.message, /put "x" .* failed after \d+ attempts in \d+ ms .*503/);
      return true;
    });
    // Backoff is capped at 2 s, so the last attempt happens within 2 s after the budget ends.
    assert.ok(clock.now() >= 30_000 && clock.now() < 32_000, `gave up at ${clock.now()} ms`);
    assert.equal(retrying.stats.gaveUp, 1);
  });

  it('resumes a list that failed midway after the last delivered key', async () => {
    const base = await store();
    for (let i = 0; i < 5; i++) await base.put(`l/${i}`, Buffer.from([i]));
    let calls = 0;
    const flaky = Object.assign(Object.create(base) as FileObjectStore, {
      async *list(prefix: string, startAfter?: string) {
        calls++;
        let delivered = 0;
        for await (const info of base.list(prefix, startAfter)) {
          if (calls === 1 && delivered === 2) throw new TransientStoreError('connection reset while listing');
          delivered++;
          yield info;
        }
      },
    });
    const keys: string[] = [];
    for await (const info of withRetry(flaky, { sleep: async () => undefined }).list('l/'))
      keys.push(info.key);
    assert.deepEqual(keys, ['l/0', 'l/1', 'l/2', 'l/3', 'l/4']);
    assert.equal(calls, 2);
  });
});

describe('fault injection wrapper', () => {
  async function faultSequence(seed: number): Promise<string[]> {
    const base = await store();
    await base.put('obj', Buffer.alloc(4096, 7));
    const faulty = withFaults(base, { seed, errorRate: 0.3, truncateRate: 0.2, corruptRate: 0.2 });
    const outcome: string[] = [];
    for (let i = 0; i < 40; i++) {
      try {
        const body = await faulty.get('obj');
        if (body.length < 4096) outcome.push(`short:${body.length}`);
        else if (!body.equals(Buffer.alloc(4096, 7))) outcome.push('corrupt');
        else outcome.push('ok');
      } catch (error) {
        assert.ok(error instanceof TransientStoreError);
        outcome.push('error');
      }
    }
    return outcome;
  }

  it('injects the same errors, truncations and corruptions for the same seed', async () => {
    const first = await faultSequence(42);
    assert.deepEqual(await faultSequence(42), first);
    assert.notDeepEqual(await faultSequence(43), first);
    for (const kind of ['ok', 'error', 'corrupt'])
      assert.ok(first.includes(kind), `no "${kind}" in ${first}`);
    assert.ok(first.some((outcome) => outcome.startsWith('short:')));
  });

  it('limits faults to the chosen operations and leaves the stored data intact', async () => {
    const base = await store();
    const faulty = withFaults(base, { seed: 5, errorRate: 1, operations: ['put'] });
    await assert.rejects(faulty.put('a', Buffer.from('x')), TransientStoreError);
    await base.put('a', Buffer.from('x'));
    assert.equal((await faulty.get('a')).toString(), 'x');
    assert.equal((await faulty.head('a'))?.sizeBytes, 1);
  });

  it('delays each request by the latency plus its turn on the shared link', async () => {
    const base = await store();
    await base.put('a', Buffer.alloc(50_000));
    const { delays, sleep } = recordingSleep();
    const faulty = withFaults(base, {
      latencyMs: 20,
      bandwidthBytesPerSec: 1_000_000,
      sleep,
      nowMs: () => 1000,
    });
    await faulty.get('a');
    await faulty.get('a');
    await faulty.head('a');
    // 50 kB at 1 MB/s is 50 ms; the second transfer queues behind the first on the link.
    assert.deepEqual(delays, [70, 120, 20]);
  });
});
