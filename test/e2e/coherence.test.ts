import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  adminQuery,
  cleanup,
  createPgDatabase,
  freePort,
  isMounted,
  serveMeta,
  StrataProcess,
  tempDir,
  formatVolume,
  startMount,
} from './harness.js';

/**
 * Cache coherence between two `strata mount` processes whose kernels cache names and attributes
 * for 5 minutes: a rename, a chmod, a write+close, and the link count of a hard-linked file
 * another name of which is unlinked or renamed over, on mount A must show on mount B without
 * remounting, long before those timeouts, which only the server's pushed invalidations (FUSE
 * notify INVAL_ENTRY / INVAL_INODE on B) can do. Once with one server (SQLite), once with two
 * servers on one PostgreSQL database, A and B on different servers (the change travels through
 * the PostgreSQL change feed) when STRATA_PG_TEST_URL is set.
 *
 * The bound below is generous (the machine is shared); the observed delays are printed.
 */
const KERNEL_CACHE_TIMEOUT = '300s';
const VISIBLE_WITHIN_MS = 10_000;
const PG_URL = process.env.STRATA_PG_TEST_URL;

const root = tempDir('coherence');
const procs: StrataProcess[] = [];
const mounts: string[] = [];
const servers: StrataProcess[] = [];
const databases: string[] = [];

after(async () => {
  await cleanup(procs, mounts, []);
  await cleanup(servers, [], [root]);
  for (const name of databases)
    await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
});

async function serve(engine: string): Promise<string> {
  const { address, proc } = await serveMeta(engine);
  servers.push(proc);
  return address;
}

async function mount(address: string, volume: string, mountpoint: string, secretFile: string): Promise<void> {
  mounts.push(mountpoint);
  const timeouts = ['--attr-timeout', KERNEL_CACHE_TIMEOUT, '--entry-timeout', KERNEL_CACHE_TIMEOUT];
  await startMount(`${address}/${volume}`, mountpoint, ['--secret-file', secretFile, ...timeouts], procs);
}

/** Polls `check` until it holds; returns how long that took. */
async function visibleAfterMs(what: string, check: () => boolean): Promise<number> {
  const startMs = Date.now();
  for (;;) {
    if (check()) return Date.now() - startMs;
    if (Date.now() - startMs > VISIBLE_WITHIN_MS) {
      assert.fail(`${what}: not visible on the other mount after ${VISIBLE_WITHIN_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const exists = (path: string): boolean => existsSync(path);
const modeOf = (path: string): number => statSync(path).mode & 0o7777;
const nlinkOf = (path: string): number => statSync(path).nlink;

async function checkCoherence(label: string, a: string, b: string): Promise<void> {
  // Set up on A, then fill B's kernel caches: names (positive and negative), attributes, pages.
  mkdirSync(join(a, 'dir'));
  writeFileSync(join(a, 'dir', 'old-name'), 'one');
  writeFileSync(join(a, 'dir', 'data'), 'first version');
  assert.equal(readFileSync(join(b, 'dir', 'old-name'), 'utf8'), 'one');
  assert.equal(exists(join(b, 'dir', 'new-name')), false);
  assert.equal(modeOf(join(b, 'dir', 'data')), 0o644);
  assert.equal(readFileSync(join(b, 'dir', 'data'), 'utf8'), 'first version');
  const sizeBefore = statSync(join(b, 'dir', 'data')).size;

  const delays: Record<string, number> = {};
  renameSync(join(a, 'dir', 'old-name'), join(a, 'dir', 'new-name'));
  delays.rename = await visibleAfterMs(
    'rename',
    () => !exists(join(b, 'dir', 'old-name')) && exists(join(b, 'dir', 'new-name')),
  );
  assert.equal(readFileSync(join(b, 'dir', 'new-name'), 'utf8'), 'one');

  chmodSync(join(a, 'dir', 'data'), 0o600);
  delays.chmod = await visibleAfterMs('chmod', () => modeOf(join(b, 'dir', 'data')) === 0o600);

  writeFileSync(join(a, 'dir', 'data'), 'the second, longer version');
  delays.write = await visibleAfterMs(
    'write+close',
    () => statSync(join(b, 'dir', 'data')).size !== sizeBefore,
  );
  assert.equal(readFileSync(join(b, 'dir', 'data'), 'utf8'), 'the second, longer version');

  // Hard links: B caches the link count of the inode through one name; A takes another name
  // from it (unlink, then a rename over it). Only a push of the inode itself reaches that cache.
  writeFileSync(join(a, 'dir', 'linked'), 'shared');
  linkSync(join(a, 'dir', 'linked'), join(a, 'dir', 'link-2'));
  linkSync(join(a, 'dir', 'linked'), join(a, 'dir', 'link-3'));
  writeFileSync(join(a, 'dir', 'replacement'), 'other');
  assert.equal(nlinkOf(join(b, 'dir', 'link-3')), 3);
  unlinkSync(join(a, 'dir', 'linked'));
  delays.unlinkHardLink = await visibleAfterMs(
    'unlink of a hard link',
    () => nlinkOf(join(b, 'dir', 'link-3')) === 2,
  );
  renameSync(join(a, 'dir', 'replacement'), join(a, 'dir', 'link-2'));
  delays.renameOverHardLink = await visibleAfterMs(
    'rename over a hard link',
    () => nlinkOf(join(b, 'dir', 'link-3')) === 1,
  );
  assert.equal(readFileSync(join(b, 'dir', 'link-2'), 'utf8'), 'other');
  console.log(`coherence (${label}): visible on the other mount after ${JSON.stringify(delays)} ms`);
}

function format(engine: string, volume: string): string {
  const secretFile = join(root, `${volume}.secret`);
  formatVolume(engine, join(root, `objects-${volume}`), volume, secretFile);
  return secretFile;
}

describe('cache coherence between two mounts', () => {
  test('one SQLite server: rename, chmod and write+close on A show on B without waiting for the kernel timeouts', async () => {
    const engine = `sqlite:${join(root, 'meta.db')}`;
    const secretFile = format(engine, 'solo');
    const address = await serve(engine);
    const [a, b] = [join(root, 'solo-a'), join(root, 'solo-b')];
    await mount(address, 'solo', a, secretFile);
    await mount(address, 'solo', b, secretFile);
    await checkCoherence('one SQLite server', a, b);
  });

  test('strata up --listen and a strata mount of it: changes travel both ways', async () => {
    const dataDir = join(root, 'up-data');
    const [up, client] = [join(root, 'up-mnt'), join(root, 'up-client')];
    mkdirSync(up);
    mounts.push(up);
    const port = await freePort();
    const timeouts = ['--attr-timeout', KERNEL_CACHE_TIMEOUT, '--entry-timeout', KERNEL_CACHE_TIMEOUT];
    const embedded = new StrataProcess([
      'up',
      dataDir,
      up,
      '--name',
      'emb',
      '--listen',
      `127.0.0.1:${port}`,
      ...timeouts,
    ]);
    procs.push(embedded);
    await embedded.waitFor(
      () => isMounted(up) && embedded.output.includes('metadata served on'),
      'strata up to mount and serve',
    );
    await mount(`127.0.0.1:${port}`, 'emb', client, join(dataDir, 'meta.db.secret'));
    mkdirSync(join(up, 'from-up'));
    mkdirSync(join(client, 'from-client'));
    await checkCoherence('strata up to its client', join(up, 'from-up'), join(client, 'from-up'));
    await checkCoherence('client to strata up', join(client, 'from-client'), join(up, 'from-client'));
  });

  test(
    'two PostgreSQL servers, A and B on different ones: the change feed carries the invalidations',
    {
      skip: PG_URL
        ? undefined
        : 'STRATA_PG_TEST_URL is not set: run eval "$(scripts/postgres/start.sh)" first',
    },
    async () => {
      const name = `strata_coh_${process.pid}`;
      databases.push(name);
      const engine = await createPgDatabase(name);
      const secretFile = format(engine, 'pgvol');
      const first = await serve(engine);
      const second = await serve(engine);
      const [a, b] = [join(root, 'pg-a'), join(root, 'pg-b')];
      await mount(first, 'pgvol', a, secretFile);
      await mount(second, 'pgvol', b, secretFile);
      await checkCoherence('two PostgreSQL servers', a, b);
    },
  );
});
