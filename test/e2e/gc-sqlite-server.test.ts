// Object GC in `strata meta serve` on SQLite: the collector runs through the server's own engine
// (on the engine thread, or on the serving thread with --no-engine-thread). Files deleted
// through a `strata mount` lose their objects within a few passes while the server keeps
// answering, the metrics endpoint counts them, `strata gc` beside the server is refused, and a
// pass cut short by SIGTERM (clean exit) or kill -9 loses nothing: the next server finishes it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatVolume, openEngine } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore } from '../../src/object/index.js';
import { fsck } from '../../src/ops/index.js';
import {
  StrataProcess,
  cleanup,
  freePort,
  storedObjects,
  strata,
  tempDir,
  waitUntil,
  startMount,
} from './harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Passes every second, and a deleted slice is eligible at once (the volume keeps no history). */
const FAST_GC = { STRATA_GC_INTERVAL: '1s', STRATA_GC_SAFETY_MARGIN: '0s' };

const root = tempDir('gc-sqlite-server');
const procs: StrataProcess[] = [];
const mountpoints: string[] = [];
after(() => cleanup(procs, mountpoints, [root]));

interface Volume {
  engine: string;
  objects: string;
  secretFile: string;
}

/** A SQLite volume with history off, its objects in a file store. */
function newVolume(name: string): Volume {
  const dir = join(root, name);
  mkdirSync(dir);
  const volume = {
    engine: `sqlite:${join(dir, 'meta.db')}`,
    objects: join(dir, 'objects'),
    secretFile: join(dir, 'secret'),
  };
  const args = ['format', '--engine', volume.engine, '--storage', `file:${volume.objects}`, '--name', name];
  const formatted = strata([...args, '--secret-file', volume.secretFile, '--retention', '0']);
  assert.equal(formatted.status, 0, formatted.stderr);
  return volume;
}

async function serve(volume: Volume, args: string[], env: Record<string, string>): Promise<StrataProcess> {
  const address = `127.0.0.1:${await freePort()}`;
  const proc = new StrataProcess(
    ['meta', 'serve', '--engine', volume.engine, '--listen', address, ...args],
    env,
  );
  procs.push(proc);
  await proc.waitFor(() => proc.output.includes('listening'), 'the metadata server to listen');
  addresses.set(proc, address);
  return proc;
}
const addresses = new Map<StrataProcess, string>();

async function mount(
  volume: Volume,
  server: StrataProcess,
  name: string,
): Promise<{ mnt: string; proc: StrataProcess }> {
  const mnt = join(root, `mnt-${name}`);
  if (!mountpoints.includes(mnt)) mountpoints.push(mnt);
  const proc = await startMount(`${addresses.get(server)}/${name}`, mnt, [
    '--secret-file',
    volume.secretFile,
  ]);
  // Cleanup stops mounts before servers: a mount whose server is gone waits for it to come back.
  procs.unshift(proc);
  return { mnt, proc };
}

for (const engineThread of [true, false]) {
  const name = engineThread ? 'thread' : 'nothread';
  test(`strata meta serve on SQLite${engineThread ? '' : ' --no-engine-thread'} frees deleted files in the background and counts them in its metrics`, async () => {
    const volume = newVolume(name);
    const metricsPort = await freePort();
    const server = await serve(
      volume,
      [...(engineThread ? [] : ['--no-engine-thread']), '--metrics', `127.0.0.1:${metricsPort}`],
      FAST_GC,
    );
    if (engineThread) assert.match(server.output, /\(engine thread\)/);
    else assert.doesNotMatch(server.output, /engine thread/);
    const { mnt, proc: mountProc } = await mount(volume, server, name);

    writeFileSync(join(mnt, 'keep'), Buffer.alloc(1 * MiB, 1));
    writeFileSync(join(mnt, 'gone'), Buffer.alloc(9 * MiB, 2)); // 3 blocks of 4 MiB
    for (let i = 0; i < 5; i++) writeFileSync(join(mnt, `small-${i}`), Buffer.alloc(64 * KiB, 3));
    const full = storedObjects(volume.objects).objects;
    unlinkSync(join(mnt, 'gone'));
    for (let i = 0; i < 5; i++) unlinkSync(join(mnt, `small-${i}`));
    await waitUntil(
      () => storedObjects(volume.objects).objects === full - 8,
      'the server deleted the 8 objects',
      30_000,
      200,
    );

    // The server still answers, and what is referenced is still there.
    assert.deepEqual(readFileSync(join(mnt, 'keep')), Buffer.alloc(1 * MiB, 1));
    writeFileSync(join(mnt, 'after'), 'written after the pass');
    assert.equal(readFileSync(join(mnt, 'after'), 'utf8'), 'written after the pass');
    assert.deepEqual(readdirSync(mnt).sort(), ['after', 'keep']);

    const scrape = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    await waitUntil(
      async () => /^strata_gc_deleted_objects_total 8$/m.test(await scrape()),
      'the metrics count the 8 objects',
      30_000,
      200,
    );
    const text = await scrape();
    assert.match(text, /^strata_gc_deleted_bytes_total 9764864$/m); // 9 MiB + 5 x 64 KiB
    assert.match(text, /^strata_gc_failed_passes_total 0$/m);
    assert.match(text, /^strata_gc_passes_total [1-9]\d*$/m);
    // Logged with the pass's report, which also fed the metrics: it is there by now.
    assert.match(server.output, /gc: deleted \d+ object\(s\)/);

    const refused = strata(['gc', '--engine', volume.engine]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /one writer/);
    assert.match(refused.stderr, /"strata meta serve" collect garbage in the background/);

    assert.equal(await mountProc.stop(), 0, mountProc.output);
    assert.equal(await server.stop(), 0, server.output);
  });
}

test('a pass cut short by kill -9 or SIGTERM loses nothing: the next server finishes it', async () => {
  const volume = newVolume('cut');
  const first = await serve(volume, [], FAST_GC);
  const { mnt, proc: mountProc } = await mount(volume, first, 'cut');
  writeFileSync(join(mnt, 'keep'), Buffer.alloc(64 * KiB, 7));
  const files = 30;
  for (let i = 0; i < files; i++) writeFileSync(join(mnt, `f-${i}`), Buffer.alloc(16 * KiB, i));
  const full = storedObjects(volume.objects).objects;
  assert.equal(await mountProc.stop(), 0, mountProc.output);
  await first.stop();

  // Two deletes a second: a pass over 30 objects takes 15 s, so both stops land in the middle.
  const slow = { ...FAST_GC, STRATA_GC_RATE: '2' };
  const killed = await serve(volume, [], slow);
  const { mnt: mnt2, proc: mount2 } = await mount(volume, killed, 'cut');
  for (let i = 0; i < files; i++) unlinkSync(join(mnt2, `f-${i}`));
  await waitUntil(
    () => storedObjects(volume.objects).objects < full,
    'the pass started deleting',
    30_000,
    200,
  );
  // The engine thread keeps serving while the pass deletes.
  assert.deepEqual(readFileSync(join(mnt2, 'keep')), Buffer.alloc(64 * KiB, 7));
  assert.equal(readdirSync(mnt2).length, 1);
  assert.equal(await mount2.stop(), 0, mount2.output);
  killed.kill();
  await killed.exited;
  const afterKill = storedObjects(volume.objects).objects;
  assert.ok(afterKill > full - files, `the kill cut the pass short (${afterKill} objects left)`);

  const stopped = await serve(volume, [], slow);
  await waitUntil(
    () => storedObjects(volume.objects).objects < afterKill,
    'the next pass deleted more',
    30_000,
    200,
  );
  assert.equal(await stopped.stop(), 0, stopped.output);
  assert.match(stopped.output, /received SIGTERM/);
  const afterStop = storedObjects(volume.objects).objects;
  assert.ok(afterStop > full - files, `SIGTERM cut the pass short (${afterStop} objects left)`);

  const last = await serve(volume, [], FAST_GC);
  await waitUntil(
    () => storedObjects(volume.objects).objects === full - files,
    'every deleted file is gone',
    30_000,
    200,
  );
  assert.equal(await last.stop(), 0, last.output);

  const engine = await openEngine(volume.engine);
  const store = await openObjectStore(`file:${volume.objects}`, { retry: false });
  try {
    const report = await fsck({ engine, store });
    assert.deepEqual(report.problems, [], 'fsck: every referenced block exists');
    const logged = await engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 100));
    assert.deepEqual(logged, [], 'the deleted slice log is empty');
  } finally {
    await store.close();
    await engine.close();
  }
});

test('a volume that records no object store is served, with one line saying how to collect its garbage', async () => {
  const dir = join(root, 'nostore');
  mkdirSync(dir);
  const volume = { engine: `sqlite:${join(dir, 'meta.db')}`, objects: '', secretFile: '' };
  await formatVolume(volume.engine, { name: 'nostore' }); // a library format records no store
  const metricsPort = await freePort();
  const server = await serve(volume, ['--metrics', `127.0.0.1:${metricsPort}`], FAST_GC);
  await server.waitFor(() => /records no object store/.test(server.output), 'the notice');
  assert.match(server.output, /gc: the volume records no object store; run "strata gc --storage URL"/);
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(text, /^strata_gc_passes_total 0$/m);
  assert.equal(await server.stop(), 0, server.output);
});
