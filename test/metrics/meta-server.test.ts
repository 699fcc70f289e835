// `strata meta serve --metrics`: the RPC metrics of a real server process follow exactly the
// calls a client made (calls, latency histogram and errors by method and errno), and its
// connections, bytes, rejected handshakes and invalidation pushes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT_INO, isFsError, type Ino } from '../../src/common/index.js';
import type { Caller } from '../../src/meta/api.js';
import { connectMeta, type MetaClient } from '../../src/meta/client/index.js';
import {
  StrataProcess,
  adminQuery,
  cleanup,
  createPgDatabase,
  formatVolume,
  freePort,
  isMounted,
  serveMeta,
  tempDir,
  waitUntil,
} from '../e2e/harness.js';
import { assertHistogram, scrape, valueOf, type Samples } from './scrape.js';

const root = tempDir('metaobs');
const procs: StrataProcess[] = [];
const clients: MetaClient[] = [];
const mountpoints: string[] = [];
const pgDatabase = `strata_metaobs_e2e_${process.pid}`;
const caller: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

after(async () => {
  for (const client of clients) await client.close();
  await cleanup(procs, mountpoints, [root]);
  if (process.env.STRATA_PG_TEST_URL) await adminQuery(`DROP DATABASE IF EXISTS ${pgDatabase} WITH (FORCE)`);
});

const delta = (before: Samples, now: Samples, key: string): number =>
  valueOf(now, key) - valueOf(before, key);

async function gaugeReaches(metricsAt: string, key: string, value: number): Promise<void> {
  let last = NaN;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    last = valueOf(await scrape(metricsAt), key);
    if (last === value) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`${key} stayed ${last}, expected ${value}`);
}

test('meta serve --metrics counts each call by method, its latency and its errno, and the connections', async () => {
  const engine = `sqlite:${join(root, 'meta.db')}`;
  const secretFile = join(root, 'secret');
  formatVolume(engine, join(root, 'objects'), 'obs', secretFile);
  const secret = readFileSync(secretFile, 'utf8').trim();
  const metricsAt = `127.0.0.1:${await freePort()}`;
  const { address, proc } = await serveMeta(engine, ['--metrics', metricsAt]);
  procs.push(proc);

  const start = await scrape(metricsAt);
  assert.equal(start.get('strata_meta_rpc_connections'), 0);
  assert.equal(start.get('strata_meta_rpc_calls_in_flight'), 0);

  const client = await connectMeta({ address, secret, clientName: 'metaobs' });
  clients.push(client);
  await gaugeReaches(metricsAt, 'strata_meta_rpc_connections', 1);
  const before = await scrape(metricsAt);

  const CREATES = 20;
  const dir = await client.mkdir(caller, ROOT_INO, 'd', 0o755, 0);
  for (let i = 0; i < CREATES; i++) await client.mknod(caller, dir.ino, `f${i}`, S_IFREG | 0o644, 0, 0);
  const MISSING = 3;
  for (let i = 0; i < MISSING; i++) {
    await assert.rejects(client.lookup(caller, dir.ino, `missing${i}`), (error: unknown) => {
      return isFsError(error) && error.code === 'ENOENT';
    });
  }
  await client.lookup(caller, dir.ino, 'f0');
  // An argument the server refuses before the engine sees it: EINVAL, under its method.
  await assert.rejects(
    client.getattr(0 as Ino),
    (error: unknown) => isFsError(error) && error.code === 'EINVAL',
  );

  const now = await scrape(metricsAt);
  assert.equal(delta(before, now, 'strata_meta_rpc_calls_total{method="mknod"}'), CREATES);
  assert.equal(delta(before, now, 'strata_meta_rpc_call_duration_seconds_count{method="mknod"}'), CREATES);
  assert.equal(delta(before, now, 'strata_meta_rpc_calls_total{method="mkdir"}'), 1);
  assert.equal(delta(before, now, 'strata_meta_rpc_calls_total{method="lookup"}'), MISSING + 1);
  assert.equal(
    delta(before, now, 'strata_meta_rpc_call_errors_total{method="lookup",errno="ENOENT"}'),
    MISSING,
  );
  assert.equal(delta(before, now, 'strata_meta_rpc_call_errors_total{method="getattr",errno="EINVAL"}'), 1);
  assert.equal(valueOf(now, 'strata_meta_rpc_call_errors_total{method="mknod",errno="ENOENT"}'), 0);
  assert.ok(delta(before, now, 'strata_meta_rpc_call_duration_seconds_sum{method="mknod"}') > 0);
  assertHistogram(now, 'strata_meta_rpc_call_duration_seconds', 'method="mknod"');
  assert.ok(delta(before, now, 'strata_meta_rpc_received_bytes_total') > CREATES * 20);
  assert.ok(delta(before, now, 'strata_meta_rpc_sent_bytes_total') > CREATES * 20);
  assert.equal(now.get('strata_meta_rpc_calls_in_flight'), 0);
  assert.match(
    readHelp(
      await (await fetch(`http://${metricsAt}/metrics`)).text(),
      'strata_meta_rpc_call_duration_seconds',
    ),
    /round trip to it/,
    'the help text says the engine thread hop is included',
  );

  // Invalidations: a client that asked for them hears each push the metric counts.
  const listener = await connectMeta({ address, secret, invalidations: true });
  clients.push(listener);
  let heard = 0;
  listener.onInvalidation(() => heard++);
  await gaugeReaches(metricsAt, 'strata_meta_rpc_connections', 2);
  const beforePushes = await scrape(metricsAt);
  await client.mknod(caller, dir.ino, 'pushed', S_IFREG | 0o644, 0, 0);
  await client.unlink(caller, dir.ino, 'pushed');
  await waitUntil(() => heard >= 1, 'an invalidation push', 10_000);
  await new Promise((resolve) => setTimeout(resolve, 200)); // a second batch, if any, arrives too
  const afterPushes = await scrape(metricsAt);
  assert.equal(delta(beforePushes, afterPushes, 'strata_meta_invalidation_pushes_total'), heard);

  // A client without the secret is refused and counted; the gauge follows closes.
  await assert.rejects(connectMeta({ address, secret: 'not the secret', maxAttempts: 1 }));
  await client.close();
  await listener.close();
  await gaugeReaches(metricsAt, 'strata_meta_rpc_connections', 0);
  const end = await scrape(metricsAt);
  assert.equal(delta(start, end, 'strata_meta_rpc_connections_total'), 3);
  assert.equal(delta(start, end, 'strata_meta_rpc_rejected_connections_total'), 1);

  assert.equal(await proc.stop(), 0, proc.output);
});

test('a mount of the server times its FUSE requests and metadata calls: both ends count the same lookups, ENOENTs and mkdirs', async () => {
  const engine = `sqlite:${join(root, 'mounted.db')}`;
  const secretFile = join(root, 'mounted.secret');
  formatVolume(engine, join(root, 'mounted-objects'), 'mv', secretFile);
  const serverMetrics = `127.0.0.1:${await freePort()}`;
  const { address, proc: server } = await serveMeta(engine, ['--metrics', serverMetrics]);
  procs.push(server);
  const mnt = join(root, 'mnt');
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

  const clientBefore = await scrape(mountMetrics);
  const serverBefore = await scrape(serverMetrics);
  const MISSING = 7;
  for (let i = 0; i < MISSING; i++) assert.equal(existsSync(join(mnt, `absent-${i}`)), false);
  const clientNow = await scrape(mountMetrics);
  const serverNow = await scrape(serverMetrics);
  const enoent = 'strata_meta_client_call_errors_total{method="lookup",errno="ENOENT"}';
  assert.equal(delta(clientBefore, clientNow, enoent), MISSING);
  assert.equal(delta(serverBefore, serverNow, enoent.replace('_client_', '_rpc_')), MISSING);
  assert.equal(
    delta(clientBefore, clientNow, 'strata_meta_client_call_duration_seconds_count{method="lookup"}'),
    delta(serverBefore, serverNow, 'strata_meta_rpc_call_duration_seconds_count{method="lookup"}'),
  );
  assertHistogram(clientNow, 'strata_meta_client_call_duration_seconds', 'method="lookup"');
  // Each mkdir is one MKDIR request, timed by the mount, and one mkdir call at both ends.
  const DIRS = 5;
  for (let i = 0; i < DIRS; i++) mkdirSync(join(mnt, `dir-${i}`));
  // A mount reads its stats once per scrape and reuses them for 100 ms (mount-metrics.ts).
  await new Promise((resolve) => setTimeout(resolve, 150));
  const clientAfter = await scrape(mountMetrics);
  const serverAfter = await scrape(serverMetrics);
  const fuseMkdirs = 'strata_fuse_request_duration_seconds_count{opcode="MKDIR"}';
  assert.equal(delta(clientNow, clientAfter, fuseMkdirs), DIRS);
  assert.equal(valueOf(clientAfter, 'strata_fuse_requests_total{opcode="MKDIR"}'), DIRS);
  assertHistogram(clientAfter, 'strata_fuse_request_duration_seconds', 'opcode="MKDIR"');
  assert.equal(delta(clientNow, clientAfter, 'strata_meta_client_calls_total{method="mkdir"}'), DIRS);
  assert.equal(delta(serverNow, serverAfter, 'strata_meta_rpc_calls_total{method="mkdir"}'), DIRS);
  // The mount opened its session over RPC: both ends saw that one call.
  assert.equal(valueOf(clientNow, 'strata_meta_client_calls_total{method="openSession"}'), 1);
  assert.equal(valueOf(serverNow, 'strata_meta_rpc_calls_total{method="openSession"}'), 1);

  assert.equal(await mount.stop(), 0, mount.output);
  assert.equal(await server.stop(), 0, server.output);
});

test('strata up --listen --metrics counts the RPC clients of its in-process server', async () => {
  const dataDir = join(root, 'up-data');
  const mnt = join(root, 'up-mnt');
  mkdirSync(mnt);
  mountpoints.push(mnt);
  const [port, metricsPort] = [await freePort(), await freePort()];
  const metricsAt = `127.0.0.1:${metricsPort}`;
  const up = new StrataProcess(['up', dataDir, mnt, '--listen', `127.0.0.1:${port}`, '--metrics', metricsAt]);
  procs.push(up);
  await up.waitFor(() => isMounted(mnt) && up.output.includes('metadata served on'), 'strata up to serve');
  const before = await scrape(metricsAt);
  const secret = readFileSync(join(dataDir, 'meta.db.secret'), 'utf8').trim();
  const client = await connectMeta({ address: `127.0.0.1:${port}`, secret });
  clients.push(client);
  const MKDIRS = 4;
  for (let i = 0; i < MKDIRS; i++) await client.mkdir(caller, ROOT_INO, `remote-${i}`, 0o755, 0);
  await assert.rejects(client.lookup(caller, ROOT_INO, 'absent'));
  const now = await scrape(metricsAt);
  assert.equal(delta(before, now, 'strata_meta_rpc_calls_total{method="mkdir"}'), MKDIRS);
  assert.equal(delta(before, now, 'strata_meta_rpc_call_errors_total{method="lookup",errno="ENOENT"}'), 1);
  assert.equal(now.get('strata_meta_rpc_connections'), 1);
  // The mount of `up` itself calls the service in-process: its mkdirs are not RPC calls.
  mkdirSync(join(mnt, 'local'));
  await new Promise((resolve) => setTimeout(resolve, 150));
  const after = await scrape(metricsAt);
  assert.equal(delta(now, after, 'strata_meta_rpc_calls_total{method="mkdir"}'), 0);
  assert.equal(valueOf(after, 'strata_fuse_requests_total{opcode="MKDIR"}'), 1);
  await client.close();
  assert.equal(await up.stop(), 0, up.output);
});

for (const engineThread of [true, false]) {
  test(`meta serve --metrics exports the SQLite engine's changes, commits, syncs and commit latency (engine thread ${engineThread ? 'on' : 'off'})`, async () => {
    const engine = `sqlite:${join(root, `engine-${engineThread}.db`)}`;
    const secretFile = join(root, `engine-${engineThread}.secret`);
    formatVolume(engine, join(root, `engine-${engineThread}-objects`), 'ev', secretFile);
    const metricsAt = `127.0.0.1:${await freePort()}`;
    const extra = engineThread ? [] : ['--no-engine-thread'];
    const { address, proc } = await serveMeta(engine, ['--metrics', metricsAt, ...extra]);
    procs.push(proc);
    const client = await connectMeta({ address, secret: readFileSync(secretFile, 'utf8').trim() });
    clients.push(client);
    // The engine thread sends its counters once a second: wait for a first snapshot.
    await waitFor(
      metricsAt,
      (s) =>
        s.has('strata_meta_engine_commits_total') &&
        s.has('strata_meta_engine_commit_duration_seconds_count'),
    );
    const before = await scrape(metricsAt);
    const CREATES = 10;
    for (let i = 0; i < CREATES; i++) await client.mknod(caller, ROOT_INO, `e${i}`, S_IFREG | 0o644, 0, 0);
    await client.sync();
    const now = await waitFor(metricsAt, (s) => delta(before, s, 'strata_meta_engine_syncs_total') >= 1);
    const changes = delta(before, now, 'strata_meta_engine_changes_total');
    const commits = delta(before, now, 'strata_meta_engine_commits_total');
    assert.ok(changes >= CREATES, `${changes} changes for ${CREATES} creates`);
    assert.ok(commits >= 1 && commits <= changes, `${commits} commits of ${changes} changes`);
    assert.equal(delta(before, now, 'strata_meta_engine_syncs_total'), 1);
    assert.equal(
      valueOf(now, 'strata_meta_engine_commit_duration_seconds_count'),
      valueOf(now, 'strata_meta_engine_commits_total'),
      'every commit is timed',
    );
    assertHistogram(now, 'strata_meta_engine_commit_duration_seconds', '');
    await client.close();
    assert.equal(await proc.stop(), 0, proc.output);
  });
}

test(
  'meta serve --metrics on PostgreSQL: every change is a commit, timed',
  { skip: process.env.STRATA_PG_TEST_URL ? false : 'STRATA_PG_TEST_URL is not set' },
  async () => {
    const engine = await createPgDatabase(pgDatabase);
    const secretFile = join(root, 'pg.secret');
    formatVolume(engine, join(root, 'pg-objects'), 'pgv', secretFile);
    const metricsAt = `127.0.0.1:${await freePort()}`;
    const { address, proc } = await serveMeta(engine, ['--metrics', metricsAt]);
    procs.push(proc);
    const client = await connectMeta({ address, secret: readFileSync(secretFile, 'utf8').trim() });
    clients.push(client);
    await waitFor(metricsAt, (s) => s.has('strata_meta_engine_commits_total'));
    const before = await scrape(metricsAt);
    const CREATES = 10;
    for (let i = 0; i < CREATES; i++) await client.mknod(caller, ROOT_INO, `p${i}`, S_IFREG | 0o644, 0, 0);
    const now = await waitFor(
      metricsAt,
      (s) => delta(before, s, 'strata_meta_engine_commits_total') >= CREATES,
    );
    assert.ok(delta(before, now, 'strata_meta_engine_changes_total') >= CREATES);
    assert.equal(
      valueOf(now, 'strata_meta_engine_commit_duration_seconds_count'),
      valueOf(now, 'strata_meta_engine_commits_total'),
    );
    assertHistogram(now, 'strata_meta_engine_commit_duration_seconds', '');
    await client.close();
    assert.equal(await proc.stop(), 0, proc.output);
  },
);

/** Scrapes until `ready` holds (the engine thread's counters arrive once a second). */
async function waitFor(metricsAt: string, ready: (samples: Samples) => boolean): Promise<Samples> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const samples = await scrape(metricsAt);
    if (ready(samples)) return samples;
    assert.ok(Date.now() < deadline, 'the engine metrics did not arrive within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function readHelp(text: string, name: string): string {
  return text.split('\n').find((line) => line.startsWith(`# HELP ${name} `)) ?? '';
}
