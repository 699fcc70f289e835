// Object GC in `strata meta serve` on PostgreSQL: the server collects through an engine of its
// own (PostgreSQL takes several writers). A file deleted through a `strata mount` of a volume
// with history off loses its objects within a few passes; the other file stays readable, and
// `strata gc` on SQLite refuses while a mount of the volume is live.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  StrataProcess,
  adminQuery,
  cleanup,
  createPgDatabase,
  freePort,
  startUp,
  storedObjects,
  strata,
  tempDir,
  waitUntil,
  startMount,
} from './harness.js';

const PG_SKIP = process.env.STRATA_PG_TEST_URL ? false : 'STRATA_PG_TEST_URL is not set';

const root = tempDir('gc-server');
const procs: StrataProcess[] = [];
const mountpoints: string[] = [];
const database = `strata_gc_e2e_${process.pid}`;
const saved = { interval: process.env.STRATA_GC_INTERVAL, margin: process.env.STRATA_GC_SAFETY_MARGIN };

before(() => {
  process.env.STRATA_GC_INTERVAL = '1s';
  process.env.STRATA_GC_SAFETY_MARGIN = '0s';
});
after(async () => {
  await cleanup(procs, mountpoints, [root]);
  if (!PG_SKIP) await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  for (const [name, value] of [
    ['STRATA_GC_INTERVAL', saved.interval],
    ['STRATA_GC_SAFETY_MARGIN', saved.margin],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

test(
  'strata meta serve on PostgreSQL frees a deleted file in the background',
  { skip: PG_SKIP },
  async () => {
    const engine = await createPgDatabase(database);
    const objects = join(root, 'objects');
    const secretFile = join(root, 'secret');
    const args = ['format', '--engine', engine, '--storage', `file:${objects}`, '--name', 'gcv'];
    const formatted = strata([...args, '--secret-file', secretFile, '--retention', '0']);
    assert.equal(formatted.status, 0, formatted.stderr);
    const port = await freePort();
    const server = new StrataProcess(['meta', 'serve', '--engine', engine, '--listen', `127.0.0.1:${port}`]);
    procs.push(server);
    await server.waitFor(() => server.output.includes('listening'), 'the metadata service to listen');
    const mnt = join(root, 'mnt');
    mountpoints.push(mnt);
    await startMount(`127.0.0.1:${port}/gcv`, mnt, ['--secret-file', secretFile], procs);

    writeFileSync(join(mnt, 'keep'), Buffer.alloc(1024 * 1024, 1));
    writeFileSync(join(mnt, 'gone'), Buffer.alloc(9 * 1024 * 1024, 2)); // 3 blocks
    const full = storedObjects(objects).objects;
    unlinkSync(join(mnt, 'gone'));
    await waitUntil(
      () => storedObjects(objects).objects === full - 3,
      'the server deleted the 3 blocks',
      30_000,
      200,
    );
    assert.deepEqual(readFileSync(join(mnt, 'keep')), Buffer.alloc(1024 * 1024, 1));
    // The pass logs once it has also forgotten the slices' rows: a moment after the objects went.
    await server.waitFor(
      () => /gc: deleted 3 object\(s\)/.test(server.output),
      'the pass to log its deletes',
    );
  },
);

test('strata gc on SQLite refuses while strata up serves the volume; --dry-run works', async () => {
  const dataDir = join(root, 'up');
  const mnt = join(root, 'mnt-up');
  mountpoints.push(mnt);
  const up = await startUp(dataDir, mnt);
  procs.push(up);
  const engine = `sqlite:${join(dataDir, 'meta.db')}`;
  const refused = strata(['gc', '--engine', engine]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /in use.*one writer/);
  const dry = strata(['gc', '--engine', engine, '--dry-run']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /would delete 0 object\(s\)/);
});
