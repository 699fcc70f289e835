// --metrics HOST:PORT on real daemons: `strata up` and `strata mount` serve the mount's
// counters, `strata meta serve` its process metrics, all in the Prometheus text format; the
// counters follow the I/O done on the mount, a bad address is one line, and the port closes
// with the process.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  StrataProcess,
  adminQuery,
  cleanup,
  createPgDatabase,
  formatVolume,
  freePort,
  isMounted,
  serveMeta,
  startUp,
  strata,
  tempDir,
} from '../e2e/harness.js';
import { scrape, type Samples } from './scrape.js';
import { SQLITE_ENGINE_CACHE_BYTES } from '../../src/meta/index.js';

const root = tempDir('metrics');
const procs: StrataProcess[] = [];
const mountpoints: string[] = [];

const PG_SKIP = process.env.STRATA_PG_TEST_URL ? false : 'STRATA_PG_TEST_URL is not set';
const database = `strata_metrics_e2e_${process.pid}`;

after(async () => {
  await cleanup(procs, mountpoints, [root]);
  if (!PG_SKIP) await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

function sample(samples: Samples, key: string): number {
  const value = samples.get(key);
  assert.ok(value !== undefined, `no sample ${key} in /metrics`);
  return value;
}

/** The process metrics prom-client adds: CPU, memory, heap, event-loop lag, descriptors. */
function assertProcessMetrics(samples: Samples): void {
  assert.ok(sample(samples, 'process_cpu_user_seconds_total') > 0);
  assert.ok(sample(samples, 'process_resident_memory_bytes') > 0);
  assert.ok(sample(samples, 'nodejs_heap_size_used_bytes') > 0);
  assert.ok(sample(samples, 'process_open_fds') > 0);
  assert.ok(samples.has('nodejs_eventloop_lag_seconds'));
}

async function portRefuses(address: string): Promise<boolean> {
  try {
    await fetch(`http://${address}/metrics`);
    return false;
  } catch (error) {
    return /ECONNREFUSED/.test(String((error as { cause?: unknown }).cause));
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('strata up --metrics: the counters follow the I/O on the mount, the GC and the process', async () => {
  const dataDir = join(root, 'up');
  const mnt = join(root, 'mnt-up');
  mountpoints.push(mnt);
  const address = `127.0.0.1:${await freePort()}`;
  const previous = { interval: process.env.STRATA_GC_INTERVAL, margin: process.env.STRATA_GC_SAFETY_MARGIN };
  // The child inherits these: a GC pass a second, nothing held back.
  process.env.STRATA_GC_INTERVAL = '1s';
  process.env.STRATA_GC_SAFETY_MARGIN = '0s';
  let up: StrataProcess;
  try {
    up = await startUp(dataDir, mnt, ['--metrics', address, '--retention', '0', '--block-size', '1M']);
  } finally {
    for (const [name, value] of [
      ['STRATA_GC_INTERVAL', previous.interval],
      ['STRATA_GC_SAFETY_MARGIN', previous.margin],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  procs.push(up);
  assert.match(up.output, new RegExp(`metrics on http://${address}/metrics`));
  const before = await scrape(address);
  assertProcessMetrics(before);

  const fileBytes = 3 * 1024 * 1024 + 12_345; // 4 blocks of 1 MiB, random: nothing compresses
  const content = randomBytes(fileBytes);
  mkdirSync(join(mnt, 'd'));
  writeFileSync(join(mnt, 'd', 'f'), content); // close flushes: the blocks are stored
  // RMDIR of a directory that is not empty reaches the file system and fails there.
  assert.throws(() => rmdirSync(join(mnt, 'd')), /ENOTEMPTY/);
  // Drop the file's clean pages from the kernel's cache, so reading it goes through FUSE READ.
  const dropped = spawnSync('dd', [`if=${join(mnt, 'd', 'f')}`, 'iflag=nocache', 'count=0'], {
    encoding: 'utf8',
  });
  assert.equal(dropped.status, 0, dropped.stderr);
  assert.deepEqual(readFileSync(join(mnt, 'd', 'f')), content);

  const during = await scrape(address);
  const delta = (key: string): number => sample(during, key) - (before.get(key) ?? 0);
  assert.ok(delta('strata_fuse_written_bytes_total') >= fileBytes, 'bytes written through FUSE');
  assert.ok(delta('strata_fuse_read_bytes_total') > 0, 'bytes read through FUSE');
  assert.ok(
    delta('strata_fuse_read_bytes_total') <= fileBytes + 1024 * 1024,
    'no more than the file, plus readahead',
  );
  assert.ok(delta('strata_fuse_requests_total{opcode="MKDIR"}') >= 1);
  assert.ok(delta('strata_fuse_requests_total{opcode="WRITE"}') >= 1);
  assert.ok(delta('strata_fuse_requests_total{opcode="READ"}') >= 1);
  assert.ok(delta('strata_fuse_requests_total{opcode="RMDIR"}') >= 1);
  assert.ok(delta('strata_fuse_request_errors_total{opcode="RMDIR"}') >= 1, 'the ENOTEMPTY of RMDIR');
  assert.equal(during.get('strata_fuse_request_errors_total{opcode="WRITE"}'), undefined, 'no WRITE failed');
  assert.ok(delta('strata_object_store_puts_total') >= 4, 'one put per block at least');
  assert.ok(delta('strata_object_store_put_bytes_total') >= fileBytes);
  assert.equal(sample(during, 'strata_object_store_put_failures_total'), 0);
  assert.equal(sample(during, 'strata_object_store_failures_total'), 0);
  // The default 512 MiB, less the GC headroom (64 MiB) and the in-process engine's page caches.
  const limit = sample(during, 'strata_memory_budget_limit_bytes');
  assert.ok(limit > 0 && limit <= 448 * 1024 * 1024 - SQLITE_ENGINE_CACHE_BYTES, `budget limit ${limit}`);
  assert.ok(sample(during, 'strata_memory_budget_used_bytes') >= 0);
  assert.equal(sample(during, 'strata_uploads_in_flight'), 0, 'the close waited for every upload');
  const lookups = (outcome: string): number =>
    sample(during, `strata_cache_lookups_total{cache="memory",outcome="${outcome}"}`);
  assert.ok(lookups('hit') + lookups('miss') > 0, 'the read looked in the memory cache');
  // A whole-file read is the kernel's readahead, which pushes nothing; the counters are there.
  assert.equal(sample(during, 'strata_page_cache_push_failures_total'), 0);
  assert.ok(sample(during, 'strata_page_cache_dropped_pushes_total') >= 0);
  // Every counter only grows between two scrapes.
  for (const [key, value] of before) {
    if (key.startsWith('strata_') && key.includes('_total')) {
      assert.ok(sample(during, key) >= value, `${key} went down`);
    }
  }

  // Deleting the file makes its 4 blocks garbage; the next passes delete them.
  unlinkSync(join(mnt, 'd', 'f'));
  await waitFor('the GC metrics count the deleted blocks', async () => {
    const now = await scrape(address);
    return (now.get('strata_gc_deleted_objects_total') ?? 0) >= 4;
  });
  const gc = await scrape(address);
  assert.ok(sample(gc, 'strata_gc_deleted_bytes_total') >= fileBytes);
  assert.ok(sample(gc, 'strata_gc_passes_total') >= 1);

  // Only /metrics is served.
  assert.equal((await fetch(`http://${address}/`)).status, 404);
  assert.equal(await up.stop(), 0, up.output);
  assert.ok(await portRefuses(address), 'the metrics port closed with the process');
});

test('strata meta serve --metrics and strata mount --metrics answer, and close with their process', async () => {
  const engine = `sqlite:${join(root, 'served.db')}`;
  const secretFile = join(root, 'served.secret');
  formatVolume(engine, join(root, 'served-objects'), 'mv', secretFile);
  const serverMetrics = `127.0.0.1:${await freePort()}`;
  const { address, proc: server } = await serveMeta(engine, ['--metrics', serverMetrics]);
  procs.push(server);
  assertProcessMetrics(await scrape(serverMetrics));

  const mnt = join(root, 'mnt-remote');
  mkdirSync(mnt);
  mountpoints.push(mnt);
  const mountMetrics = `127.0.0.1:${await freePort()}`;
  const mount = new StrataProcess([
    'mount',
    `${address}/mv`,
    mnt,
    '--secret-file',
    secretFile,
    '--metrics',
    mountMetrics,
  ]);
  procs.push(mount);
  await mount.waitFor(() => isMounted(mnt) && mount.output.includes('mounted at'), `${mnt} to be mounted`);
  writeFileSync(join(mnt, 'small'), 'hello metrics\n');
  const mounted = await scrape(mountMetrics);
  assertProcessMetrics(mounted);
  assert.ok(sample(mounted, 'strata_fuse_written_bytes_total') >= 14);
  assert.ok(sample(mounted, 'strata_fuse_requests_total{opcode="INIT"}') === 1);
  assert.equal(mounted.get('strata_gc_deleted_objects_total'), undefined, 'a mount runs no GC');

  assert.equal(await mount.stop(), 0, mount.output);
  assert.ok(await portRefuses(mountMetrics), 'the mount metrics port closed with the process');
  assert.equal(await server.stop(), 0, server.output);
  assert.ok(await portRefuses(serverMetrics), 'the server metrics port closed with the process');
});

test('a bad --metrics address is refused in one line, before anything starts', async () => {
  const mnt = join(root, 'mnt-bad');
  mkdirSync(mnt);
  for (const [args, why] of [
    [
      ['up', join(root, 'bad'), mnt, '--metrics', 'localhost'],
      /invalid --metrics "localhost": use HOST:PORT/,
    ],
    [
      ['up', join(root, 'bad'), mnt, '--metrics', '127.0.0.1:70000'],
      /invalid --metrics "127\.0\.0\.1:70000"/,
    ],
    [['mount', '127.0.0.1:1/v', mnt, '--metrics', ':9100'], /invalid --metrics ":9100"/],
    [
      ['meta', 'serve', '--engine', 'sqlite:/nonexistent.db', '--listen', '127.0.0.1:1', '--metrics', 'x:y'],
      /invalid --metrics "x:y"/,
    ],
  ] as const) {
    const result = strata([...args]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, why);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  }
  assert.equal(isMounted(mnt), false);

  // A port someone else holds: one line naming the port, and nothing mounted.
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as { port: number }).port;
  try {
    const result = strata(['up', join(root, 'busy'), mnt, '--metrics', `127.0.0.1:${port}`]);
    assert.equal(result.status, 1, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`cannot serve metrics on 127\\.0\\.0\\.1:${port}: the port is in use`),
    );
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.equal(isMounted(mnt), false);
  } finally {
    holder.close();
  }
});

test(
  'strata meta serve --metrics on PostgreSQL counts its background GC passes',
  { skip: PG_SKIP },
  async () => {
    const engine = await createPgDatabase(database);
    formatVolume(engine, join(root, 'pg-objects'), 'pgv', join(root, 'pg.secret'));
    const metricsAt = `127.0.0.1:${await freePort()}`;
    const previous = process.env.STRATA_GC_INTERVAL;
    process.env.STRATA_GC_INTERVAL = '1s'; // the child inherits it: a pass a second
    let server: StrataProcess;
    try {
      server = (await serveMeta(engine, ['--metrics', metricsAt])).proc;
    } finally {
      if (previous === undefined) delete process.env.STRATA_GC_INTERVAL;
      else process.env.STRATA_GC_INTERVAL = previous;
    }
    procs.push(server);
    assertProcessMetrics(await scrape(metricsAt));
    await waitFor('a GC pass is counted', async () => {
      const now = await scrape(metricsAt);
      return (now.get('strata_gc_passes_total') ?? 0) >= 1;
    });
    const after = await scrape(metricsAt);
    assert.equal(sample(after, 'strata_gc_failed_passes_total'), 0);
    assert.equal(sample(after, 'strata_gc_deleted_objects_total'), 0, 'nothing was deleted');
    assert.equal(await server.stop(), 0, server.output);
    assert.ok(await portRefuses(metricsAt), 'the metrics port closed with the process');
  },
);
